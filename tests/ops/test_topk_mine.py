"""topk_mine: every backend against the float64 reference, shapes that break tilings, ties, exclusions,
bad input, and a hypothesis fuzz test."""
import math

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import hardneg
from hardneg.testing import assert_topk_matches
from conftest import backend_params

METRICS = ["dot", "cos", "l2", "l1", "rotate"]
BACKENDS = backend_params("topk_mine")


def random_csr(B, N, max_per_row, gen, *, unsorted=True, dup=True):
    counts = torch.randint(0, max_per_row + 1, (B,), generator=gen)
    indptr = torch.zeros(B + 1, dtype=torch.int64)
    indptr[1:] = counts.cumsum(0)
    idx = torch.randint(0, max(N, 1), (int(indptr[-1]),), generator=gen)
    if dup and idx.numel() > 2:
        idx[1] = idx[0]
    return indptr, idx


def exact_ties(backend, device):
    # under TRITON_INTERPRET, tl.dot is a numpy matmul whose SIMD lanes round identical rows differently,
    # so duplicated candidates are not bitwise ties there; on a GPU and in C++ they are
    return not (backend == "triton" and device == "cpu")


def _run(backend, device, q, c, k, metric, ex=None):
    q, c = q.to(device), c.to(device)
    exd = None if ex is None else (ex[0].to(device), ex[1].to(device))
    s, i = hardneg.ops.topk_mine(q, c, k, metric=metric, exclude=exd, backend=backend)
    assert s.device.type == device and i.device.type == device
    return s.cpu(), i.cpu()


@pytest.mark.parametrize("backend,device", BACKENDS)
@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("B,N,d,k", [(5, 97, 6, 1), (33, 517, 18, 7), (3, 40, 10, 60), (70, 300, 64, 32)])
def test_matches_reference(backend, device, metric, B, N, d, k):
    gen = torch.Generator().manual_seed(hash((metric, B, N, d, k)) % 2**31)
    q = torch.randn(B, d, generator=gen)
    c = torch.randn(N, d, generator=gen)
    ex = random_csr(B, N, 6, gen)
    s, i = _run(backend, device, q, c, k, metric, ex)
    assert_topk_matches(q, c, k, metric, ex, s, i)


@pytest.mark.parametrize("backend,device", BACKENDS)
@pytest.mark.parametrize("metric", ["dot", "l2", "rotate"])
def test_heavy_ties_resolved_to_smaller_id(backend, device, metric):
    gen = torch.Generator().manual_seed(7)
    base = torch.randn(6, 8, generator=gen)
    c = base[torch.randint(0, 6, (130,), generator=gen)]  # many exact duplicates
    q = torch.randn(9, 8, generator=gen)
    s, i = _run(backend, device, q, c, 13, metric)
    assert_topk_matches(q, c, 13, metric, None, s, i, strict_ties=exact_ties(backend, device))
    # integer-valued data: exact ties in every backend's arithmetic
    qi = torch.randint(-2, 3, (5, 4), generator=gen).float()
    ci = torch.randint(-2, 3, (50, 4), generator=gen).float()
    s, i = _run(backend, device, qi, ci, 11, metric)
    assert_topk_matches(qi, ci, 11, metric, None, s, i, strict_ties=metric != "rotate" and exact_ties(backend, device))


@pytest.mark.parametrize("backend,device", BACKENDS)
def test_everything_excluded_and_k_above_n(backend, device):
    gen = torch.Generator().manual_seed(1)
    q, c = torch.randn(4, 5, generator=gen), torch.randn(6, 5, generator=gen)
    ex = (torch.tensor([0, 6, 6, 9, 15]), torch.tensor([5, 4, 3, 2, 1, 0, 1, 1, 2, 0, 1, 2, 3, 4, 5]))
    s, i = _run(backend, device, q, c, 10, "dot", ex)
    assert (i[0] == -1).all() and torch.isneginf(s[0]).all()  # row 0: all excluded
    assert (i[3] == -1).all()
    assert set(i[1, :6].tolist()) == set(range(6)) and (i[1, 6:] == -1).all()
    assert set(i[2, :4].tolist()) == {0, 3, 4, 5}
    assert_topk_matches(q, c, 10, "dot", ex, s, i)


@pytest.mark.parametrize("backend,device", BACKENDS)
def test_empty_batch_and_empty_candidates(backend, device):
    s, i = _run(backend, device, torch.randn(0, 4), torch.randn(10, 4), 3, "dot")
    assert s.shape == (0, 3) and i.shape == (0, 3)
    s, i = _run(backend, device, torch.randn(2, 4), torch.randn(0, 4), 3, "cos")
    assert (i == -1).all() and torch.isneginf(s).all()


@pytest.mark.parametrize("backend,device", BACKENDS)
def test_strided_inputs_and_self_exclusion(backend, device):
    gen = torch.Generator().manual_seed(3)
    base = torch.randn(200, 40, generator=gen)
    c = base[:, 3:35]  # row stride 40, d=32: no copy needed
    q = c[:20]
    ex = (torch.arange(21), torch.arange(20))  # each query is candidate i: exclude itself
    s, i = _run(backend, device, q, c, 5, "cos", ex)
    assert not (i == torch.arange(20)[:, None]).any()
    assert_topk_matches(q, c, 5, "cos", ex, s, i)


def test_large_n_crosses_chunks():
    # N above the CPU kernel's 65536-candidate chunk: chunks are merged with the full (score, id) order
    gen = torch.Generator().manual_seed(5)
    q = torch.randn(3, 4, generator=gen)
    c = torch.randn(140_000, 4, generator=gen)
    c[100_000] = c[7]  # the same row in two chunks: ties must resolve to id 7 first
    q[0] = c[7] * 10
    ex = random_csr(3, 140_000, 50, gen)
    ex = (ex[0], torch.where(ex[1] == 7, torch.zeros_like(ex[1]) + 1, ex[1]))
    s, i = hardneg.ops.topk_mine(q, c, 20, exclude=ex, backend="cpu")
    assert_topk_matches(q, c, 20, "dot", ex, s, i, strict_ties=True)


@pytest.mark.parametrize("B", [1, 11, 50, 300])
def test_cpu_result_independent_of_thread_count(monkeypatch, B):
    """Small batches against a small table are split into query blocks across the threads: same answer."""
    gen = torch.Generator().manual_seed(B)
    q, c = torch.randn(B, 16, generator=gen), torch.randint(-3, 3, (700, 16), generator=gen).float()
    ex = random_csr(B, 700, 5, gen)
    out = []
    for t in ("1", "2", "3", "7"):
        monkeypatch.setenv("HARDNEG_NUM_THREADS", t)
        out.append(hardneg.ops.topk_mine(q, c, 20, exclude=ex, backend="cpu"))
    assert_topk_matches(q, c, 20, "dot", ex, *out[0], strict_ties=True)
    assert all(torch.equal(out[0][0], o[0]) and torch.equal(out[0][1], o[1]) for o in out[1:])


def test_fp16_bf16_accepted_on_cpu():
    q, c = torch.randn(4, 8), torch.randn(30, 8)
    for dt in (torch.float16, torch.bfloat16):
        s, i = hardneg.ops.topk_mine(q.to(dt), c.to(dt), 3)
        assert_topk_matches(q.to(dt).float(), c.to(dt).float(), 3, "dot", None, s, i)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("metric", METRICS)
def test_half_precision_on_gpu(dtype, metric):
    gen = torch.Generator().manual_seed(11)
    q = torch.randn(300, 64, generator=gen).to(dtype)
    c = torch.randn(5000, 64, generator=gen).to(dtype)
    ex = random_csr(300, 5000, 20, gen)
    s, i = hardneg.ops.topk_mine(q.cuda(), c.cuda(), 16, metric=metric, exclude=(ex[0].cuda(), ex[1].cuda()))
    assert_topk_matches(q.float(), c.float(), 16, metric, ex, s.cpu(), i.cpu(), dtype=dtype)


# ---------------------------------------------------------------- tie keys


def _run_tie(backend, device, q, c, k, metric, ex, tie):
    q, c, tie = q.to(device), c.to(device), tie.to(device)
    exd = None if ex is None else (ex[0].to(device), ex[1].to(device))
    s, i = hardneg.ops.topk_mine(q, c, k, metric=metric, exclude=exd, tie_break=tie, backend=backend)
    assert s.device.type == device and i.device.type == device
    return s.cpu(), i.cpu()


@pytest.mark.parametrize("backend,device", BACKENDS)
@pytest.mark.parametrize("metric", ["dot", "l2", "cos"])
@pytest.mark.parametrize("keys", ["permutation", "repeated", "int32"])
@pytest.mark.parametrize("B,N,k", [(6, 45, 1), (9, 130, 13), (4, 20, 33), (0, 10, 3)])
def test_tie_break_orders_ties_by_key(backend, device, metric, keys, B, N, k):
    # integer-valued rows: exact ties in every backend's arithmetic; the keys decide each tie (then the id)
    gen = torch.Generator().manual_seed(hash((metric, keys, B, N, k)) % 2**31)
    q = torch.randint(-2, 3, (B, 4), generator=gen).float()
    c = torch.randint(-1, 2, (N, 4), generator=gen).float()
    tie = torch.randperm(N, generator=gen) if keys == "permutation" else torch.randint(0, 5, (N,), generator=gen)
    if keys == "int32":
        tie = tie.int()
    ex = random_csr(B, N, 5, gen)
    s, i = _run_tie(backend, device, q, c, k, metric, ex, tie)
    assert_topk_matches(q, c, k, metric, ex, s, i, strict_ties=exact_ties(backend, device), tie_break=tie)
    if exact_ties(backend, device) and metric != "cos":
        rs, ri = hardneg.ops.topk_mine(q, c, k, metric=metric, exclude=ex, tie_break=tie, backend="reference")
        assert torch.equal(i, ri)


@pytest.mark.parametrize("backend,device", BACKENDS)
def test_tie_break_on_one_tie_is_the_key_order(backend, device):
    # every candidate the same: the result is the admissible ids in key order, padded past N
    N = 12
    c = torch.ones(N, 3)
    q = torch.ones(3, 3)
    tie = torch.tensor([5, 3, 9, 0, 7, 3, 11, 2, 8, 1, 10, 4])
    ex = (torch.tensor([0, 0, 2, 14]), torch.tensor([3, 9, *range(N)]))
    s, i = _run_tie(backend, device, q, c, 15, "dot", ex, tie)
    order = sorted(range(N), key=lambda j: (int(tie[j]), j))
    assert i[0].tolist() == order + [-1] * 3
    assert i[1].tolist() == [j for j in order if j not in (3, 9)] + [-1] * 5
    assert (i[2] == -1).all() and torch.isneginf(s[2]).all()  # every id excluded
    s1, i1 = _run_tie(backend, device, q, c, 1, "dot", None, tie)
    assert i1[:, 0].tolist() == [3, 3, 3]  # k = 1: the smallest key


def test_tie_break_empty_candidates_and_random_order_is_uniform():
    s, i = hardneg.ops.topk_mine(torch.randn(2, 4), torch.randn(0, 4), 3, tie_break=torch.zeros(0, dtype=torch.int64))
    assert (i == -1).all() and torch.isneginf(s).all()
    # a fresh random permutation per call picks each of 10 tied candidates first with probability 1/10
    gen = torch.Generator().manual_seed(0)
    c = torch.cat([torch.ones(10, 2), torch.zeros(5, 2)])
    counts = torch.zeros(15)
    for _ in range(4000):
        _, i = hardneg.ops.topk_mine(torch.ones(1, 2), c, 1, tie_break=torch.randperm(15, generator=gen))
        counts[i[0, 0]] += 1
    assert counts[10:].sum() == 0
    from hardneg.testing import chi2_quantile, chi2_stat

    stat, df = chi2_stat(counts[:10], torch.full((10,), 0.1))
    assert stat < chi2_quantile(df)


def test_tie_break_crosses_chunks():
    # the same row in two of the CPU kernel's 65,536-candidate chunks: the key, not the id, picks the winner
    gen = torch.Generator().manual_seed(6)
    q = torch.randn(2, 4, generator=gen)
    c = torch.randn(140_000, 4, generator=gen)
    c[100_000] = c[7]
    q[0] = c[7]  # l2: the two copies score 0, above every other candidate
    tie = torch.arange(140_000)
    tie[100_000] = -1  # ranks before every other key
    s, i = hardneg.ops.topk_mine(q, c, 5, metric="l2", tie_break=tie, backend="cpu")
    assert i[0, :2].tolist() == [100_000, 7]
    assert_topk_matches(q, c, 5, "l2", None, s, i, strict_ties=True, tie_break=tie)


# ---------------------------------------------------------------- bad input


def _ok():
    return torch.randn(3, 4), torch.randn(10, 4)


@pytest.mark.parametrize(
    "kwargs,exc,frag",
    [
        (dict(query=torch.randn(4)), ValueError, "'query' must be a 2-D"),
        (dict(query=torch.ones(3, 4, dtype=torch.int64)), TypeError, "'query' must be a 2-D floating"),
        (dict(query=[[1.0]]), TypeError, "'query' must be a torch.Tensor"),
        (dict(candidates=torch.randn(10, 5)), ValueError, "same d"),
        (dict(candidates=torch.randn(10, 4, dtype=torch.float64)), TypeError, "same dtype"),
        (dict(candidates=torch.randn(2, 10, 4)), ValueError, "'candidates' must be a 2-D"),
        (dict(k=0), ValueError, "'k' must be >= 1"),
        (dict(k=-3), ValueError, "'k' must be >= 1"),
        (dict(k=2.5), TypeError, "'k' must be an int"),
        (dict(metric="euclid"), ValueError, "'metric' must be one of"),
        (dict(metric=3), TypeError, "'metric' must be a str"),
        (dict(query=torch.randn(3, 3), candidates=torch.randn(10, 3), metric="rotate"), ValueError, "even d"),
        (dict(exclude=torch.tensor([1, 2])), TypeError, "CSR pair"),
        (dict(exclude=(torch.tensor([0, 1]), torch.tensor([2]))), ValueError, "must have 4 entries"),
        (dict(exclude=(torch.tensor([0, 2, 1, 2]), torch.tensor([1, 2]))), ValueError, "non-decreasing"),
        (dict(exclude=(torch.tensor([0, 1, 1, 2]), torch.tensor([1, 10]))), ValueError, "ids must be in [0, 10)"),
        (dict(exclude=(torch.tensor([0, 1, 1, 2]), torch.tensor([-1, 3]))), ValueError, "ids must be in [0, 10)"),
        (dict(exclude=(torch.tensor([0, 1, 1, 3]), torch.tensor([1, 2]))), ValueError, "end at len(indices)"),
        (dict(exclude=(torch.tensor([0.0, 1, 1, 2]), torch.tensor([1, 2]))), TypeError, "indptr"),
        (dict(backend="cuda"), ValueError, "backend 'cuda'"),
        (dict(backend="gpu"), ValueError, "'backend' must be None or one of"),
        (dict(tie_break=torch.rand(10)), TypeError, "'tie_break' must be a 1-D integer tensor"),
        (dict(tie_break=[0] * 10), TypeError, "'tie_break' must be a torch.Tensor"),
        (dict(tie_break=torch.arange(9)), ValueError, "one key per candidate (10"),
        (dict(tie_break=torch.arange(10)[None]), ValueError, "'tie_break' must be a 1-D"),
        (dict(tie_break=torch.arange(10, device="meta")), ValueError, "'tie_break' is on the meta device"),
    ],
)
def test_bad_input(kwargs, exc, frag):
    q, c = _ok()
    args = dict(query=q, candidates=c, k=2)
    args.update(kwargs)
    with pytest.raises(exc) as e:
        hardneg.ops.topk_mine(args.pop("query"), args.pop("candidates"), args.pop("k"), **args)
    assert frag in str(e.value) and "topk_mine" in str(e.value)


@pytest.mark.parametrize("where", ["query", "candidates"])
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_rejected(where, bad):
    q, c = _ok()
    (q if where == "query" else c)[1, 2] = bad
    with pytest.raises(ValueError, match=f"'{where}' must be finite"):
        hardneg.ops.topk_mine(q, c, 2)


def test_device_mismatch_rejected():
    q, c = _ok()
    meta = torch.randn(10, 4, device="meta")  # the only second device a CPU machine has
    with pytest.raises(ValueError, match="'candidates' is on the meta device"):
        hardneg.ops.topk_mine(q, meta, 2)
    if torch.cuda.is_available():
        with pytest.raises(ValueError, match="same device"):
            hardneg.ops.topk_mine(q, torch.randn(10, 4, device="cuda"), 2)


def test_core_rejects_bad_values_directly():
    # the extension is callable directly: it must raise ValueError, not crash
    from hardneg import _core

    with pytest.raises(ValueError, match="k must be >= 1"):
        _core.topk_mine_cpu(1, 1, 4, 1, 1, 4, 4, 0, 0, 0, 0, 1, 1, 1)
    with pytest.raises(ValueError, match="unknown metric"):
        _core.topk_mine_cpu(1, 1, 4, 1, 1, 4, 4, 9, 1, 0, 0, 1, 1, 1)
    with pytest.raises(ValueError, match="row strides"):
        _core.topk_mine_cpu(1, 1, 2, 1, 1, 4, 4, 0, 1, 0, 0, 1, 1, 1)
    # the tie keys cross the boundary by name
    q, c, tie = torch.ones(1, 2), torch.ones(3, 2), torch.tensor([2, 0, 1])
    s, i = torch.empty(1, 2), torch.empty(1, 2, dtype=torch.int64)
    _core.topk_mine_cpu(query=q.data_ptr(), num_queries=1, query_stride=2, candidates=c.data_ptr(), num_candidates=3,
                        candidate_stride=2, dim=2, metric=0, k=2, exclude_indptr=0, exclude_indices=0,
                        out_scores=s.data_ptr(), out_ids=i.data_ptr(), num_threads=1, tie_break=tie.data_ptr())
    assert i.tolist() == [[1, 2]]


# ---------------------------------------------------------------- fuzz


@st.composite
def problems(draw):
    B = draw(st.integers(0, 6))
    N = draw(st.integers(0, 40))
    d = draw(st.integers(1, 9))
    k = draw(st.integers(-1, 50))
    metric = draw(st.sampled_from(METRICS + ["bogus"]))
    dtype = draw(st.sampled_from([torch.float32, torch.float32, torch.float64, torch.int64]))
    seed = draw(st.integers(0, 2**31 - 1))
    ex_kind = draw(st.sampled_from(["none", "ok", "ok", "badlen", "nonmono", "range", "dtype"]))
    nan = draw(st.booleans()) and draw(st.booleans()) and draw(st.booleans())
    return B, N, d, k, metric, dtype, seed, ex_kind, nan


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problems())
def test_fuzz_never_garbage(p):
    B, N, d, k, metric, dtype, seed, ex_kind, nan = p
    gen = torch.Generator().manual_seed(seed)
    q = (torch.randn(B, d, generator=gen) * 3).to(dtype)
    c = (torch.randn(N, d, generator=gen) * 3).to(dtype)
    if N > 3 and dtype != torch.int64:
        c[N // 2] = c[0]
    nan = nan and N > 0 and dtype != torch.int64
    if nan:
        c[0, 0] = float("nan")
    ex = None
    if ex_kind != "none":
        indptr, idx = random_csr(B, N, 5, gen)
        if ex_kind == "badlen":
            indptr = indptr[:-1] if indptr.numel() > 1 else torch.zeros(3, dtype=torch.int64)
        elif ex_kind == "nonmono" and B >= 2 and idx.numel():
            indptr[1] = indptr[-1] + 1
        elif ex_kind == "range":
            idx = torch.cat([idx, torch.tensor([N])])
            indptr[-1] += 1
        elif ex_kind == "dtype":
            indptr = indptr.float()
        ex = (indptr, idx)
    for backend in ("cpu", "reference"):
        try:
            s, i = hardneg.ops.topk_mine(q, c, k, metric=metric, exclude=ex, backend=backend)
        except (TypeError, ValueError) as e:
            assert "topk_mine" in str(e)
            continue
        assert dtype != torch.int64 and k >= 1 and metric in METRICS and not nan
        assert_topk_matches(q.float() if dtype == torch.float64 else q, c.float() if dtype == torch.float64 else c,
                            k, metric, ex, s, i, dtype=torch.float32)


TRITON = [p for p in BACKENDS if p.values[0] == "triton"]


@pytest.mark.parametrize("backend,device", TRITON)
@pytest.mark.parametrize("case", ["many_segments", "sorted_candidates", "all_ties"])
def test_triton_two_pass_bound_and_fallback(backend, device, case):
    """The segment-max bound (many segments per row), adversarial order, and overflow (massive ties)."""
    gen = torch.Generator().manual_seed(21)
    q = torch.randn(20, 8, generator=gen)
    c = torch.randn(3000, 8, generator=gen)
    if case == "sorted_candidates":
        s = (q.mean(0, keepdim=True) @ c.T)[0]
        c = c[torch.argsort(s, descending=True)]
        q = q * 0 + q.mean(0, keepdim=True)
    elif case == "all_ties":
        c = c[:1].expand(3000, 8).contiguous()
    ex = random_csr(20, 3000, 5, gen)
    s, i = _run(backend, device, q, c, 3, "dot", ex)
    assert_topk_matches(q, c, 3, "dot", ex, s, i, strict_ties=case == "all_ties" and exact_ties(backend, device))


@pytest.mark.parametrize("backend,device", TRITON)
def test_triton_large_k(backend, device):
    gen = torch.Generator().manual_seed(31)
    q = torch.randn(3, 4, generator=gen)
    c = torch.randn(1500, 4, generator=gen)
    s, i = _run(backend, device, q, c, 1100, "dot")
    assert_topk_matches(q, c, 1100, "dot", None, s, i)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (wide rows only matter for real shared memory)")
@pytest.mark.parametrize("d,dtype", [(200, torch.float32), (512, torch.float32), (300, torch.bfloat16), (200, torch.float64)])
def test_triton_wide_rows_fit_shared_memory(d, dtype):
    """Regression: d=200 float32 asked for 256 KiB of shared memory on an H100 (DistMult d=200 training)."""
    g = torch.Generator().manual_seed(0)
    q = torch.randn(300, d, generator=g).to("cuda", dtype)
    c = torch.randn(5000, d, generator=g).to("cuda", dtype)
    s, i = hardneg.ops.topk_mine(q, c, 16, backend="triton")
    # the Triton backend computes float64 inputs in float32 (prepare_inputs), so float32 tolerances apply
    assert_topk_matches(q.double(), c.double(), 16, "dot", None, s, i,
                        dtype=torch.float32 if dtype == torch.float64 else dtype)
    ids, lp = hardneg.ops.sample_by_score(q, c, 8, backend="triton", generator=torch.Generator("cuda").manual_seed(0))
    assert bool((ids >= 0).all())
