"""Property fuzzing (hypothesis, derandomised so CI is reproducible) of every public op and every registered
sampler: valid calls agree with brute force (dense torch over all candidates / Python sets / the per-query
reference scan); invalid arguments raise TypeError or ValueError, never anything else."""
import math

import pytest
import torch

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, example, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import hardneg  # noqa: E402
from hardneg import KnownSet, TemporalGraph, samplers  # noqa: E402
from hardneg.ops import (corrupt, known_contains, known_exclusion, known_mask, sample_by_score,  # noqa: E402
                         sample_from_weights, temporal_neighbors, topk_mine)
from hardneg.reference.mining import exclusion_mask, scores as brute_scores  # noqa: E402

FUZZ = settings(max_examples=25, deadline=None, derandomize=True, database=None,
                suppress_health_check=list(HealthCheck))
METRICS = ["dot", "cos", "l2", "l1", "rotate"]
#: what an invalid argument may be replaced by
BAD = st.sampled_from([None, "x", -1, 0, 2.5, float("nan"), float("inf"), True, [1, 2], object(), torch.tensor(1.5),
                       torch.zeros(2, 2, 2), torch.tensor([-1]), 10**19])


def _gen(seed):
    return torch.Generator().manual_seed(seed)


def _csr(seed, B, N, density):
    g = _gen(seed)
    m = torch.rand(B, N, generator=g) < density
    rows, cols = m.nonzero(as_tuple=True)
    ptr = torch.zeros(B + 1, dtype=torch.int64)
    ptr[1:] = torch.bincount(rows, minlength=B).cumsum(0)
    return (ptr, cols), m


def _rejects(fn):
    try:
        fn()
    except (TypeError, ValueError):
        return
    except Exception as e:  # noqa: BLE001
        raise AssertionError(f"raised {type(e).__name__} instead of TypeError/ValueError: {e}") from e


# ------------------------------------------------------------------------------------------------ mining
@FUZZ
@given(seed=st.integers(0, 2**16), B=st.integers(0, 5), N=st.integers(0, 40), d=st.sampled_from([2, 4, 6]),
       k=st.integers(1, 45), metric=st.sampled_from(METRICS), density=st.sampled_from([0.0, 0.3, 0.95]),
       scale=st.sampled_from([1e-3, 1.0, 1e6]), expand=st.booleans())
def test_topk_mine_matches_brute_force(seed, B, N, d, k, metric, density, scale, expand):
    g = _gen(seed)
    q = torch.randn(B, d, generator=g) * scale
    c = torch.randn(N, d, generator=g) * scale
    if expand and B:
        q = q[:1].expand(B, d)
    ex, m = _csr(seed, B, N, density)
    s, ids = topk_mine(q, c, k, metric=metric, exclude=ex)
    assert s.shape == ids.shape == (B, k)
    if not B or not N:
        assert (ids == -1).all()
        return
    full = brute_scores(q, c, metric).masked_fill(m, -math.inf)
    ref = full.sort(1, descending=True).values[:, :k] if N >= k else torch.cat(
        [full.sort(1, descending=True).values, torch.full((B, k - N), -math.inf, dtype=torch.float64)], 1)
    ok = ids >= 0
    assert torch.equal(ok, torch.isfinite(ref)), "padding must be exactly where fewer than k are admissible"
    tol = 1e-4 * (1 + ref[ok].abs())
    assert ((s.double()[ok] - ref[ok]).abs() <= tol).all(), "scores differ from brute force"
    got = full.gather(1, ids.clamp_min(0))[ok]
    assert torch.isfinite(got).all(), "an excluded id was returned"
    assert ((got - s.double()[ok]).abs() <= tol).all()


@FUZZ
@given(seed=st.integers(0, 2**16), B=st.integers(1, 4), N=st.integers(1, 30), n=st.integers(1, 35),
       metric=st.sampled_from(METRICS), weighting=st.sampled_from(["softmax", "softplus"]),
       T=st.sampled_from([0.005, 0.1, 1.0, 7.0]), replacement=st.booleans(), density=st.sampled_from([0.0, 0.5, 1.0]))
@example(seed=3, B=4, N=30, n=3, metric="dot", weighting="softmax", T=0.005, replacement=False, density=0.0)
@example(seed=4, B=4, N=30, n=3, metric="l2", weighting="softplus", T=0.005, replacement=True, density=0.0)
def test_sample_by_score_matches_brute_force(seed, B, N, n, metric, weighting, T, replacement, density):
    from hardneg.reference.mining import log_probs

    g = _gen(seed)
    q, c = torch.randn(B, 4, generator=g), torch.randn(N, 4, generator=g)
    ex, m = _csr(seed, B, N, density)
    ids, lp = sample_by_score(q, c, n, metric=metric, weighting=weighting, temperature=T, exclude=ex,
                              replacement=replacement, generator=_gen(seed + 1))
    ref = log_probs(q, c, metric=metric, weighting=weighting, temperature=T, exclude=ex)
    admissible = (~m).sum(1)
    for b in range(B):
        got = ids[b][ids[b] >= 0]
        assert not m[b, got].any(), "an excluded id was sampled"
        want = n if replacement and admissible[b] else min(n, int(admissible[b]))
        assert got.numel() == want
        if not replacement:
            assert got.unique().numel() == got.numel()
        assert torch.allclose(lp[b][: got.numel()].double(), ref[b, got], atol=1e-3, rtol=1e-3)
        # a draw of probability < e^-40 has chance < N e^-40 (with replacement: every draw; without: the first)
        first = got if replacement else got[:1]
        assert (ref[b, first] > -40).all(), f"drew an id of log p {ref[b, first].min().item():.1f}"


@FUZZ
@given(seed=st.integers(0, 2**16), B=st.integers(0, 4), M=st.integers(1, 10), n=st.integers(1, 12),
       replacement=st.booleans(), zeros=st.sampled_from([0.0, 0.5, 1.0]))
def test_sample_from_weights_support(seed, B, M, n, replacement, zeros):
    g = _gen(seed)
    w = torch.rand(B, M, generator=g) * (torch.rand(B, M, generator=g) >= zeros)
    ids = sample_from_weights(w, n, replacement=replacement, generator=_gen(seed))
    assert ids.shape == (B, n)
    for b in range(B):
        got = ids[b][ids[b] >= 0]
        assert (w[b, got] > 0).all()
        if not replacement:
            assert got.unique().numel() == got.numel() == min(n, int((w[b] > 0).sum()))


@FUZZ
@given(which=st.sampled_from(["query", "candidates", "k", "metric", "exclude", "temperature", "num_samples",
                              "weighting", "replacement", "generator"]), bad=BAD)
def test_mining_rejects_bad_arguments(which, bad):
    args = dict(query=torch.randn(3, 4), candidates=torch.randn(9, 4), metric="dot", exclude=None)
    if which in ("query", "candidates", "metric", "exclude", "k"):
        kw = dict(args, **({which: bad} if which != "k" else {}))
        _rejects(lambda: topk_mine(kw.pop("query"), kw.pop("candidates"), bad if which == "k" else 2, **kw))
    else:
        extra = {which: bad} if which != "num_samples" else {}
        _rejects(lambda: sample_by_score(args["query"], args["candidates"], bad if which == "num_samples" else 2,
                                         **extra))


# ------------------------------------------------------------------------------------------------ filtering
def _kg(seed, E, R, M):
    g = _gen(seed)
    return torch.stack([torch.randint(0, E, (M,), generator=g), torch.randint(0, R, (M,), generator=g),
                        torch.randint(0, E, (M,), generator=g)], 1)


@FUZZ
@given(seed=st.integers(0, 2**16), E=st.integers(1, 12), R=st.integers(1, 3), M=st.integers(1, 60),
       Q=st.integers(0, 30), timed=st.booleans(), inclusive=st.booleans())
def test_known_set_matches_python_sets(seed, E, R, M, Q, timed, inclusive):
    tr = _kg(seed, E, R, M)
    times = torch.randint(-2**62, 2**62, (M,), generator=_gen(seed)) if timed else None
    ks = KnownSet.from_triples(tr, E, R, times=times)
    first = {}
    for i, key in enumerate(map(tuple, tr.tolist())):
        first[key] = min(first.get(key, 2**63), int(times[i])) if timed else 0
    q = _kg(seed + 1, E, R, Q)
    before = torch.randint(-2**62, 2**62, (Q,), generator=_gen(seed + 2)) if timed else None
    got = known_contains(ks, q, before=before, inclusive=inclusive).tolist()
    for i, key in enumerate(map(tuple, q.tolist())):
        want = key in first and (not timed or (first[key] <= before[i] if inclusive else first[key] < before[i]))
        assert got[i] == want
    a = q[:, :2]
    cand = torch.randint(0, E, (Q, 5), generator=_gen(seed + 3))
    mk = known_mask(ks, a, cand, side="tail")
    ptr, idx = known_exclusion(ks, a, side="tail")
    for i in range(Q):
        h, r = a[i].tolist()
        tails = sorted({t for (hh, rr, t) in first if (hh, rr) == (h, r)})
        assert idx[ptr[i]:ptr[i + 1]].tolist() == tails
        assert mk[i].tolist() == [c in tails for c in cand[i].tolist()]


@FUZZ
@given(seed=st.integers(0, 2**16), E=st.integers(2, 10), R=st.integers(1, 3), M=st.integers(1, 40),
       n=st.integers(1, 12), side=st.sampled_from(["tail", "head", "both", "bernoulli"]), tries=st.integers(1, 4))
def test_corrupt_never_returns_a_known_triple(seed, E, R, M, n, side, tries):
    tr = _kg(seed, E, R, M)
    ks = KnownSet.from_triples(tr, E, R)
    neg, valid = corrupt(tr, n, E, side=side, known=ks, max_tries=tries, generator=_gen(seed))
    assert neg.shape == (M, n, 3)
    assert not known_contains(ks, neg[valid]).any()
    changed = (neg != tr[:, None, :])[valid]
    assert (changed.sum(-1) == 1).all() and not changed[:, 1].any()
    truth = {tuple(x) for x in tr.tolist()}
    for i in range(M):  # a row is invalid only when nothing on its side(s) is admissible
        if not valid[i].all():
            h, r, t = tr[i].tolist()
            free_t = any((h, r, e) not in truth for e in range(E))
            free_h = any((e, r, t) not in truth for e in range(E))
            assert not (free_t and side == "tail") and not (free_h and side == "head")


@FUZZ
@given(which=st.sampled_from(["positives", "num_negatives", "num_entities", "side", "max_tries", "generator",
                              "num_relations", "keys", "before"]), bad=BAD)
def test_filtering_rejects_bad_arguments(which, bad):
    tr = torch.tensor([[0, 0, 1], [1, 0, 2]])
    ks = KnownSet.from_triples(tr, 3, 1, times=[1, 2])
    if which in ("keys", "before"):
        _rejects(lambda: known_contains(ks, bad if which == "keys" else tr, before=bad if which == "before" else None))
        return
    args = dict(positives=tr, num_negatives=2, num_entities=3)
    pos = [args.pop(x) for x in ("positives", "num_negatives", "num_entities")]
    names = ["positives", "num_negatives", "num_entities"]
    if which in names:
        pos[names.index(which)] = bad
        _rejects(lambda: corrupt(*pos, known=ks))
    else:
        _rejects(lambda: corrupt(*pos, known=ks, **{which: bad}))


# ------------------------------------------------------------------------------------------------ temporal
@FUZZ
@given(seed=st.integers(0, 2**16), V_=st.integers(1, 8), M=st.integers(0, 40), batches=st.integers(1, 4),
       k=st.integers(1, 6), inclusive=st.booleans(), window=st.sampled_from([None, 0, 3, 2**62, 2**63 - 1]),
       big=st.booleans(), undirected=st.booleans())
def test_temporal_neighbors_matches_the_reference_scan(seed, V_, M, batches, k, inclusive, window, big, undirected):
    g = _gen(seed)
    off = 2**62 if big else 0
    t = torch.sort(torch.randint(0, 20, (M,), generator=g)).values + off
    src, dst = torch.randint(0, V_, (M,), generator=g), torch.randint(0, V_, (M,), generator=g)
    cut = sorted(torch.randint(0, M + 1, (batches - 1,), generator=g).tolist())
    bounds = [0] + cut + [M]
    G = TemporalGraph(src[: bounds[1]], dst[: bounds[1]], t[: bounds[1]], num_nodes=V_, undirected=undirected)
    for a, b in zip(bounds[1:-1], bounds[2:]):
        G.append(src[a:b], dst[a:b], t[a:b])
    nodes = torch.randint(0, V_, (6,), generator=g)
    times = torch.randint(-2, 23, (6,), generator=g) + off
    got = temporal_neighbors(G, nodes, times, k, inclusive=inclusive, window=window, backend="cpu")
    ref = temporal_neighbors(G, nodes, times, k, inclusive=inclusive, window=window, backend="reference")
    for x, y in zip(got, ref):
        assert torch.equal(x, y)
    u = temporal_neighbors(G, nodes, times, k, strategy="uniform", inclusive=inclusive, window=window,
                           generator=_gen(seed))
    assert torch.equal(u[3].sum(1), ref[3].sum(1)), "uniform returns min(k, #eligible) events"
    eligible = ((t[None, :] < times[:, None]) | (inclusive & (t[None, :] == times[:, None])))
    assert (u[2][u[3]] <= times.repeat_interleave(u[3].sum(1))).all() and eligible.shape[0] == 6


@FUZZ
@given(which=st.sampled_from(["nodes", "times", "k", "strategy", "window", "generator", "inclusive_graph"]), bad=BAD)
def test_temporal_rejects_bad_arguments(which, bad):
    G = TemporalGraph(torch.tensor([0, 1]), torch.tensor([1, 2]), torch.tensor([1, 2]))
    args = dict(nodes=torch.tensor([0]), times=torch.tensor([5]), k=2)
    if which == "inclusive_graph":
        _rejects(lambda: TemporalGraph(torch.tensor([0]), torch.tensor([1]), bad))
        return
    if which in args:
        args[which] = bad
        _rejects(lambda: temporal_neighbors(G, args["nodes"], args["times"], args["k"]))
    else:
        _rejects(lambda: temporal_neighbors(G, args["nodes"], args["times"], 2, **{which: bad}))


# ------------------------------------------------------------------------------------------------ samplers
SLOW = {"dans", "kbgan"}  # neural generators: fewer examples


@pytest.mark.parametrize("name", samplers.available())
def test_sampler_fuzz_never_returns_a_known_positive(name):
    cls = samplers.get_class(name)
    events = issubclass(cls, samplers.TemporalSampler)

    @settings(max_examples=2 if name in SLOW else 10, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(seed=st.integers(0, 2**16), E=st.integers(3, 12), R=st.integers(1, 3), M=st.integers(2, 30),
           n=st.integers(1, 6), side=st.sampled_from([None, "tail", "head", "both", "bernoulli"]))
    def run(seed, E, R, M, n, side):
        tr = _kg(seed, E, R, M)
        ks = KnownSet.from_triples(tr, E, R)
        opts = {}
        if events:  # (src, dst) events; only destinations are replaced
            tr = tr[:, [0, 2]]
            ks = KnownSet.from_edges(tr, E)
            side = None if side in (None, "head", "both", "bernoulli") else side
        if name == "bernoulli":
            side = None if side not in (None, "bernoulli") else side
        if name == "dns":
            opts["num_candidates"] = n + 2
        if name in ("topk", "nmiss"):
            opts["pool_size"] = max(n, 2)
        s = samplers.create(name, num_negatives=n, known=ks, side=side, **opts)
        g = _gen(seed)
        sc = (samplers.EmbeddingScorer(torch.randn(E, 4, generator=g), "dot") if events else
              samplers.DistMultScorer(torch.randn(E, 4, generator=g), torch.randn(R, 4, generator=g)))
        neg = s.sample(tr, scorer=sc, generator=_gen(seed))
        assert neg.ids.shape == neg.valid.shape == (M, n)
        ids = neg.ids[neg.valid & (neg.ids >= 0)]
        assert ((ids >= 0) & (ids < E)).all()
        full = neg.triples(tr)[neg.valid & (neg.ids >= 0)]
        assert not ks.contains(full).any(), f"{name} returned a known positive"
        assert (neg.ids[~neg.valid] == -1).all()

    run()


@FUZZ
@given(name=st.sampled_from([s for s in samplers.available() if s not in SLOW]),
       option=st.sampled_from(["num_negatives", "side", "num_entities", "num_relations"]), bad=BAD)
def test_samplers_reject_bad_arguments(name, option, bad):
    ks = KnownSet.from_triples(torch.tensor([[0, 0, 1], [1, 0, 2]]), 3, 1)
    kw = dict(num_negatives=2, known=ks)
    kw[option] = bad
    _rejects(lambda: samplers.create(name, **kw).sample(torch.tensor([[0, 0, 1]]),
                                                        scorer=samplers.DistMultScorer(torch.randn(3, 2),
                                                                                       torch.randn(1, 2))))


# ------------------------------------------------------------------------------------------------ sparse
@FUZZ
@given(seed=st.integers(0, 2**16), n=st.integers(0, 12), m=st.integers(0, 12), d=st.integers(0, 70),
       density=st.sampled_from([0.0, 0.3, 1.0]), corrupt=st.sampled_from([None, "col", "ptr", "last", "shape"]),
       backend=st.sampled_from(["reference", "cpu"]))
def test_spmm_matches_dense_or_rejects(seed, n, m, d, density, corrupt, backend):
    g = _gen(seed)
    dense = torch.randn(n, m, generator=g, dtype=torch.float64) * (torch.rand(n, m, generator=g) < density)
    adj = dense.to_sparse_csr()
    x = torch.randn(m, d, generator=g, dtype=torch.float64)
    ptr, col, val = adj.crow_indices().clone(), adj.col_indices().clone(), adj.values().clone()
    if corrupt == "col" and col.numel():
        col[int(torch.randint(0, col.numel(), (1,), generator=g))] = m + int(torch.randint(0, 3, (1,), generator=g))
    elif corrupt == "ptr" and n >= 2 and col.numel():
        ptr[1] = ptr[-1] + 1
    elif corrupt == "last" and n:
        ptr[-1] += 1
    elif corrupt == "shape":
        x = torch.randn(m + 1, d, generator=g, dtype=torch.float64)
    bad = torch.sparse_csr_tensor(ptr, col, val, (n, m), check_invariants=False)
    if corrupt is None or (corrupt == "col" and not col.numel()) or (corrupt == "ptr" and not (n >= 2 and col.numel())) \
            or (corrupt == "last" and not n):
        torch.testing.assert_close(hardneg.ops.spmm(bad, x, backend=backend), dense @ x)
    else:
        with pytest.raises((TypeError, ValueError)):  # a corrupt CSR is refused, never read
            hardneg.ops.spmm(bad, x, backend=backend)

