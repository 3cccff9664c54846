"""The hardneg:: custom ops (hardneg.ops._library): opcheck on every op, the same results as the public functions
(random ops: seed s == generator=torch.Generator().manual_seed(s)), the same errors, exact fake shapes."""
import pytest
import torch

import hardneg
from hardneg.ops import _library as L

H = torch.ops.hardneg
needs_opaque = pytest.mark.skipif("corrupt" not in L.OPS, reason="torch without opaque objects (< 2.10)")
# torch's schema checker cannot convert a reference opaque object with non-tensor attributes (torch 2.13:
# "Could not cast attribute ... to type Tensor (inferred)"), so the ops taking a KnownSet / TemporalGraph run
# every other opcheck test
OPAQUE_UTILS = ("test_autograd_registration", "test_faketensor", "test_aot_dispatch_dynamic")

@pytest.fixture(autouse=True)
def _one_thread(monkeypatch):
    # tiny problems: with 2 OpenMP threads on a loaded 2-core box each kernel call waits ~10 ms for thread wake-up
    monkeypatch.setenv("HARDNEG_NUM_THREADS", "1")



def _gen(seed):
    return torch.Generator().manual_seed(seed)


@pytest.fixture(scope="module")
def kg():
    g = _gen(0)
    E, R = 30, 3
    T = torch.stack([torch.randint(0, E, (120,), generator=g), torch.randint(0, R, (120,), generator=g),
                     torch.randint(0, E, (120,), generator=g)], 1)
    return T, hardneg.KnownSet.from_triples(T, E, R), E, R


@pytest.fixture(scope="module")
def tgraph():
    g = _gen(1)
    src, dst = torch.randint(0, 10, (60,), generator=g), torch.randint(0, 10, (60,), generator=g)
    return hardneg.TemporalGraph(src, dst, torch.arange(60))


def _qc(B=5, N=40, d=8, seed=0):
    g = _gen(seed)
    return torch.randn(B, d, generator=g), torch.randn(N, d, generator=g)


def test_every_public_op_has_a_custom_op():
    public = {n for n in hardneg.ops.__all__ if not isinstance(getattr(hardneg.ops, n), type)}  # not Subgraphs
    assert public <= set(L.OPS) or "corrupt" not in L.OPS
    for name in L.OPS:
        assert hasattr(H, name)


# ------------------------------------------------------------------------------------------------ opcheck
@pytest.mark.parametrize("metric", ["l2", "rotate"])
def test_opcheck_topk_mine(metric):
    q, c = _qc()
    ex = (torch.tensor([0, 2, 2, 3, 3, 3]), torch.tensor([1, 5, 7]))
    torch.library.opcheck(L.topk_mine, (q.requires_grad_(), c.requires_grad_(), 4, metric, *ex, None))
    torch.library.opcheck(L.topk_mine, (q, c, 50, metric, None, None, None))  # k > N: padding
    tie = torch.randperm(c.shape[0], generator=torch.Generator().manual_seed(1))
    torch.library.opcheck(L.topk_mine, (q, c, 4, metric, *ex, None, tie))  # random tie order


@pytest.mark.parametrize("replacement", [False, True])
def test_opcheck_sample_by_score(replacement):
    q, c = _qc()
    ex = (torch.tensor([0, 2, 2, 3, 3, 3]), torch.tensor([1, 5, 7]))
    # inputs without grad: opcheck's AOT test sums every output into one int64 accumulator when the first output
    # is integer (ids) and fails on the float log_prob; log_prob's gradient has its own gradcheck (test_autograd)
    torch.library.opcheck(L.sample_by_score, (q, c, 3, "cos", "softplus", 0.5, *ex, replacement, 7, None))
    torch.library.opcheck(L.sample_by_score, (q.requires_grad_(), c.requires_grad_(), 3, "cos", "softplus", 0.5,
                                              *ex, replacement, 7, None),
                          test_utils=("test_schema", "test_autograd_registration", "test_faketensor"))


def test_opcheck_mlp_topk_mine():
    q, c = _qc()
    w = torch.randn(q.shape[1], generator=_gen(2))
    ex = (torch.tensor([0, 2, 2, 3, 3, 3]), torch.tensor([1, 5, 7]))
    off = (torch.tensor([0, 1, 1, 2, 2, 3]), torch.tensor([4, 9, 2]), torch.randn(3, q.shape[1], generator=_gen(3)))
    torch.library.opcheck(L.mlp_topk_mine, (q, c, w, 4, 0.5, *ex, *off, None, None, None))
    index = torch.randint(0, c.shape[0], (60,), generator=_gen(4))
    tie = torch.randperm(60, generator=_gen(5))
    torch.library.opcheck(L.mlp_topk_mine, (q, c, w, 70, 0.0, None, None, None, None, None, index, tie, None))


def test_mlp_topk_mine_compiles_into_one_graph():
    """Traced by torch.compile (fullgraph) through its custom op: the eager function's results."""
    q, c = _qc()
    w = torch.randn(q.shape[1], generator=_gen(2))
    ex = (torch.tensor([0, 2, 2, 3, 3, 3]), torch.tensor([1, 5, 7]))

    def f(q, c, w):
        return hardneg.ops.mlp_topk_mine(q * 2, c, w, 4, exclude=ex)

    got = torch.compile(f, fullgraph=True, backend="eager")(q, c, w)
    want = f(q, c, w)
    assert torch.equal(got[1], want[1]) and torch.equal(got[0], want[0])


def test_opcheck_attached_grads():
    q, c = _qc()
    s, i = hardneg.ops.topk_mine(q, c, 3)
    torch.library.opcheck(L.topk_scores, (q.requires_grad_(), c.requires_grad_(), i, s, "dot"))
    ids, lp = hardneg.ops.sample_by_score(q, c, 3, generator=_gen(0))
    torch.library.opcheck(L.score_log_prob, (q, c, ids, lp, "dot", "softmax", 1.0, None, None))


def test_opcheck_sample_from_weights():
    w = torch.rand(4, 9, generator=_gen(0))
    torch.library.opcheck(L.sample_from_weights, (w, 3, False, 11))
    torch.library.opcheck(L.sample_from_weights, (w, 5, True, 11))


@needs_opaque
def test_opcheck_draw():
    """hardneg::draw, the traceable uniform / normal of a SeedStream: opcheck, and torch.rand / torch.randn of the
    generator seeded with the same seed."""
    from hardneg._random import _draw

    for normal in (False, True):
        torch.library.opcheck(_draw, ([3, 4], 9, torch.float64, normal))
        g = torch.Generator().manual_seed(9)
        want = torch.randn(3, 4, generator=g) if normal else torch.rand(3, 4, generator=g)
        assert torch.equal(torch.ops.hardneg.draw([3, 4], 9, torch.float32, normal), want)


@needs_opaque
def test_opcheck_permutation():
    """hardneg::permutation, the traceable torch.randperm of a SeedStream: opcheck, and torch.randperm of the
    generator seeded with the same seed (so a SeedStream's draw i is the sub-seed generator's)."""
    from hardneg._random import SeedStream, _permutation, permutation

    torch.library.opcheck(_permutation, (17, 9))
    want = torch.randperm(17, generator=torch.Generator().manual_seed(9))
    assert torch.equal(torch.ops.hardneg.permutation(17, 9), want)
    s = SeedStream(4)
    sub = SeedStream(4).next()
    assert torch.equal(permutation(17, s, "cpu"), torch.randperm(17, generator=torch.Generator().manual_seed(sub)))
    assert torch.equal(torch.sort(permutation(0, torch.Generator(), "cpu")).values, torch.arange(0))


def test_opcheck_khop_pool():
    """hardneg::khop_pool, the khop sampler's numba walk as a custom op: opcheck, and the walk itself."""
    from hardneg.samplers.khop import _khop_pool, khop_neighborhood, undirected_csr

    indptr, indices = undirected_csr(torch.tensor([0, 1, 2, 3]), torch.tensor([1, 2, 3, 4]), 6)
    args = (torch.from_numpy(indptr), torch.from_numpy(indices), torch.tensor([0, 2, 5]), 2, 4, 7)
    torch.library.opcheck(_khop_pool, args)
    from hardneg._random import seed_from

    want, _ = khop_neighborhood(indptr, indices, [0, 2, 5], 2, 4, seed_from(torch.Generator().manual_seed(7), 2**62))
    assert torch.equal(_khop_pool(*args), torch.from_numpy(want))


def test_opcheck_filtering(kg):
    T, K, E, R = kg
    P = T[:6]
    torch.library.opcheck(L.corrupt, (P, 4, E, "both", K.handle), dict(seed=3), test_utils=OPAQUE_UTILS)
    torch.library.opcheck(L.corrupt, (P, 2, E), dict(seed=3), test_utils=OPAQUE_UTILS + ("test_schema",))  # no known
    torch.library.opcheck(L.known_contains, (K.handle, T[:8]), test_utils=OPAQUE_UTILS)
    cand = torch.randint(0, E, (6, 5), generator=_gen(2))
    torch.library.opcheck(L.known_mask, (K.handle, P[:, :2], cand), test_utils=OPAQUE_UTILS)
    torch.library.opcheck(L.known_exclusion, (K.handle, P[:, 1:], "head"), test_utils=OPAQUE_UTILS)


@needs_opaque
def test_opcheck_temporal_neighbors(tgraph):
    nodes, times = torch.tensor([0, 3, 9, 2]), torch.tensor([5, 30, 59, 0])
    torch.library.opcheck(L.temporal_neighbors, (tgraph.handle, nodes, times, 3), test_utils=OPAQUE_UTILS)
    torch.library.opcheck(L.temporal_neighbors, (tgraph.handle, nodes, times, 3, "uniform"), dict(seed=5),
                          test_utils=OPAQUE_UTILS)

    torch.library.opcheck(L.temporal_assemble, (tgraph.handle, nodes, times, 3), test_utils=OPAQUE_UTILS)
    feats = torch.randn(tgraph.kernel_view().num_edge_ids, 2, generator=_gen(4))
    torch.library.opcheck(L.temporal_assemble, (tgraph.handle, nodes, times, 3, times + 1, feats, "uniform"),
                          dict(seed=5), test_utils=OPAQUE_UTILS)


def _csr_graph():
    edges = torch.randint(0, 30, (80, 2), generator=_gen(11))
    return hardneg.graph.CSRGraph.from_edges(edges, 30)


def test_opcheck_enclosing_subgraphs():
    g = _csr_graph()
    pairs = torch.tensor([[0, 1], [2, 7], [5, 29]])
    torch.library.opcheck(L.enclosing_subgraphs, (g.indptr, g.indices, 30, pairs, 2))
    torch.library.opcheck(L.enclosing_subgraphs, (g.indptr, g.indices, 30, pairs, 2, 3), dict(seed=4))
    got = H.enclosing_subgraphs(g.indptr, g.indices, 30, pairs, 2, 3, seed=4)
    want = hardneg.ops.enclosing_subgraphs(g, pairs, 2, max_nodes_per_hop=3, generator=_gen(4))
    _equal(got, (want.nodes, want.node_ptr, want.edge_index, want.edge_ptr, want.labels))


# ------------------------------------------------------------------------------------------------ same results
def _equal(a, b):
    a, b = (a if isinstance(a, tuple) else (a,)), (b if isinstance(b, tuple) else (b,))
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert x.dtype == y.dtype and x.shape == y.shape
        assert torch.equal(x, y)


def test_same_results_as_public_functions(kg, tgraph):
    q, c = _qc()
    _equal(H.topk_mine(q, c, 4, "l1"), hardneg.ops.topk_mine(q, c, 4, metric="l1"))
    for rep in (False, True):
        _equal(H.sample_by_score(q, c, 3, replacement=rep, seed=9),
               hardneg.ops.sample_by_score(q, c, 3, replacement=rep, generator=_gen(9)))
    w = torch.rand(3, 6, generator=_gen(0))
    _equal(H.sample_from_weights(w, 2, False, 4), hardneg.ops.sample_from_weights(w, 2, replacement=False,
                                                                                generator=_gen(4)))
    if "corrupt" not in L.OPS:
        return
    T, K, E, R = kg
    _equal(H.corrupt(T[:5], 3, E, "both", K.handle, seed=2), hardneg.ops.corrupt(T[:5], 3, E, side="both", known=K,
                                                                           generator=_gen(2)))
    _equal(H.known_exclusion(K.handle, T[:4, :2]), hardneg.ops.known_exclusion(K, T[:4, :2]))
    nodes, times = torch.tensor([0, 3]), torch.tensor([20, 40])
    _equal(H.temporal_neighbors(tgraph.handle, nodes, times, 4, "uniform", seed=1),
           hardneg.ops.temporal_neighbors(tgraph, nodes, times, 4, strategy="uniform", generator=_gen(1)))
    got = H.temporal_assemble(tgraph.handle, nodes, times, 4, None, None, "uniform", seed=1)
    want = hardneg.ops.temporal_assemble(tgraph, nodes, times, 4, strategy="uniform", generator=_gen(1))
    _equal(got[:4], want[:4])
    assert want[4] is None and got[4].shape == (2, 4, 0)


def test_random_ops_reproducible_by_seed():
    q, c = _qc()
    a, b, d = (H.sample_by_score(q, c, 4, seed=s) for s in (5, 5, 6))
    assert torch.equal(a[0], b[0]) and not torch.equal(a[0], d[0])


# ------------------------------------------------------------------------------------------------ same errors
def _same_error(public, custom, exc, fragment):
    with pytest.raises(exc, match=fragment) as e1:
        public()
    with pytest.raises(exc, match=fragment) as e2:
        custom()
    assert str(e1.value) == str(e2.value)


def test_same_errors_mining():
    q, c = _qc()
    _same_error(lambda: hardneg.ops.topk_mine(q, c, 0), lambda: H.topk_mine(q, c, 0), ValueError, "'k' must be")
    _same_error(lambda: hardneg.ops.topk_mine(q, c, 2, metric="hamming"), lambda: H.topk_mine(q, c, 2, "hamming"),
                ValueError, "'metric'")
    _same_error(lambda: hardneg.ops.topk_mine(q.long(), c, 2), lambda: H.topk_mine(q.long(), c, 2), TypeError,
                "'query' must be a 2-D floating tensor")
    _same_error(lambda: hardneg.ops.topk_mine(q[:, :3], c, 2), lambda: H.topk_mine(q[:, :3], c, 2), ValueError,
                "same d")
    bad = (torch.tensor([0, 1]), torch.tensor([99]))
    _same_error(lambda: hardneg.ops.topk_mine(q, c, 2, exclude=bad), lambda: H.topk_mine(q, c, 2, "dot", *bad),
                ValueError, "exclude")
    _same_error(lambda: hardneg.ops.sample_by_score(q, c, 2, temperature=0.0),
                lambda: H.sample_by_score(q, c, 2, temperature=0.0), ValueError, "'temperature'")
    _same_error(lambda: hardneg.ops.sample_by_score(q, c, 2, weighting="max"),
                lambda: H.sample_by_score(q, c, 2, weighting="max"), ValueError, "'weighting'")
    qn = q.clone()
    qn[0, 0] = float("nan")
    _same_error(lambda: hardneg.ops.sample_by_score(qn, c, 2), lambda: H.sample_by_score(qn, c, 2), ValueError,
                "finite")
    _same_error(lambda: hardneg.ops.sample_from_weights(-torch.ones(2, 3), 1, replacement=True),
                lambda: H.sample_from_weights(-torch.ones(2, 3), 1, True), ValueError, ">= 0")
    _same_error(lambda: hardneg.ops.topk_mine(q, c, 2, backend="nope"), lambda: H.topk_mine(q, c, 2, backend="nope"),
                ValueError, "'backend'")


@needs_opaque
def test_same_errors_filtering(kg, tgraph):
    T, K, E, R = kg
    bad = T[:3].clone()
    bad[0, 2] = E + 5
    _same_error(lambda: hardneg.ops.corrupt(bad, 2, E, known=K), lambda: H.corrupt(bad, 2, E, known=K.handle),
                ValueError, "entity ids")
    _same_error(lambda: hardneg.ops.corrupt(T[:3], 2, E, side="left"), lambda: H.corrupt(T[:3], 2, E, "left"),
                ValueError, "'side'")
    _same_error(lambda: hardneg.ops.known_contains(K, T[:3, :2]), lambda: H.known_contains(K.handle, T[:3, :2]),
                ValueError, "'keys'")
    _same_error(lambda: hardneg.ops.known_mask(K, T[:3, :2], T[:2, :2]),
                lambda: H.known_mask(K.handle, T[:3, :2], T[:2, :2]), ValueError, "'candidates'")
    _same_error(lambda: hardneg.ops.known_exclusion(K, T[:3, :2].float()),
                lambda: H.known_exclusion(K.handle, T[:3, :2].float()), TypeError, "'anchor'")
    nodes, times = torch.tensor([0, 99]), torch.tensor([1, 2])
    _same_error(lambda: hardneg.ops.temporal_neighbors(tgraph, nodes, times, 2),
                lambda: H.temporal_neighbors(tgraph.handle, nodes, times, 2), ValueError, "node")
    _same_error(lambda: hardneg.ops.temporal_neighbors(tgraph, nodes[:1], times[:1], 0),
                lambda: H.temporal_neighbors(tgraph.handle, nodes[:1], times[:1], 0), ValueError, "'k'")


@needs_opaque
def test_objects_travel_as_handles(kg, tgraph):
    T, K, E, R = kg
    with pytest.raises(TypeError, match="'known' must be the .handle of a hardneg.KnownSet"):
        H.known_contains(K, T[:2])
    with pytest.raises(TypeError, match="'graph' must be the .handle of a hardneg.TemporalGraph"):
        H.temporal_neighbors(K.handle, torch.tensor([0]), torch.tensor([1]), 2)
    assert tgraph.to("cpu").handle.obj is not None and K.handle.obj is K
    # the index objects themselves stay plain Python objects to torch.compile
    f = torch.compile(lambda x: x + K.num_entities + tgraph.num_nodes, fullgraph=True, backend="eager")
    assert int(f(torch.zeros(1))) == E + tgraph.num_nodes


# ------------------------------------------------------------------------------------------------ fake shapes
def test_fake_shapes_match(kg, tgraph):
    from torch._subclasses.fake_tensor import FakeTensorMode

    q, c = _qc()
    real = {"topk": H.topk_mine(q, c, 4), "sbs": H.sample_by_score(q, c, 3, seed=1)}
    with FakeTensorMode() as mode:
        fq, fc = mode.from_tensor(q), mode.from_tensor(c)
        fake = {"topk": H.topk_mine(fq, fc, 4), "sbs": H.sample_by_score(fq, fc, 3, seed=1)}
    for key in real:
        for r, f in zip(real[key], fake[key]):
            assert (r.shape, r.dtype) == (f.shape, f.dtype)


def test_opcheck_time_encode():
    g = _gen(11)
    dt = (10 ** (torch.rand(9, generator=g) * 6)).reshape(3, 3)
    w, b = torch.rand(5, 1, generator=g), torch.randn(5, generator=g)
    torch.library.opcheck(L.time_encode, (dt.requires_grad_(), w.requires_grad_(), b.requires_grad_(), None))
    torch.library.opcheck(L.time_encode, (dt.detach(), w.detach().reshape(-1), None, None))
    torch.testing.assert_close(H.time_encode(dt, w, b), hardneg.ops.time_encode(dt, w, b))
