"""The Python <-> C++ boundary: every binding argument is named, Python calls the core with keywords only,
ops read index structures only through kernel_view(), the core re-checks what would read out of bounds, the
one CPU/CUDA switch, and the HARDNEG_ISA=generic tile kernels against the reference."""
import ast
import os
import subprocess
import sys
import textwrap

import pytest
import torch

import hardneg
from hardneg import _backend

ROOT = os.path.join(os.path.dirname(__file__), "..")
PKG = os.path.join(ROOT, "python", "hardneg")
core = _backend.core()
needs_core = pytest.mark.skipif(core is None, reason="the compiled core is not built")


def _sources(*parts):
    base = os.path.join(PKG, *parts)
    for dp, _, fs in os.walk(base):
        for f in fs:
            if f.endswith(".py"):
                path = os.path.join(dp, f)
                yield os.path.relpath(path, ROOT), ast.parse(open(path).read())


@needs_core
def test_every_binding_argument_is_named():
    for name in dir(core):
        fn = getattr(core, name)
        if name.startswith("_") or not callable(fn):
            continue
        doc = (fn.__init__ if isinstance(fn, type) else fn).__doc__ or ""
        assert "arg0" not in doc, f"_core.{name} has unnamed arguments: {doc.splitlines()[0]}"


def test_python_calls_the_core_with_keywords_only():
    calls = 0
    for path, tree in _sources():
        for node in ast.walk(tree):
            # core().<fn>(...)
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and isinstance(node.func.value, ast.Call) and getattr(node.func.value.func, "id", "") == "core"):
                calls += 1
                assert not node.args, f"{path}:{node.lineno}: core().{node.func.attr} called with positional arguments"
    assert calls >= 8


def test_ops_read_index_structures_only_through_kernel_view():
    banned = {"kt", "kh", "first_time", "levels_table"}
    for path, tree in _sources("ops"):
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute):
                private = node.attr.startswith("_") and not node.attr.startswith("__")
                on_module = isinstance(node.value, ast.Name) and node.value.id in ("V", "_ref", "torch")
                if node.attr in banned or (private and not on_module):
                    assert isinstance(node.value, ast.Call) and getattr(node.value.func, "attr", "") == "kernel_view", \
                        f"{path}:{node.lineno}: reads .{node.attr} directly (use kernel_view())"


def test_kernel_views_hand_out_the_arrays():
    ks = hardneg.KnownSet.from_triples(torch.tensor([[0, 0, 1], [2, 1, 3]]), 4, 2, times=[1.0, 2.0])
    v = ks.kernel_view()
    assert torch.equal(v.tail_keys, ks.kt) and v.first_time.dtype == torch.float64
    args = v.core_args()
    assert args["size"] == 2 and args["tail"] == ks.kt.data_ptr() and args["first_time"] != 0
    g = hardneg.TemporalGraph(torch.tensor([0, 1]), torch.tensor([1, 2]), torch.tensor([1, 2]))
    tv = g.kernel_view()
    assert tv.num_levels == 1 and tv.levels.shape == (1, 4) and tv.core_args()["int_time"]
    assert g.kernel_view() is tv  # cached until the graph changes
    g.append(torch.tensor([2]), torch.tensor([0]), torch.tensor([3]))
    assert g.kernel_view() is not tv


def _corrupt(**over):
    args = dict(positives=8, num_positives=1, width=3, num_negatives=1, num_entities=5, num_relations=2, side_mode=0,
                head_prob=0, domain_head_indptr=0, domain_head_ids=0, domain_tail_indptr=0, domain_tail_ids=0,
                known=None, seed=0, max_tries=4, out=8, out_valid=8, num_threads=1, on_cuda=False, stream=0)
    return core.corrupt(**dict(args, **over))


@needs_core
@pytest.mark.parametrize(
    "call,frag",
    [
        (lambda: core.KnownView(tail=0, head=0, first_time=0, size=1, num_entities=2, num_relations=1),
         "KnownView: null key arrays"),
        (lambda: core.KnownView(tail=8, head=8, first_time=0, size=-1, num_entities=2, num_relations=1),
         "KnownView: needs size >= 0"),
        (lambda: core.topk_mine_cpu(query=8, num_queries=1, query_stride=4, candidates=8, num_candidates=1,
                                    candidate_stride=4, dim=4, metric=0, k=1, exclude_indptr=0, exclude_indices=8,
                                    out_scores=8, out_ids=8), "exclude_indices needs exclude_indptr"),
        (lambda: core.topk_mine_cpu(query=8, num_queries=1, query_stride=4, candidates=8, num_candidates=1,
                                    candidate_stride=4, dim=4, metric=9, k=1, exclude_indptr=0, exclude_indices=0,
                                    out_scores=8, out_ids=8), "unknown metric code"),
        (lambda: core.topk_mine_cpu(query=8, num_queries=1, query_stride=2, candidates=8, num_candidates=1,
                                    candidate_stride=4, dim=4, metric=0, k=1, exclude_indptr=0, exclude_indices=0,
                                    out_scores=8, out_ids=8), "topk_mine: row strides must be >= dim"),
        (lambda: core.sample_by_score_cpu(query=0, num_queries=1, query_stride=4, candidates=8, num_candidates=1,
                                          candidate_stride=4, dim=4, metric=0, num_samples=1, weighting=0,
                                          inv_temp=1.0, replacement=False, seed=0, exclude_indptr=0,
                                          exclude_indices=0, out_ids=8, out_log_prob=8),
         "sample_by_score: null data pointer"),
        (lambda: core.sample_by_score_cpu(query=8, num_queries=-1, query_stride=4, candidates=8, num_candidates=1,
                                          candidate_stride=4, dim=0, metric=0, num_samples=1, weighting=0,
                                          inv_temp=1.0, replacement=False, seed=0, exclude_indptr=0,
                                          exclude_indices=0, out_ids=8, out_log_prob=8),
         "num_queries and num_candidates must be >= 0"),
        (lambda: _corrupt(side_mode=7), "corrupt: side_mode must be 0 (tail), 1 (head), 2 (both) or 3 (bernoulli)"),
        (lambda: _corrupt(max_tries=0), "corrupt: max_tries must be >= 1"),
        (lambda: _corrupt(num_negatives=0), "corrupt: need num_negatives >= 1"),
        (lambda: _corrupt(side_mode=3), "corrupt: bernoulli needs head probabilities"),
        (lambda: core.temporal_neighbors(levels=0, num_levels=0, int_time=True, nodes=0, times=0, num_queries=0,
                                         k=1, strategy=0, inclusive=False, has_window=False, window=0.0, seed=0,
                                         out_nbr=0, out_eid=0, out_time=0, out_valid=0, num_threads=1,
                                         on_cuda=True, stream=0, check_num_nodes=5), "for CPU inputs only"),
    ],
)
def test_core_rechecks_what_would_read_out_of_bounds(call, frag):
    with pytest.raises(ValueError) as e:
        call()
    assert frag in str(e.value)


@needs_core
def test_corrupt_core_checks_the_known_set_matches():
    ks = hardneg.KnownSet.from_triples(torch.tensor([[0, 0, 1]]), 4, 2)
    kv = core.KnownView(**ks.kernel_view().core_args())
    pos = torch.tensor([[0, 0, 1]])
    out, valid = torch.empty(1, 1, 3, dtype=torch.int64), torch.empty(1, 1, dtype=torch.uint8)
    with pytest.raises(ValueError, match="known set's num_entities is below the call's"):
        core.corrupt(positives=pos.data_ptr(), num_positives=1, width=3, num_negatives=1, num_entities=5,
                     num_relations=2, side_mode=0, head_prob=0, domain_head_indptr=0, domain_head_ids=0,
                     domain_tail_indptr=0, domain_tail_ids=0, known=kv, seed=0, max_tries=4, out=out.data_ptr(),
                     out_valid=valid.data_ptr(), num_threads=1, on_cuda=False, stream=0)


@needs_core
def test_one_device_switch_reports_a_build_without_cuda():
    if core.build_info()["cuda"]:
        count, err, msg = core.cuda_device_count()
        assert isinstance(count, int) and isinstance(msg, str)
        return
    assert core.cuda_device_count()[1] == -1
    with pytest.raises(ValueError, match="built without CUDA kernels"):
        core.known_mask(known=None, side=0, anchor=0, candidates=0, num_queries=0, num_candidates=0, out=0,
                        num_threads=1, on_cuda=True, stream=0)


@needs_core
def test_generic_isa_matches_the_reference():
    """HARDNEG_ISA=generic forces the baseline tile kernels (read once per process: a subprocess)."""
    script = textwrap.dedent("""
        import torch, hardneg
        from hardneg.reference.mining import log_probs
        from hardneg.testing import assert_topk_matches
        assert hardneg._backend.core().build_info()["cpu_isa"] == "generic"
        g = torch.Generator().manual_seed(0)
        q, c = torch.randn(37, 24, generator=g), torch.randn(3001, 24, generator=g)
        ex = (torch.arange(38) * 3, torch.randint(0, 3001, (111,), generator=g))
        for metric in ("dot", "cos", "l2", "l1", "rotate"):
            s, i = hardneg.ops.topk_mine(q, c, 9, metric=metric, exclude=ex, backend="cpu")
            exn = hardneg._validate.csr("t", "exclude", ex, 37, 3001, q.device)
            assert_topk_matches(q, c, 9, metric, exn, s, i)
            for replacement in (False, True):
                ids, lp = hardneg.ops.sample_by_score(q, c, 6, metric=metric, exclude=ex, replacement=replacement,
                                                      generator=torch.Generator().manual_seed(1), backend="cpu")
                ref = log_probs(q, c, metric=metric, exclude=exn)
                assert bool((ids >= 0).all())
                want = ref.gather(1, ids).float()
                assert torch.isfinite(want).all(), "an excluded id was drawn"
                assert torch.allclose(lp, want, atol=1e-4), (lp - want).abs().max()
                if not replacement:
                    assert all(len(set(r)) == 6 for r in ids.tolist())
        print("generic ok")
    """)
    env = dict(os.environ, HARDNEG_ISA="generic")
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0 and "generic ok" in out.stdout, out.stderr[-3000:]


_TEMPORAL_DIGEST = textwrap.dedent("""
    import hashlib, torch, hardneg
    g0 = torch.Generator().manual_seed(5)
    M, V = 3000, 60
    src, dst = torch.randint(0, V, (M,), generator=g0), torch.randint(0, V, (M,), generator=g0)
    t = torch.sort(torch.randint(0, 900, (M,), generator=g0)).values
    g = hardneg.TemporalGraph(src[:2000], dst[:2000], t[:2000], num_nodes=V)
    g.append(src[2000:], dst[2000:], t[2000:])
    h = hashlib.sha256()
    for B in (300, 5000):  # the streaming entry and the threaded kernel
        nodes = torch.randint(0, V, (B,), generator=g0)
        times = torch.randint(-1, 905, (B,), generator=g0)
        for k in (1, 6, 25, 80):
            for strategy in ("recent", "uniform"):
                gen = torch.Generator().manual_seed(k)
                outs = list(g.neighbors(nodes, times, k, strategy=strategy, generator=gen))
                outs += [x for x in g.assemble(nodes, times, k, strategy=strategy, generator=gen) if x is not None]
                for x in outs:
                    h.update(x.contiguous().view(torch.uint8).numpy().tobytes())
    print("digest", h.hexdigest())
""")


@needs_core
def test_temporal_kernels_give_the_same_bits_with_the_generic_isa():
    """The temporal CPU kernels carry an AVX2 entry (common.h, HN_CPU_ENTRY) beside the baseline one: both
    return the same bits (neighbours, edge ids, times, deltas, validity) for recent and uniform draws, k from 1 to
    past the rank sort's 64, streaming and threaded calls. HARDNEG_ISA=generic forces the baseline entry."""
    runs = []
    for isa in ("generic", None):
        env = dict(os.environ)
        env.pop("HARDNEG_ISA", None)
        if isa:
            env["HARDNEG_ISA"] = isa
        out = subprocess.run([sys.executable, "-c", _TEMPORAL_DIGEST], env=env, capture_output=True, text=True,
                             timeout=300)
        assert out.returncode == 0, out.stderr[-3000:]
        runs.append(out.stdout.split("digest")[-1].strip())
    assert runs[0] == runs[1]
