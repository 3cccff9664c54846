"""mlp_topk_mine: every backend against the float64 reference (the whole [B, N, d] hidden layer), shapes that break
the 6x16 tiles, per-pair offsets, ties and tie keys, exclusions, empty inputs, both CPU builds, and every
documented error."""
import textwrap

import pytest
import torch

import hardneg
from hardneg.ops.mining import mine_decoder_table
from hardneg.reference.mining import mlp_scores
from hardneg.testing import assert_topk_matches
from conftest import backend_params, run_isa_builds

BACKENDS = backend_params("mlp_topk_mine")


def random_csr(B, N, max_per_row, gen):
    counts = torch.randint(0, max_per_row + 1, (B,), generator=gen)
    indptr = torch.zeros(B + 1, dtype=torch.int64)
    indptr[1:] = counts.cumsum(0)
    idx = torch.randint(0, max(N, 1), (int(indptr[-1]),), generator=gen)
    if idx.numel() > 2:
        idx[1] = idx[0]  # a duplicate, and rows unsorted
    return indptr, idx


def random_offsets(B, N, d, max_per_row, gen):
    """(indptr, ids, values): distinct ids per row, in random order."""
    counts = torch.randint(0, min(max_per_row, N) + 1, (B,), generator=gen)
    ids = torch.cat([torch.randperm(N, generator=gen)[:int(c)] for c in counts]) if B else torch.zeros(0, dtype=torch.int64)
    indptr = torch.zeros(B + 1, dtype=torch.int64)
    indptr[1:] = counts.cumsum(0)
    return indptr, ids, torch.randn(ids.numel(), d, generator=gen)


def _dev(x, device):
    return None if x is None else tuple(t.to(device) for t in x)


def _run(backend, device, q, c, w, k, **kw):
    for key in ("exclude", "offsets"):
        kw[key] = _dev(kw.get(key), device)
    if kw.get("tie_break") is not None:
        kw["tie_break"] = kw["tie_break"].to(device)
    s, i = hardneg.ops.mlp_topk_mine(q.to(device), c.to(device), w.to(device), k, backend=backend, **kw)
    assert s.device.type == device and i.device.type == device
    return s.cpu(), i.cpu()


def _check(q, c, w, k, s, i, *, exclude=None, offsets=None, bias=0.0, tie_break=None, strict_ties=False):
    ex = None if exclude is None else hardneg._validate.normalize_csr(exclude[0], exclude[1], q.shape[0], c.shape[0])
    S = mlp_scores(q, c, w, bias, offsets)
    assert_topk_matches(q, c, k, None, ex, s, i, tie_break=tie_break, strict_ties=strict_ties, reference_scores=S)


@pytest.mark.parametrize("backend,device", BACKENDS)
@pytest.mark.parametrize("B,N,d,k", [(5, 97, 6, 1), (33, 517, 18, 7), (3, 40, 10, 60), (13, 300, 100, 20),
                                     (7, 16, 8, 16), (1, 1, 1, 3)])
@pytest.mark.parametrize("with_offsets", [False, True])
def test_matches_reference(backend, device, B, N, d, k, with_offsets):
    gen = torch.Generator().manual_seed(hash((B, N, d, k, with_offsets)) % 2**31)
    q, c, w = torch.randn(B, d, generator=gen), torch.randn(N, d, generator=gen), torch.randn(d, generator=gen)
    ex = random_csr(B, N, 6, gen)
    off = random_offsets(B, N, d, 9, gen) if with_offsets else None
    s, i = _run(backend, device, q, c, w, k, exclude=ex, offsets=off)
    _check(q, c, w, k, s, i, exclude=ex, offsets=off)


@pytest.mark.parametrize("backend,device", BACKENDS)
@pytest.mark.parametrize("B,U,N,k", [(9, 40, 300, 7), (4, 1, 50, 60), (13, 200, 200, 1), (3, 17, 1000, 25)])
def test_candidate_index_scores_shared_rows_once(backend, device, B, U, N, k):
    """``candidate_index``: ids share rows of a table of distinct rows; results, exclusions, offsets and tie keys are
    those of the gathered table (ties between ids of one row go by key, then id)."""
    gen = torch.Generator().manual_seed(hash((B, U, N, k)) % 2**31)
    d = 12
    q, rows, w = torch.randn(B, d, generator=gen), torch.randn(U, d, generator=gen), torch.randn(d, generator=gen)
    index = torch.randint(0, U, (N,), generator=gen)
    ex, off = random_csr(B, N, 5, gen), random_offsets(B, N, d, 6, gen)
    keys = torch.randperm(N, generator=gen)
    s, i = _run(backend, device, q, rows, w, k, exclude=ex, offsets=off, tie_break=keys,
                candidate_index=index.to(device))
    _check(q, rows[index], w, k, s, i, exclude=ex, offsets=off, tie_break=keys, strict_ties=True)
    ref = hardneg.ops.mlp_topk_mine(q, rows[index], w, k, exclude=ex, offsets=off, tie_break=keys, backend=backend)
    assert torch.equal(i, ref[1].cpu()) and torch.allclose(s, ref[0].cpu(), atol=1e-5)


def test_cpu_candidate_index_in_query_blocks_and_any_thread_count(monkeypatch):
    """The indexed CPU path scores [rows, U] blocks of at most 8 Mi floats: a wide table takes several query
    blocks; the answer does not depend on them nor on the thread count."""
    gen = torch.Generator().manual_seed(11)
    U, N, B = 70_000, 90_000, 250  # 119 rows a block: three blocks
    q, rows, w = torch.randn(B, 2, generator=gen), torch.randn(U, 2, generator=gen), torch.rand(2, generator=gen)
    index = torch.randint(0, U, (N,), generator=gen)
    ex = random_csr(B, N, 3, gen)
    ref = hardneg.ops.mlp_topk_mine(q, rows[index], w, 6, exclude=ex, backend="cpu")
    for threads in (1, 2, 3):
        monkeypatch.setattr(hardneg.ops.mining, "num_threads", lambda t=threads: t)
        s, i = hardneg.ops.mlp_topk_mine(q, rows, w, 6, exclude=ex, candidate_index=index, backend="cpu")
        assert torch.equal(i, ref[1]) and torch.equal(s, ref[0])


@pytest.mark.parametrize("backend,device", BACKENDS)
def test_offsets_move_a_candidate_and_exclusion_wins(backend, device):
    gen = torch.Generator().manual_seed(2)
    q, c, w = torch.randn(4, 12, generator=gen), torch.randn(50, 12, generator=gen), torch.rand(12, generator=gen)
    # a large positive vector inside the ReLU (all weights > 0): candidate 37 becomes every row's best, except in
    # row 2, which excludes it
    off = (torch.tensor([0, 1, 2, 3, 4]), torch.tensor([37, 37, 37, 37]), torch.full((4, 12), 50.0))
    ex = (torch.tensor([0, 0, 0, 1, 1]), torch.tensor([37]))
    s, i = _run(backend, device, q, c, w, 5, exclude=ex, offsets=off)
    assert (i[[0, 1, 3], 0] == 37).all() and not (i[2] == 37).any()
    _check(q, c, w, 5, s, i, exclude=ex, offsets=off)
    # a pair listed twice with the same values is one pair
    dup = (torch.tensor([0, 2, 3, 4, 5]), torch.tensor([37, 37, 37, 37, 37]), torch.full((5, 12), 50.0))
    s2, i2 = _run(backend, device, q, c, w, 5, exclude=ex, offsets=dup)
    assert torch.equal(i2, i) and torch.allclose(s2, s)


@pytest.mark.parametrize("backend,device", BACKENDS)
def test_bias_shifts_scores_not_ranks(backend, device):
    gen = torch.Generator().manual_seed(4)
    q, c, w = torch.randn(6, 9, generator=gen), torch.randn(80, 9, generator=gen), torch.randn(9, generator=gen)
    s0, i0 = _run(backend, device, q, c, w, 7)
    s1, i1 = _run(backend, device, q, c, w, 7, bias=-2.5)
    assert torch.equal(i0, i1) and torch.allclose(s1, s0 - 2.5, atol=1e-5)
    _check(q, c, w, 7, s1, i1, bias=-2.5)


@pytest.mark.parametrize("backend,device", BACKENDS)
def test_ties_go_to_the_smaller_id_or_key(backend, device):
    gen = torch.Generator().manual_seed(7)
    base = torch.randn(5, 8, generator=gen)
    c = base[torch.randint(0, 5, (130,), generator=gen)]  # many exact duplicates: bitwise ties in every backend
    q, w = torch.randn(9, 8, generator=gen), torch.randn(8, generator=gen)
    s, i = _run(backend, device, q, c, w, 13)
    _check(q, c, w, 13, s, i, strict_ties=True)
    keys = torch.randperm(130, generator=gen)
    s, i = _run(backend, device, q, c, w, 13, tie_break=keys)
    _check(q, c, w, 13, s, i, tie_break=keys, strict_ties=True)
    ref = hardneg.ops.mlp_topk_mine(q, c, w, 13, tie_break=keys, backend="reference")[1]
    assert torch.equal(i, ref)
    # integer-valued inputs with an offset on a tied candidate
    qi, ci = torch.randint(-2, 3, (4, 4), generator=gen).float(), torch.randint(-2, 3, (40, 4), generator=gen).float()
    wi = torch.tensor([1.0, -1.0, 2.0, 0.5])
    off = (torch.tensor([0, 1, 1, 2, 2]), torch.tensor([3, 9]), torch.tensor([[1.0, 0, 0, 0], [0, 0, -1.0, 0]]))
    s, i = _run(backend, device, qi, ci, wi, 11, offsets=off, tie_break=keys[:40].argsort())
    assert torch.equal(i, hardneg.ops.mlp_topk_mine(qi, ci, wi, 11, offsets=off, tie_break=keys[:40].argsort(),
                                                     backend="reference")[1])


@pytest.mark.parametrize("backend,device", BACKENDS)
def test_everything_excluded_k_above_n_and_empty(backend, device):
    gen = torch.Generator().manual_seed(1)
    q, c, w = torch.randn(4, 5, generator=gen), torch.randn(6, 5, generator=gen), torch.randn(5, generator=gen)
    ex = (torch.tensor([0, 6, 6, 9, 15]), torch.tensor([5, 4, 3, 2, 1, 0, 1, 1, 2, 0, 1, 2, 3, 4, 5]))
    off = (torch.tensor([0, 1, 2, 2, 2]), torch.tensor([0, 0]), torch.ones(2, 5))
    s, i = _run(backend, device, q, c, w, 10, exclude=ex, offsets=off)
    assert (i[0] == -1).all() and torch.isneginf(s[0]).all()  # row 0: all excluded (its offset too)
    assert (i[3] == -1).all()
    assert set(i[1, :6].tolist()) == set(range(6)) and (i[1, 6:] == -1).all()
    assert set(i[2, :4].tolist()) == {0, 3, 4, 5}
    _check(q, c, w, 10, s, i, exclude=ex, offsets=off)
    s, i = _run(backend, device, torch.randn(0, 4), torch.randn(10, 4), torch.randn(4), 3)
    assert s.shape == (0, 3) and i.shape == (0, 3)
    s, i = _run(backend, device, torch.randn(2, 4), torch.randn(0, 4), torch.randn(4), 3)
    assert (i == -1).all() and torch.isneginf(s).all()


def test_cpu_offsets_and_exclusions_across_chunks():
    """N above the CPU kernel's 65,536-candidate chunk: each row's offset and exclusion cursors start again in the
    second chunk, and the chunks merge in the full order."""
    gen = torch.Generator().manual_seed(5)
    q, c, w = torch.randn(3, 4, generator=gen), torch.randn(70_000, 4, generator=gen), torch.rand(4, generator=gen)
    c[69_000] = c[7]  # the same row in two chunks: ties resolve to id 7 first
    off = (torch.tensor([0, 2, 3, 5]), torch.tensor([66_000, 5, 69_999, 10, 65_537]), torch.full((5, 4), 30.0))
    ex = (torch.tensor([0, 1, 1, 2]), torch.tensor([69_999, 0]))
    s, i = hardneg.ops.mlp_topk_mine(q, c, w, 20, exclude=ex, offsets=off, backend="cpu")
    _check(q, c, w, 20, s, i, exclude=ex, offsets=off, strict_ties=True)
    assert i[0, :2].tolist() == [5, 66_000] or i[0, :2].tolist() == [66_000, 5]


@pytest.mark.parametrize("B", [1, 11, 50, 300])
def test_cpu_result_independent_of_thread_count(monkeypatch, B):
    gen = torch.Generator().manual_seed(B)
    q, c, w = torch.randn(B, 16, generator=gen), torch.randn(700, 16, generator=gen), torch.randn(16, generator=gen)
    off = random_offsets(B, 700, 16, 5, gen)
    outs = []
    for threads in (1, 2, 3):
        monkeypatch.setattr(hardneg._backend, "num_threads", lambda t=threads: t)
        monkeypatch.setattr(hardneg.ops.mining, "num_threads", lambda t=threads: t)
        outs.append(hardneg.ops.mlp_topk_mine(q, c, w, 9, offsets=off, backend="cpu"))
    for s, i in outs[1:]:
        assert torch.equal(s, outs[0][0]) and torch.equal(i, outs[0][1])


def test_generic_isa_matches_the_reference():
    """HARDNEG_ISA=generic forces the baseline tile kernels (read once per process: a subprocess)."""
    script = textwrap.dedent("""
        import torch, hardneg
        from hardneg.reference.mining import mlp_scores
        from hardneg.testing import assert_topk_matches
        g = torch.Generator().manual_seed(0)
        for d in (3, 8, 100):
            q, c, w = torch.randn(13, d, generator=g), torch.randn(203, d, generator=g), torch.randn(d, generator=g)
            s, i = hardneg.ops.mlp_topk_mine(q, c, w, 9, backend="cpu")
            assert_topk_matches(q, c, 9, None, None, s, i, reference_scores=mlp_scores(q, c, w))
        print("isa ok", hardneg._backend.core().build_info()["cpu_isa"])
    """)
    run_isa_builds(script)


def test_half_precision_and_no_gradient_on_cpu():
    gen = torch.Generator().manual_seed(9)
    q, c, w = torch.randn(5, 16, generator=gen), torch.randn(60, 16, generator=gen), torch.randn(16, generator=gen)
    for dtype in (torch.float16, torch.bfloat16):
        s, i = hardneg.ops.mlp_topk_mine(q.to(dtype), c.to(dtype), w.to(dtype), 4, backend="cpu")
        _check(q.to(dtype).float(), c.to(dtype).float(), w.to(dtype).float(), 4, s, i)
    qg = q.clone().requires_grad_()
    s, _ = hardneg.ops.mlp_topk_mine(qg, c, w, 4)
    assert not s.requires_grad  # mining selects; the model scores the chosen ids


def test_internal_entry_matches_the_op():
    """ENS's unchecked entry (inputs it builds itself) gives the op's ids, and falls back to the op past its
    preconditions (k > N)."""
    gen = torch.Generator().manual_seed(3)
    q, c, w = torch.randn(20, 32, generator=gen), torch.randn(150, 32, generator=gen), torch.randn(32, generator=gen)
    ex = hardneg._validate.normalize_csr(*random_csr(20, 150, 4, gen), 20, 150)
    off = random_offsets(20, 150, 32, 6, gen)
    rows = torch.repeat_interleave(torch.arange(20), off[0].diff())
    order = torch.argsort(rows * 150 + off[1])
    off = (off[0], off[1][order], off[2][order])
    tie = torch.randperm(150, generator=gen)
    for k in (20, 200):
        ids = mine_decoder_table("ens", q, c, w, k, ex, off, tie)
        assert torch.equal(ids, hardneg.ops.mlp_topk_mine(q, c, w, k, exclude=ex, offsets=off, tie_break=tie)[1])
    with pytest.raises(ValueError, match="ens: 'query' must be finite"):
        mine_decoder_table("ens", torch.full((2, 32), float("nan")), c, w, 5, None, None, None)


def _bad(**over):
    gen = torch.Generator().manual_seed(0)
    kw = dict(query=torch.randn(3, 4, generator=gen), candidates=torch.randn(10, 4, generator=gen),
              weight=torch.randn(4, generator=gen), k=2)
    kw.update(over)
    return kw


@pytest.mark.parametrize("kwargs,exc,frag", [
    (_bad(query=[[1.0]]), TypeError, "'query' must be a torch.Tensor"),
    (_bad(query=torch.ones(3, 4, dtype=torch.int64)), TypeError, "'query' must be a 2-D floating tensor"),
    (_bad(candidates=torch.randn(10, 5)), ValueError, "same d"),
    (_bad(candidates=torch.randn(10, 4, dtype=torch.float64)), TypeError, "same dtype"),
    (_bad(weight=None), TypeError, "'weight' must be a torch.Tensor"),
    (_bad(weight=torch.randn(5)), ValueError, "'weight' must be \\[d\\] = \\[4\\]"),
    (_bad(weight=torch.randn(4, 1)), ValueError, "'weight'"),
    (_bad(weight=torch.ones(4, dtype=torch.int64)), TypeError, "'weight' must be a 1-D floating tensor"),
    (_bad(k=0), ValueError, "'k'"),
    (_bad(k=2.0), TypeError, "'k'"),
    (_bad(bias="0"), TypeError, "'bias' must be a float"),
    (_bad(bias=True), TypeError, "'bias' must be a float"),
    (_bad(bias=float("inf")), ValueError, "'bias' must be finite"),
    (_bad(offsets=(torch.zeros(4, dtype=torch.int64), torch.zeros(0, dtype=torch.int64))), TypeError,
     "'offsets' must be a tuple \\(indptr, ids, values\\)"),
    (_bad(offsets=(torch.zeros(3, dtype=torch.int64), torch.zeros(0, dtype=torch.int64), torch.zeros(0, 4))),
     ValueError, "'offsets' indptr must have 4 entries"),
    (_bad(offsets=(torch.tensor([0, 1, 1, 1]), torch.tensor([0.5]), torch.zeros(1, 4))), TypeError,
     "'offsets\\[1\\] \\(indices\\)' must be"),
    (_bad(offsets=(torch.tensor([0, 1, 1, 1]), torch.tensor([10]), torch.zeros(1, 4))), ValueError,
     "'offsets' ids must be in \\[0, 10\\)"),
    (_bad(offsets=(torch.tensor([0, 1, 1, 1]), torch.tensor([3]), torch.zeros(1, 5))), ValueError,
     "'offsets' values must be \\[E, d\\] = \\[1, 4\\]"),
    (_bad(offsets=(torch.tensor([0, 1, 1, 1]), torch.tensor([3]), torch.zeros(1, 4, dtype=torch.int64))),
     TypeError, "'offsets values' must be a 2-D floating tensor"),
    (_bad(offsets=(torch.tensor([0, 2, 2, 2]), torch.tensor([3, 3]), torch.tensor([[0.0] * 4, [1.0] * 4]))),
     ValueError, "lists a \\(row, id\\) pair twice with different values"),
    (_bad(offsets=(torch.tensor([0, 1, 1, 1]), torch.tensor([3]), torch.full((1, 4), float("nan")))), ValueError,
     "'offsets values' must be finite"),
    (_bad(exclude=(torch.tensor([0, 1]), torch.tensor([0]))), ValueError, "'exclude' indptr must have 4 entries"),
    (_bad(exclude=(torch.tensor([0, 1, 1, 1]), torch.tensor([11]))), ValueError, "'exclude' ids must be in"),
    (_bad(tie_break=torch.arange(9)), ValueError, "'tie_break' must have one key per candidate"),
    (_bad(tie_break=torch.rand(10)), TypeError, "'tie_break' must be"),
    (_bad(weight=torch.tensor([1.0, float("inf"), 0, 0])), ValueError, "'weight' must be finite"),
    (_bad(candidate_index=torch.tensor([0.0, 1.0])), TypeError, "'candidate_index' must be a 1-D integer tensor"),
    (_bad(candidate_index=torch.zeros(2, 2, dtype=torch.int64)), ValueError, "'candidate_index' must be a 1-D"),
    (_bad(candidate_index=torch.tensor([0, 10])), ValueError, "'candidate_index' rows of 'candidates' must be in"),
    (_bad(candidate_index=torch.zeros(3, dtype=torch.int64, device="meta")), ValueError,
     "'candidate_index' is on the meta device"),
    (_bad(candidate_index=torch.tensor([0, 1, 2]), exclude=(torch.tensor([0, 1, 1, 1]), torch.tensor([3]))),
     ValueError, "'exclude' ids must be in \\[0, 3\\)"),
    (_bad(candidate_index=torch.tensor([0, 1, 2]), tie_break=torch.arange(10)), ValueError,
     "'tie_break' must have one key per candidate \\(3"),
    (_bad(query=torch.full((3, 4), 1e38)), ValueError, "could overflow float32"),
    (_bad(backend="cuda"), ValueError, "backend"),
])
def test_bad_input(kwargs, exc, frag):
    with pytest.raises(exc, match=frag):
        hardneg.ops.mlp_topk_mine(**kwargs)


@pytest.mark.parametrize("where", ["query", "candidates"])
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_rejected(where, bad):
    kw = _bad()
    kw[where] = kw[where].clone()
    kw[where][1, 2] = bad
    with pytest.raises(ValueError, match=f"'{where}' must be finite"):
        hardneg.ops.mlp_topk_mine(**kw)


def test_device_mismatch_rejected():
    kw = _bad(weight=torch.randn(4, device="meta"))
    with pytest.raises(ValueError, match="same device|on"):
        hardneg.ops.mlp_topk_mine(**kw)


def test_core_rejects_bad_values_directly():
    """The binding's own checks (a caller that skips the Python layer): no null weights, offsets complete."""
    core = hardneg._backend.core()
    q, c, w = torch.randn(2, 4), torch.randn(5, 4), torch.randn(4)
    s, i = torch.empty(2, 3), torch.empty(2, 3, dtype=torch.int64)
    base = dict(query=q.data_ptr(), num_queries=2, query_stride=4, candidates=c.data_ptr(), num_candidates=5,
                candidate_stride=4, dim=4, weight=w.data_ptr(), k=3, exclude_indptr=0, exclude_indices=0,
                offset_indptr=0, offset_indices=0, offset_values=0, candidate_index=0, num_ids=0,
                out_scores=s.data_ptr(), out_ids=i.data_ptr())
    with pytest.raises(ValueError, match="null weight"):
        core.mlp_topk_mine_cpu(**dict(base, weight=0))
    ptr = torch.zeros(3, dtype=torch.int64)
    with pytest.raises(ValueError, match="offset_indptr needs"):
        core.mlp_topk_mine_cpu(**dict(base, offset_indptr=ptr.data_ptr()))
    with pytest.raises(ValueError, match="k must be >= 1"):
        core.mlp_topk_mine_cpu(**dict(base, k=0))
    core.mlp_topk_mine_cpu(**base)
    ref = hardneg.ops.mlp_topk_mine(q, c, w, 3, backend="reference")
    assert torch.equal(i, ref[1])
