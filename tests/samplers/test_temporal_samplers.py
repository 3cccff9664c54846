"""Event samplers (random, historical, inductive, ens, ens_score): their own invariants, distributions and
errors. The generic contract is in test_samplers_generic.py."""
import math

import pytest
import torch

import hardneg
from hardneg import samplers
from hardneg.testing import assert_chi2

G = lambda s: torch.Generator().manual_seed(s)  # noqa: E731
N, LOW, HIGH = 30, 10, 29  # nodes 0..9 are sources, 10..29 destinations (bipartite)


def events(B=64, seed=0):
    g = G(seed)
    return torch.stack([torch.randint(0, LOW, (B,), generator=g), torch.randint(LOW, HIGH + 1, (B,), generator=g)], 1)


class TableScorer:
    """Fresh source rows by position, and a candidate table for low..high (counts its refreshes)."""
    metric = "dot"

    def __init__(self, q, C):
        self.q, self.C, self.calls = q, C, 0

    def query_vectors(self, anchor, side="tail"):
        return self.q

    def candidate_vectors(self, side="tail"):
        self.calls += 1
        return self.C


def scorer(B, d=8, seed=1, n_cand=HIGH - LOW + 1):
    g = G(seed)
    return TableScorer(torch.randn(B, d, generator=g), torch.randn(n_cand, d, generator=g))


def create(name, n=4, **kw):
    return samplers.create(name, num_negatives=n, num_entities=N, low=LOW, high=HIGH, **kw)


# ------------------------------------------------------------------------------------------------ random
def test_random_is_uniform_over_other_destinations():
    P = torch.tensor([[0, 15]]).repeat(4000, 1)
    neg = create("random", n=5).sample(P, generator=G(0))
    ids = neg.ids[neg.valid]
    assert bool(neg.valid.all()) and bool(((ids >= LOW) & (ids <= HIGH)).all()) and not bool((ids == 15).any())
    others = [i for i in range(LOW, HIGH + 1) if i != 15]
    counts = torch.bincount(ids, minlength=HIGH + 1)[others]
    assert_chi2(counts.double(), torch.full((len(others),), 1.0 / len(others), dtype=torch.float64))


def test_random_one_destination_has_no_negative():
    s = samplers.create("random", num_negatives=2, num_entities=5, low=4, high=4)
    neg = s.sample(torch.tensor([[0, 4]]), generator=G(0))
    assert not bool(neg.valid.any()) and bool((neg.ids == -1).all())


def test_destination_outside_range_and_triples_are_errors():
    s = create("random")
    with pytest.raises(ValueError, match=r"destination ids must be in \[10, 29\]"):
        s.sample(torch.tensor([[0, 3]]), generator=G(0))
    with pytest.raises(ValueError, match=r"\(src, dst\) events \[B, 2\]"):
        s.sample(torch.tensor([[0, 1, 12]]), generator=G(0))
    with pytest.raises(ValueError, match="'times' must have one entry per event"):
        s.sample(torch.tensor([[0, 12]]), generator=G(0), times=torch.tensor([1, 2]))
    with pytest.raises(ValueError, match="side='tail'"):
        samplers.create("random", num_negatives=1, num_entities=N, side="head")
    with pytest.raises(ValueError, match="'high' \\(40\\) must be < num_entities"):
        samplers.create("random", num_negatives=1, num_entities=N, high=40)


# ------------------------------------------------------------------------------------------------ historical
def test_historical_draws_past_destinations_other_than_the_positive():
    src = torch.tensor([0, 0, 0, 1, 0])
    dst = torch.tensor([11, 12, 13, 14, 15])
    t = torch.tensor([1, 2, 3, 4, 9])
    g = hardneg.TemporalGraph(src, dst, t, num_nodes=N)
    s = create("historical", n=200, graph=g)
    # source 0 at time 5 with true destination 12: history before 5 is {11, 12, 13} -> {11, 13}
    neg = s.sample(torch.tensor([[0, 12], [2, 20]]), generator=G(0), times=torch.tensor([5, 5]))
    assert set(neg.ids[0].tolist()) == {11, 13} and s.last_fallback == 1  # source 2 has no history: random
    assert bool(neg.valid.all()) and not bool((neg.ids[1] == 20).any())
    # at time 3 (strictly before): only {11, 12}; the positive 12 leaves {11}
    neg = s.sample(torch.tensor([[0, 12]]), generator=G(0), times=torch.tensor([3]))
    assert set(neg.ids[0].tolist()) == {11}
    with pytest.raises(TypeError, match="'graph' must be a hardneg.TemporalGraph"):
        create("historical", graph="g")


def test_historical_without_graph_or_times_is_random():
    s = create("historical")
    neg = s.sample(events(8), generator=G(0))
    assert s.last_fallback == 8 and bool(neg.valid.all())


# ------------------------------------------------------------------------------------------------ inductive
def test_inductive_draws_from_the_pool_only():
    s = create("inductive", n=50, pool=torch.tensor([20, 21, 22]))
    neg = s.sample(torch.tensor([[0, 21], [1, 12]]), generator=G(0))
    assert set(neg.ids[0].tolist()) == {20, 22} and set(neg.ids[1].tolist()) == {20, 21, 22}
    assert s.last_fallback == 0
    with pytest.raises(ValueError, match="'pool' ids must be destinations"):
        create("inductive", pool=torch.tensor([3]))


# ------------------------------------------------------------------------------------------------ ens
def test_ens_pure_hard_negatives_come_from_the_top_k_pool():
    P, sc = events(32), scorer(32)
    s = create("ens", n=3, pool_size=5, hard_fraction=1.0)
    neg = s.sample(P, scorer=sc, generator=G(0))
    scores = sc.q @ sc.C.T
    scores[torch.arange(32), P[:, 1] - LOW] = float("-inf")  # never the positive
    top = scores.topk(5, dim=1).indices + LOW
    for r in range(32):
        assert set(neg.ids[r].tolist()) <= set(top[r].tolist())
        assert len(set(neg.ids[r].tolist())) == 3  # without replacement from the pool
    assert neg.log_prob is None


def test_ens_draws_uniformly_within_the_pool():
    P = torch.tensor([[0, 10]]).repeat(3000, 1)
    g = G(3)
    q, C = torch.randn(1, 8, generator=g).repeat(3000, 1), torch.randn(20, 8, generator=g)
    s = create("ens", n=1, pool_size=4, hard_fraction=1.0, refresh_every=1)
    neg = s.sample(P, scorer=TableScorer(q, C), generator=G(0))
    sc = (q[0] @ C.T)
    sc[0] = float("-inf")
    top = sc.topk(4).indices + LOW
    counts = torch.stack([(neg.ids == i).sum() for i in top]).double()
    assert int(counts.sum()) == 3000
    assert_chi2(counts, torch.full((4,), 0.25, dtype=torch.float64))


@pytest.mark.parametrize("f, n", [(0.5, 1), (0.25, 4), (0.7, 3)])
def test_ens_hybrid_hard_share_is_f_in_expectation(f, n):
    B = 4000
    P = torch.stack([torch.zeros(B, dtype=torch.long), torch.full((B,), 10)], 1)
    K = max(3, n)
    C = torch.zeros(20, 2)
    C[5:5 + K, 0] = 10.0  # destinations 15..14+K are the top-K pool for the query (1, 0)
    q = torch.tensor([[1.0, 0.0]]).repeat(B, 1)
    s = create("ens", n=n, pool_size=K, hard_fraction=f)
    neg = s.sample(P, scorer=TableScorer(q, C), generator=G(0))
    hard = (neg.ids >= 15) & (neg.ids < 15 + K)
    # random columns also hit the pool with probability K/19
    expect = f + (1 - f) * K / 19
    share = hard.double().mean().item()
    assert abs(share - expect) < 4 * math.sqrt(expect * (1 - expect) / (B * n))
    k = math.floor(f * n)
    assert bool(hard[:, :k].all())  # floor(f n) hard columns first in every row


def test_ens_refreshes_the_cache_every_r_calls_and_resumes():
    P, sc = events(16), scorer(16)
    s = create("ens", n=2, pool_size=4, refresh_every=3)
    for i in range(7):
        s.sample(P, scorer=sc, generator=G(i))
    assert sc.calls == 3 and s.refreshes == 3  # calls 0, 3, 6
    t = create("ens", n=2, pool_size=4, refresh_every=3)
    t.load_state_dict(s.state_dict())
    other = TableScorer(sc.q, -sc.C)  # a different table: the resumed sampler mines its cached one (no refresh)
    a, b = s.sample(P, scorer=sc, generator=G(42)), t.sample(P, scorer=other, generator=G(42))
    assert torch.equal(a.ids, b.ids) and other.calls == 0


def test_ens_hard_fraction_zero_needs_no_scorer_and_schedule_ramps():
    s = create("ens", n=2, hard_fraction=0.0)
    neg = s.sample(events(8), generator=G(0))  # no scorer at all
    assert bool(neg.valid.all())
    r = create("ens", n=2, hard_fraction=0.8, schedule="linear", start_fraction=0.0, warmup_steps=10)
    assert r.fraction(0) == 0.0 and r.fraction(5) == pytest.approx(0.4) and r.fraction(50) == pytest.approx(0.8)
    st = create("ens", n=2, hard_fraction=0.8, schedule="step", start_fraction=0.1, warmup_steps=3)
    assert st.fraction(2) == pytest.approx(0.1) and st.fraction(3) == pytest.approx(0.8)


def test_ens_errors():
    with pytest.raises(ValueError, match=r"'pool_size' K \(2\) must be >= num_negatives n \(4\)"):
        create("ens", n=4, pool_size=2)
    with pytest.raises(ValueError, match="'hard_fraction' must be in \\[0, 1\\]"):
        create("ens", hard_fraction=1.5)
    with pytest.raises(TypeError, match="'hard_fraction' must be a number"):
        create("ens", hard_fraction="half")
    with pytest.raises(ValueError, match="'refresh_every' must be >= 1"):
        create("ens", refresh_every=0)
    s = create("ens", n=1, pool_size=2, hard_fraction=1.0)
    with pytest.raises(ValueError, match="needs a scorer"):
        s.sample(events(4), generator=G(0))
    with pytest.raises(ValueError, match="candidate_vectors must be \\[N, d\\] with N = 20 rows"):
        s.sample(events(4), scorer=scorer(4, n_cand=7), generator=G(0))


def test_ens_cache_on_another_device_than_the_model():
    P = events(4)
    s = create("ens", n=1, pool_size=2, hard_fraction=1.0, refresh_every=100)
    s.sample(P, scorer=scorer(4), generator=G(0))  # caches the table on the CPU
    moved = TableScorer(torch.randn(4, 8, device="meta"), torch.randn(20, 8, device="meta"))
    with pytest.raises(ValueError, match="cached candidate table is on cpu but the model's query embeddings are on meta"):
        s.sample(P, scorer=moved, generator=G(1))
    fresh = create("ens", n=1, pool_size=2, hard_fraction=1.0)
    other = TableScorer(torch.randn(4, 8), torch.randn(20, 8, device="meta"))
    with pytest.raises(ValueError, match="candidate table is on meta but the model's query embeddings are on cpu"):
        fresh.sample(P, scorer=other, generator=G(1))


def test_ens_update_candidates_writes_the_last_row_of_each_destination_between_refreshes():
    P, sc = events(8), scorer(8)
    s = create("ens", n=2, pool_size=4, hard_fraction=1.0, refresh_every=100, refresh_touched=True)
    assert s.update_candidates(torch.tensor([12]), torch.ones(1, 8)) == 0  # no table yet: nothing to update
    s.sample(P, scorer=sc, generator=G(0))
    v = torch.randn(5, 8, generator=G(7))
    ids = torch.tensor([12, 3, 12, 29, 10], dtype=torch.int32)  # 3 is a source (not a destination): skipped
    assert s.update_candidates(ids, v) == 3
    C = s.candidates(sc, torch.device("cpu"))  # the cached table, not refreshed (R = 100)
    want = sc.C.clone()
    want[2], want[19], want[0] = v[2], v[3], v[4]  # node 12 twice: its last row
    assert torch.equal(C, want) and sc.calls == 1
    # the next call mines the updated table: its pools are the top K against it
    q = sc.q
    out = create("ens", n=4, pool_size=4, hard_fraction=1.0, refresh_every=100)
    ref = out.sample(P, scorer=TableScorer(q, want), generator=G(1))
    got = s.sample(P, scorer=sc, generator=G(1))
    pools = {i: set(r.tolist()) for i, r in enumerate(ref.ids)}  # n = K = 4: the whole pool of each event
    assert all(set(r.tolist()) <= pools[i] for i, r in enumerate(got.ids))


def test_ens_table_rows_follow_the_table():
    """``table_rows()``: the cached table's distinct rows and index (``rows[index]`` is the table), recomputed after
    a refresh or an update, and an error before any table."""
    P = events(8)
    C = torch.randn(20, 8, generator=G(3))
    C[5:15] = C[2]  # eleven identical rows (nodes without history)
    sc = TableScorer(torch.randn(8, 8, generator=G(4)), C)
    s = create("ens", n=2, pool_size=4, hard_fraction=1.0, refresh_every=2, refresh_touched=True)
    with pytest.raises(ValueError, match="table_rows\\(\\) needs a cached table"):
        s.table_rows()
    s.sample(P, scorer=sc, generator=G(0))
    rows, index = s.table_rows()
    assert rows.shape[0] == 10 and torch.equal(rows[index], C) and s.table_rows()[0] is rows  # computed once
    assert s.table_rows(s._cache)[0] is rows and s.table_rows(C.clone()) is None  # only for the cached table
    s.update_candidates(torch.tensor([LOW + 6]), torch.ones(1, 8))  # row 6: one of the eleven
    rows2, index2 = s.table_rows()
    assert rows2.shape[0] == 11 and torch.equal(rows2[index2], s.candidates(sc, torch.device("cpu")))
    sc.C = torch.randn(20, 8, generator=G(5))
    s.sample(P, scorer=sc, generator=G(1))
    s.sample(P, scorer=sc, generator=G(2))  # R = 2: refreshed
    rows3, index3 = s.table_rows()
    assert rows3.shape[0] == 20 and torch.equal(rows3[index3], sc.C)


def test_ens_update_candidates_keeps_the_tables_bound_and_checks_its_rows():
    P, sc = events(4), scorer(4, seed=5)
    s = create("ens", n=2, pool_size=4, hard_fraction=1.0, refresh_every=100)
    s.sample(P, scorer=sc, generator=G(0))
    s.update_candidates(torch.tensor([11]), torch.full((1, 8), 1e38))
    with pytest.raises(ValueError, match="scores could overflow float32"):  # the bound follows the new rows
        s.sample(P, scorer=sc, generator=G(1))
    with pytest.raises(ValueError, match="ens: 'vectors' must be finite"):
        s.update_candidates(torch.tensor([11]), torch.full((1, 8), float("nan")))
    with pytest.raises(TypeError, match="'ids' must be a 1-D integer tensor"):
        s.update_candidates(torch.tensor([11.0]), torch.ones(1, 8))
    with pytest.raises(ValueError, match="'ids' must be a 1-D integer tensor"):
        s.update_candidates(torch.tensor([[11]]), torch.ones(1, 8))
    with pytest.raises(TypeError, match="'vectors' must be a 2-D floating tensor"):
        s.update_candidates(torch.tensor([11]), torch.ones(1, 8, dtype=torch.long))
    with pytest.raises(ValueError, match=r"'vectors' must have one row per id \(2; got"):
        s.update_candidates(torch.tensor([11, 12]), torch.ones(1, 8))
    with pytest.raises(ValueError, match=r"'vectors' must be \[M, 8\] on the cached table's device cpu"):
        s.update_candidates(torch.tensor([11]), torch.ones(1, 5))
    with pytest.raises(TypeError, match="'refresh_touched' must be a bool"):
        create("ens", refresh_touched="yes")


# ------------------------------------------------------------------------------------------------ ens_score
def test_ens_score_draws_proportional_to_softplus_with_exact_log_prob():
    B = 6000
    P = torch.stack([torch.zeros(B, dtype=torch.long), torch.full((B,), 10)], 1)
    g = G(5)
    q = torch.randn(1, 4, generator=g).repeat(B, 1)
    C = torch.randn(20, 4, generator=g)
    s = create("ens_score", n=1, hard_fraction=1.0)
    neg = s.sample(P, scorer=TableScorer(q, C), generator=G(0))
    w = torch.nn.functional.softplus((q[0] @ C.T).double())
    w[0] = 0.0  # the positive (node 10)
    p = w / w.sum()
    assert_chi2(torch.bincount(neg.ids[:, 0] - LOW, minlength=20)[1:].double(), p[1:])
    assert torch.allclose(neg.log_prob[:, 0].double(), p.log()[neg.ids[:, 0] - LOW], atol=1e-4)


def test_ens_score_random_columns_have_uniform_log_prob():
    s = create("ens_score", n=2, hard_fraction=0.5)
    neg = s.sample(events(50), scorer=scorer(50), generator=G(0))
    rnd = ~torch.zeros(50, 2, dtype=torch.bool)
    rnd[:, 0] = False
    assert torch.allclose(neg.log_prob[rnd], torch.full((50,), -math.log(19)))


def test_ens_events_sharing_a_query_share_one_pool_without_any_of_their_positives():
    q = torch.tensor([[1.0, 0.0]]).repeat(3, 1)  # one source, three events in the batch
    C = torch.zeros(20, 2)
    C[:4, 0] = torch.tensor([9.0, 8.0, 7.0, 6.0])  # nodes 10..13 are the nearest
    P = torch.tensor([[0, 10], [0, 11], [0, 19]])
    s = create("ens", n=2, pool_size=2, hard_fraction=1.0)
    neg = s.sample(P, scorer=TableScorer(q, C), generator=G(0))
    assert {tuple(sorted(r)) for r in neg.ids.tolist()} == {(12, 13)}  # 10 and 11 are positives of the query


@pytest.mark.parametrize("name", ["ens", "ens_score"])
def test_ens_exclude_history_never_draws_a_past_destination_of_the_source(name):
    """With ``exclude_history`` the hard columns skip what the source met strictly before the event (the
    nearest candidates here); without it they take them."""
    hist = hardneg.TemporalGraph(torch.tensor([0, 0, 0, 1, 0]), torch.tensor([10, 11, 12, 13, 14]),
                                 torch.tensor([1, 2, 3, 4, 9]), num_nodes=N)
    B = 400
    P = torch.stack([torch.zeros(B, dtype=torch.long), torch.full((B,), 19)], 1)
    q = torch.tensor([[1.0, 0.0]]).repeat(B, 1)
    C = torch.zeros(20, 2)
    C[:6, 0] = torch.tensor([9.0, 8.0, 7.0, 6.0, 5.0, 4.0])  # nodes 10..15 are the nearest, in that order
    t = torch.full((B,), 5)  # before 5, source 0 met 10, 11, 12 (14 comes at 9; 13 is source 1's)
    kw = dict(n=2, hard_fraction=1.0) | (dict(pool_size=3) if name == "ens" else dict(temperature=0.2))
    plain = create(name, **kw).sample(P, scorer=TableScorer(q, C), generator=G(0), times=t)
    assert bool(torch.isin(plain.ids, torch.tensor([10, 11, 12])).any())
    s = create(name, exclude_history=True, graph=hist, **kw)
    neg = s.sample(P, scorer=TableScorer(q, C), generator=G(0), times=t)
    assert bool(neg.valid.all()) and not bool(torch.isin(neg.ids, torch.tensor([10, 11, 12, 19])).any())
    if name == "ens":  # the pool is the next three: 13, 14, 15
        assert set(neg.ids.flatten().tolist()) == {13, 14, 15}
    with pytest.raises(ValueError, match="'exclude_history' needs the event times"):
        s.sample(P, scorer=TableScorer(q, C), generator=G(0))


@pytest.mark.parametrize("name", ["ens", "ens_score"])
def test_ens_exclude_recent_skips_only_the_latest_partners(name):
    """``exclude_recent=r`` keeps the partners of the source's r latest events before the event out of the hard
    pool (a partner met twice counts once per event), and leaves older partners in it."""
    hist = hardneg.TemporalGraph(torch.tensor([0, 0, 0, 0, 1, 0]), torch.tensor([10, 11, 12, 12, 13, 14]),
                                 torch.tensor([1, 2, 3, 4, 4, 9]), num_nodes=N)
    B = 400
    P = torch.stack([torch.zeros(B, dtype=torch.long), torch.full((B,), 19)], 1)
    q = torch.tensor([[1.0, 0.0]]).repeat(B, 1)
    C = torch.zeros(20, 2)
    C[:6, 0] = torch.tensor([9.0, 8.0, 7.0, 6.0, 5.0, 4.0])  # nodes 10..15 are the nearest, in that order
    t = torch.full((B,), 5)  # before 5, source 0's events, latest first: 12 (t 4), 12 (t 3), 11, 10
    kw = dict(n=2, hard_fraction=1.0) | (dict(pool_size=3) if name == "ens" else dict(temperature=0.2))
    for r, skipped in ((1, {12}), (2, {12}), (3, {11, 12}), (9, {10, 11, 12})):
        s = create(name, exclude_recent=r, graph=hist, **kw)
        neg = s.sample(P, scorer=TableScorer(q, C), generator=G(0), times=t)
        drawn = set(neg.ids.flatten().tolist())
        assert bool(neg.valid.all()) and not drawn & (skipped | {19}), (r, drawn)
        if name == "ens":  # the pool is the three nearest that are not skipped
            assert drawn == set(sorted({10, 11, 12, 13, 14, 15} - skipped)[:3]), (r, drawn)
        elif r < 9:  # the older partners stay in the pool (and are the nearest)
            assert drawn & ({10, 11, 12} - skipped), (r, drawn)
    with pytest.raises(ValueError, match="'exclude_recent' needs the event times"):
        s.sample(P, scorer=TableScorer(q, C), generator=G(0))


def test_ens_exclude_recent_counts_events_in_either_direction():
    """On one node set (UCI's messages) a user who wrote to the source is a recent partner too."""
    hist = hardneg.TemporalGraph(torch.tensor([5, 0]), torch.tensor([0, 7]), torch.tensor([1, 0]), num_nodes=10)
    B = 200
    P = torch.stack([torch.zeros(B, dtype=torch.long), torch.full((B,), 9)], 1)
    q = torch.tensor([[1.0, 0.0]]).repeat(B, 1)
    C = torch.zeros(10, 2)
    C[[5, 7, 3, 4], 0] = torch.tensor([9.0, 8.0, 7.0, 6.0])  # 5 (wrote to 0 at t 1) and 7 (0 wrote to it at 0) nearest
    kw = dict(num_negatives=1, num_entities=10, low=0, high=9, hard_fraction=1.0, pool_size=2, graph=hist)
    t = torch.full((B,), 3)
    cases = (({"exclude_recent": 1}, {7, 3}), ({"exclude_recent": 2}, {3, 4}), ({"exclude_history": True}, {5, 3}),
             ({"exclude_history": True, "exclude_recent": 1}, {3, 4}))  # both: the union of the two lists
    for opts, pool in cases:
        neg = samplers.create("ens", **opts, **kw).sample(P, scorer=TableScorer(q, C), generator=G(0), times=t)
        assert bool(neg.valid.all()) and set(neg.ids.flatten().tolist()) == pool, (opts, neg.ids.unique())


@pytest.mark.parametrize("name", ["ens", "ens_score"])
def test_ens_exclude_recent_per_row_against_brute_force(name):
    """Each event (its own source, time and query, hybrid draws) keeps exactly its own source's latest partners
    in low..high out of its hard columns; without the option the hard columns hit them."""
    g = G(3)
    E, r = 300, 3
    src = torch.randint(0, N, (E,), generator=g)
    dst = (src + torch.randint(1, N, (E,), generator=g)) % N  # no self-loops; partners on both sides of LOW
    hist = hardneg.TemporalGraph(src, dst, torch.arange(E), num_nodes=N)
    B = 64
    P = torch.stack([torch.randint(0, N, (B,), generator=g), torch.randint(LOW, HIGH + 1, (B,), generator=g)], 1)
    t = torch.randint(50, E, (B,), generator=g)
    recent = []
    for (s, d), tq in zip(P.tolist(), t.tolist()):
        ev = [(int(k), int(src[k] if dst[k] == s else dst[k])) for k in range(tq) if s in (int(src[k]), int(dst[k]))]
        recent.append({x for _, x in sorted(ev, reverse=True)[:r] if LOW <= x <= HIGH} - {d})
    C = torch.eye(HIGH - LOW + 1)  # each event's query points at its own recent partners: they are the nearest
    q = torch.stack([C[[x - LOW for x in rec]].sum(0) if rec else torch.zeros(HIGH - LOW + 1) for rec in recent])
    q = q + 0.01 * torch.rand(q.shape, generator=g)
    kw = dict(n=4, hard_fraction=0.5) | (dict(pool_size=4) if name == "ens" else dict(temperature=0.05))
    hits = 0
    for opts in ({}, {"exclude_recent": r, "graph": hist}):
        neg = create(name, **opts, **kw).sample(P, scorer=TableScorer(q, C), generator=G(0), times=t)
        hard = neg.ids[:, :2]  # n 4 at f 0.5: exactly two hard columns a row, first
        found = sum(len(set(h) & rec) for h, rec in zip(hard.tolist(), recent))
        if opts:
            assert found == 0
        else:
            hits = found
    assert hits > B // 2  # the check above can fail: without the option the partners are drawn


@pytest.mark.parametrize("name,opts", [("historical", {}), ("ens", {"exclude_recent": 2, "hard_fraction": 1.0}),
                                       ("ens", {"exclude_history": True, "hard_fraction": 1.0})])
def test_float_times_on_an_integer_time_graph_are_an_error(name, opts):
    """Event times are checked against the graph's time type, not truncated (4.5 would silently become 4)."""
    hist = hardneg.TemporalGraph(torch.tensor([0, 0]), torch.tensor([10, 11]), torch.tensor([1, 4]), num_nodes=N)
    P = torch.tensor([[0, 12]])
    s = create(name, n=1, graph=hist, **opts)
    with pytest.raises(TypeError, match="int64 times; query 'times' must be integers"):
        s.sample(P, scorer=TableScorer(torch.ones(1, 2), torch.randn(20, 2)), generator=G(0),
                 times=torch.tensor([4.5]))


def test_ens_exclude_recent_errors():
    with pytest.raises(TypeError, match="'exclude_recent' must be an int"):
        create("ens", exclude_recent=2.0)
    with pytest.raises(ValueError, match="'exclude_recent' must be >= 0"):
        create("ens", exclude_recent=-1)
    with pytest.raises(ValueError, match="'exclude_recent' needs the training events' graph"):
        create("ens", exclude_recent=3)


def test_ens_exclude_history_errors():
    with pytest.raises(TypeError, match="'exclude_history' must be a bool"):
        create("ens", exclude_history="yes")
    with pytest.raises(ValueError, match="'exclude_history' needs the training events' graph"):
        create("ens", exclude_history=True)
    with pytest.raises(TypeError, match="'graph' must be a hardneg.TemporalGraph"):
        create("ens", graph=[1, 2])


# ------------------------------------------------------------------------------------------------ ens draft
@pytest.mark.parametrize("name, n, f", [("ens", 1, 0.25), ("ens", 4, 0.6), ("ens", 3, 1.0), ("ens", 2, 0.0),
                                        ("ens_score", 2, 0.5)])
def test_ens_draft_then_sample_equals_one_sample_call(name, n, f):
    P, sc = events(40), scorer(40)
    one, two = create(name, n=n, pool_size=5, hard_fraction=f), create(name, n=n, pool_size=5, hard_fraction=f)
    g1, g2 = G(7), G(7)
    for _ in range(3):  # across calls: the step counter and the cached table advance alike
        a = one.sample(P, scorer=sc, generator=g1)
        d = two.draft(P, generator=g2)
        before = d.ids.clone()
        b = two.sample(P, scorer=sc, generator=g2, draft=d)
        assert torch.equal(a.ids, b.ids) and torch.equal(a.valid, b.valid)
        assert (a.log_prob is None) == (b.log_prob is None)
        if a.log_prob is not None:
            assert torch.equal(a.log_prob, b.log_prob)
        assert torch.equal(d.ids, before)  # the draft is not modified
        # the draft's easy columns are final; its hard columns are the first k of each row
        assert torch.equal(b.ids[~d.hard], d.ids[~d.hard])
        k = d.hard.sum(1)
        assert torch.equal(d.hard, torch.arange(n)[None, :] < k[:, None])
    assert one.step == two.step == 3


@pytest.mark.parametrize("name", ["ens", "ens_score"])
def test_ens_reads_only_the_queries_of_events_with_a_hard_column(name):
    """A loop may compute queries only for the events whose draft has a hard column (``counts > 0``): the rows
    of the others are never read (NaN there changes nothing)."""
    P, sc = events(40), scorer(40)
    a, b = create(name, n=2, pool_size=5, hard_fraction=0.3), create(name, n=2, pool_size=5, hard_fraction=0.3)
    d = a.draft(P, generator=G(5))
    assert 0 < int((d.counts > 0).sum()) < 40
    ref = a.sample(P, scorer=sc, generator=G(5), draft=d)
    q = sc.q.clone()
    q[d.counts == 0] = float("nan")
    got = b.sample(P, scorer=TableScorer(q, sc.C), generator=G(5), draft=b.draft(P, generator=G(5)))
    assert torch.equal(got.ids, ref.ids) and torch.equal(got.valid, ref.valid)


def test_ens_breaks_ties_for_its_pool_at_random():
    """A table of identical rows (every node without history, at a stream's start) is one tie: the pool is a
    random set of K, so the hard negatives are uniform over the admissible destinations (chi-square), not the K
    smallest ids. (One event per call: the events of a call share its row order, so their draws are not
    independent.)"""
    P = torch.tensor([[3, LOW]])
    C = torch.ones(HIGH - LOW + 1, 8)
    s = create("ens", n=1, pool_size=3, hard_fraction=1.0)
    g, counts = G(11), torch.zeros(HIGH + 1)
    for _ in range(1500):
        neg = s.sample(P, scorer=TableScorer(torch.randn(1, 8, generator=g), C), generator=g)
        assert bool(neg.valid.all()) and not bool((neg.ids == LOW).any())
        counts += torch.bincount(neg.ids.flatten(), minlength=HIGH + 1).float()
    others = counts[LOW + 1:]
    assert_chi2(others, torch.full_like(others, 1 / others.numel()))


class MLPScorer(TableScorer):
    """TableScorer with a non-dot-product decoder, ``w . relu(q + c)`` (the shape of TGN's link decoder)."""

    def __init__(self, q, C, w):
        super().__init__(q, C)
        self.w = w

    def score_table(self, query, table):
        return torch.relu(query[:, None, :] + table[None, :, :]) @ self.w


def mlp_scorer(B, d=8, seed=1):
    g = G(seed)
    return MLPScorer(torch.randn(B, d, generator=g), torch.randn(HIGH - LOW + 1, d, generator=g),
                     torch.randn(d, generator=g))


@pytest.mark.parametrize("exclude_history", [False, True])
def test_ens_rank_by_score_pools_the_models_own_top_k(exclude_history):
    """rank_by='score': the pool is the top K by the scorer's own score_table (not the dot product), never the
    positive nor (exclude_history) a past destination of the source."""
    B, K = 40, 5
    P, sc = events(B, seed=4), mlp_scorer(B)
    times = torch.full((B,), 100)
    kw = {}
    if exclude_history:
        g = G(9)
        hs, hd = torch.randint(0, LOW, (60,), generator=g), torch.randint(LOW, HIGH + 1, (60,), generator=g)
        kw["graph"] = hardneg.TemporalGraph(hs, hd, torch.arange(60), num_nodes=N)
    s = create("ens", n=3, pool_size=K, hard_fraction=1.0, rank_by="score", exclude_history=exclude_history, **kw)
    neg = s.sample(P, scorer=sc, generator=G(0), times=times)
    S = sc.score_table(sc.q, sc.C)
    for r in range(B):
        banned = {int(P[r, 1])}  # (every row's query differs: no shared pool)
        if exclude_history:
            banned |= {int(d) for u, d in zip(hs.tolist(), hd.tolist()) if u == P[r, 0]}
        ok = [i for i in range(LOW, HIGH + 1) if i not in banned]
        top = sorted(ok, key=lambda i: -float(S[r, i - LOW]))[:K]
        got = set(neg.ids[r][neg.valid[r]].tolist())
        assert got <= set(top) and len(got) == min(3, len(top))
    dot = create("ens", n=3, pool_size=K, hard_fraction=1.0, exclude_history=exclude_history, **kw)
    assert not torch.equal(dot.sample(P, scorer=sc, generator=G(0), times=times).ids, neg.ids)


class FusedScorer(MLPScorer):
    """MLPScorer with the fused ``topk_table`` (:func:`hardneg.ops.mlp_topk_mine`), which the sampler prefers."""

    def topk_table(self, query, table, k, exclude=None, tie_break=None):
        self.calls = getattr(self, "calls", 0) + 1
        return hardneg.ops.mlp_topk_mine(query, table, self.w, k, exclude=exclude, tie_break=tie_break)[1]


@pytest.mark.parametrize("exclude_history", [False, True])
def test_ens_rank_by_score_uses_a_fused_topk_table_with_the_same_draws(exclude_history):
    """A scorer's ``topk_table`` replaces ``score_table`` + stable sort: the same pools, so the same draws for a
    seed (the temporal task's ``BatchScorer`` goes through it)."""
    B = 40
    P, base = events(B, seed=4), mlp_scorer(B)
    fused = FusedScorer(base.q, base.C, base.w)
    fused.score_table = lambda *a, **k: pytest.fail("score_table called although topk_table exists")
    kw = {}
    if exclude_history:
        g = G(9)
        hs, hd = torch.randint(0, LOW, (60,), generator=g), torch.randint(LOW, HIGH + 1, (60,), generator=g)
        kw["graph"] = hardneg.TemporalGraph(hs, hd, torch.arange(60), num_nodes=N)
    times = torch.full((B,), 100)
    out = [create("ens", n=3, pool_size=5, hard_fraction=1.0, rank_by="score", exclude_history=exclude_history,
                  **kw).sample(P, scorer=sc, generator=G(0), times=times) for sc in (base, fused)]
    assert fused.calls >= 1
    assert torch.equal(out[0].ids, out[1].ids) and torch.equal(out[0].valid, out[1].valid)
    bad = FusedScorer(base.q, base.C, base.w)
    bad.topk_table = lambda q, C, k, **kw: torch.zeros(q.shape[0], k + 1, dtype=torch.int64)
    with pytest.raises(ValueError, match=r"topk_table must give int64 \[R, k\] = \[40, 5\] ids"):
        create("ens", n=3, pool_size=5, hard_fraction=1.0, rank_by="score").sample(P, scorer=bad, generator=G(0))


class EventScorer(MLPScorer):
    """Scores that depend on the event beyond its query: a large bonus for one destination per source (a pair
    term), through ``score_table(..., events=rows)``."""
    event_scores = True

    def __init__(self, q, C, w, P):
        super().__init__(q, C, w)
        self.P, self.seen = P, []

    def score_table(self, query, table, events=None):
        self.seen.append(events)
        S = super().score_table(query, table)
        if events is not None:
            S = S.clone()
            S[torch.arange(S.shape[0]), (self.P[events, 0] * 7) % S.shape[1]] += 100.0
        return S


def test_ens_rank_by_score_passes_each_querys_event_to_event_scores():
    """A scorer with ``event_scores`` gets the event of each query; events sharing a query vector but not a
    source are pooled apart (each by its own source's scores); without the flag, one pool per query vector."""
    B, K = 30, 3
    P = events(B, seed=5)
    base = mlp_scorer(B, seed=6)
    q = base.q[:1].repeat(B, 1)  # one query vector for every event (e.g. nodes without history)
    sc = EventScorer(q, base.C, base.w, P)
    s = create("ens", n=1, pool_size=K, hard_fraction=1.0, rank_by="score")
    neg = s.sample(P, scorer=sc, generator=G(0))
    ev = sc.seen[-1]
    assert ev is not None and sorted(P[ev, 0].tolist()) == sorted(set(P[:, 0].tolist()))  # one pool per source
    S0 = MLPScorer.score_table(sc, q[:1], base.C)[0]
    drawn_bonus = 0
    for r in range(B):
        u = int(P[r, 0])
        bonus = (u * 7) % (HIGH - LOW + 1)
        S = S0.clone()
        S[bonus] += 100.0
        for d in P[P[:, 0] == u, 1].tolist():  # a shared pool excludes every true destination of its query
            S[d - LOW] = float("-inf")
        pool = set((S.topk(K).indices + LOW).tolist())
        assert int(neg.ids[r, 0]) in pool
        drawn_bonus += int(neg.ids[r, 0]) == bonus + LOW
    assert drawn_bonus > 0
    plain = EventScorer(q, base.C, base.w, P)
    plain.event_scores = False
    create("ens", n=1, pool_size=K, hard_fraction=1.0, rank_by="score").sample(P, scorer=plain, generator=G(0))
    assert plain.seen[-1] is None


def test_ens_rank_by_score_pools_per_query_source_and_time():
    """Per-event pools group events by (source, event time) and, where one such group holds different queries,
    by the query too: each pool is the top K of its own query's scores."""
    B, K = 12, 3
    P = torch.stack([torch.tensor([0, 0, 0, 0, 1, 1, 2, 2, 2, 3, 3, 3]), torch.arange(LOW, LOW + B)], 1)
    times = torch.tensor([5, 5, 5, 6, 5, 5, 7, 7, 7, 7, 8, 8])
    base = mlp_scorer(B, seed=6)
    q = base.q.clone()
    q[1], q[5], q[7] = q[0], q[4], q[6]  # source 0 at time 5: rows 0, 1 share a query, row 2 has its own
    sc = EventScorer(q, base.C, base.w, P)
    s = create("ens", n=K, pool_size=K, hard_fraction=1.0, rank_by="score")
    neg = s.sample(P, scorer=sc, generator=G(0), times=times)
    ev = sc.seen[-1]
    groups = {(tuple(q[r].tolist()), int(P[r, 0]), int(times[r])) for r in range(B)}
    assert ev.numel() == len(groups) == 9  # rows 0/1, 4/5 and 6/7 pair up; rows 2 and 8 have queries of their own
    for r in range(B):  # n = K: each event's draws are its whole pool
        banned = {int(P[j, 1]) for j in range(B) if (tuple(q[j].tolist()), int(P[j, 0]), int(times[j])) ==
                  (tuple(q[r].tolist()), int(P[r, 0]), int(times[r]))}
        S = sc.score_table(q[r:r + 1], base.C, events=torch.tensor([r]))[0]
        for d in banned:
            S[d - LOW] = float("-inf")
        assert set(neg.ids[r].tolist()) == set((S.topk(K).indices + LOW).tolist())


def test_ens_rank_by_score_draws_uniformly_within_the_pool_and_breaks_ties_at_random():
    """Uniform over the model's top K (chi-square); a table of identical rows is one tie, drawn at random."""
    P = torch.tensor([[0, 10]]).repeat(3000, 1)
    sc = mlp_scorer(1, seed=3)
    sc.q = sc.q.repeat(3000, 1)
    s = create("ens", n=1, pool_size=4, hard_fraction=1.0, refresh_every=1, rank_by="score")
    neg = s.sample(P, scorer=sc, generator=G(0))
    S = sc.score_table(sc.q[:1], sc.C)[0]
    S[0] = float("-inf")
    top = S.topk(4).indices + LOW
    counts = torch.stack([(neg.ids == i).sum() for i in top]).double()
    assert int(counts.sum()) == 3000
    assert_chi2(counts, torch.full((4,), 0.25, dtype=torch.float64))
    s = create("ens", n=1, pool_size=3, hard_fraction=1.0, rank_by="score")
    flat = MLPScorer(torch.zeros(1, 8), torch.ones(HIGH - LOW + 1, 8), torch.ones(8))
    g, counts = G(11), torch.zeros(HIGH + 1)
    for _ in range(1500):
        neg = s.sample(torch.tensor([[3, LOW]]), scorer=flat, generator=g)
        counts += torch.bincount(neg.ids.flatten(), minlength=HIGH + 1).float()
    assert counts[LOW] == 0
    assert_chi2(counts[LOW + 1:], torch.full((HIGH - LOW,), 1 / (HIGH - LOW)))


def test_ens_rank_by_score_chunks_give_the_same_pool():
    """The score table is scored in row chunks (an MLP decoder materialises [R, N, d]); any chunk size gives the
    same pool, exclusions and tie keys included."""
    sc = mlp_scorer(9, seed=5)
    s = create("ens", n=2, pool_size=6, hard_fraction=1.0, rank_by="score")
    ptr = torch.tensor([0, 1, 1, 3, 3, 4, 5, 5, 6, 8])
    ex = torch.tensor([0, 2, 19, 4, 7, 0, 1, 5])
    tie = torch.randperm(20, generator=G(2))
    whole = s._score_pool(sc, sc.q, sc.C, (ptr, ex), tie)
    for chunk in (1, 8 * 20, 3 * 8 * 20):
        assert torch.equal(s._score_pool(sc, sc.q, sc.C, (ptr, ex), tie, chunk=chunk), whole)
    for r in range(9):
        assert not set(whole[r].tolist()) & set(ex[ptr[r]:ptr[r + 1]].tolist())


def test_ens_rank_by_score_pool_larger_than_the_admissible_set_and_empty_batch():
    s = create("ens", n=4, pool_size=25, hard_fraction=1.0, rank_by="score")  # K > N - 1
    P, sc = events(6), mlp_scorer(6)
    neg = s.sample(P, scorer=sc, generator=G(0))
    assert bool(neg.valid.all()) and not bool((neg.ids == P[:, 1:]).any())
    neg = s.sample(torch.zeros(0, 2, dtype=torch.long), scorer=mlp_scorer(0), generator=G(0))
    assert neg.ids.shape == (0, 4)


def test_ens_rank_by_errors():
    with pytest.raises(ValueError, match="'rank_by' must be one of"):
        create("ens", rank_by="cosine")
    with pytest.raises(ValueError, match="'rank_by' must be 'embedding' for ens_score"):
        create("ens_score", rank_by="score")
    s = create("ens", n=1, pool_size=2, hard_fraction=1.0, rank_by="score")
    with pytest.raises(TypeError, match="rank_by='score' needs the scorer's score_table.* or topk_table"):
        s.sample(events(4), scorer=scorer(4), generator=G(0))
    bad = mlp_scorer(4)
    bad.score_table = lambda q, C: torch.zeros(q.shape[0], 3)
    with pytest.raises(ValueError, match=r"score_table must give \[R, N\] = \[4, 20\]"):
        s.sample(events(4), scorer=bad, generator=G(0))
    bad.score_table = lambda q, C: torch.full((q.shape[0], C.shape[0]), float("nan"))
    with pytest.raises(ValueError, match="score_table"):
        s.sample(events(4), scorer=bad, generator=G(0))


def test_ens_draft_errors():
    P, sc = events(8), scorer(8)
    s = create("ens", n=1, pool_size=2, hard_fraction=1.0)
    d = s.draft(P, generator=G(0))
    with pytest.raises(ValueError, match="'draft' was made for other positives"):
        s.sample(events(8, seed=3), scorer=sc, generator=G(0), draft=d)
    s.sample(P, scorer=sc, generator=G(0), draft=d)
    with pytest.raises(ValueError, match=r"'draft' was made for other positives or at another step \(draft step 0, "
                                         r"sampler step 1\)"):
        s.sample(P, scorer=sc, generator=G(0), draft=d)  # stale: a call in between
    with pytest.raises(TypeError, match="'draft' must come from ENSSampler.draft\\(\\)"):
        s.sample(P, scorer=sc, generator=G(0), draft="mine")
    with pytest.raises(ValueError, match="needs a scorer"):
        s.sample(P, generator=G(0), draft=s.draft(P, generator=G(0)))
    # the drafted tensor itself skips the positives' checks (made at draft time); an equal copy is checked again;
    # the times are checked either way
    out = []
    for given in (P, P.clone()):
        s = create("ens", n=1, pool_size=2, hard_fraction=1.0)
        g = G(1)
        d = s.draft(P, generator=g)
        with pytest.raises(ValueError, match="'times' must have one entry per event"):
            s.sample(given, scorer=sc, generator=g, times=torch.zeros(3), draft=d)
        out.append(s.sample(given, scorer=sc, generator=g, draft=d).ids)
    assert torch.equal(out[0], out[1])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_distinct_rows_groups_as_torch_unique(dtype, monkeypatch):
    # ENS's grouping of identical queries: the partition of torch.unique(dim=0), -0.0 equal to 0.0, and
    # torch.unique's own answer when two different rows share a hash
    from hardneg.samplers import base

    g = G(4)
    x = torch.randn(7, 16, generator=g, dtype=dtype)[torch.randint(0, 7, (40,), generator=g)]
    x[5] = x[4]
    x[4, 2], x[5, 2] = 0.0, -0.0  # rows 4 and 5 differ only in the sign of a zero: one row
    ref_rows, ref_inv = torch.unique(x, dim=0, return_inverse=True)

    def same_partition(rows, inv):
        assert rows.shape == ref_rows.shape and torch.equal(rows[inv], x)
        assert torch.equal(inv[:, None] == inv[None, :], ref_inv[:, None] == ref_inv[None, :])

    same_partition(*base.distinct_rows(x))
    assert int(base.distinct_rows(x)[1][4]) == int(base.distinct_rows(x)[1][5])
    key = (dtype, 16, x.device)
    monkeypatch.setitem(base._ROW_HASH, key, torch.zeros(16, dtype=torch.int64))  # every row one hash
    same_partition(*base.distinct_rows(x))
    rows, inv = base.distinct_rows(torch.empty(0, 16, dtype=dtype))
    assert rows.shape == (0, 16) and inv.shape == (0,)


def test_ens_checks_its_table_once_per_refresh_and_its_queries_every_call():
    # the cached table is checked (NaN/Inf) when it is taken; each call checks its fresh queries and the score bound
    s = create("ens", n=2, pool_size=4, hard_fraction=1.0, refresh_every=3)
    sc = scorer(4, seed=5)
    s.sample(events(4), scorer=sc, generator=G(0))
    bad_table = scorer(4, seed=5)
    bad_table.C = bad_table.C.clone()
    bad_table.C[3, 1] = float("nan")
    with pytest.raises(ValueError, match="ens: 'candidates' must be finite"):
        create("ens", n=2, pool_size=4, hard_fraction=1.0).sample(events(4), scorer=bad_table, generator=G(0))
    bad_q = scorer(4, seed=5)
    bad_q.q = bad_q.q.clone()
    bad_q.q[0, 0] = float("inf")
    with pytest.raises(ValueError, match="ens: 'query' must be finite"):
        s.sample(events(4), scorer=bad_q, generator=G(0))
    huge = scorer(4, seed=5)
    huge.q = huge.q * 1e37
    with pytest.raises(ValueError, match="scores could overflow float32"):
        s.sample(events(4), scorer=huge, generator=G(0))


def test_mine_cached_table_equals_topk_mine():
    from hardneg.ops.mining import mine_cached_table

    g = G(8)
    q, C = torch.randn(9, 6, generator=g), torch.randn(40, 6, generator=g)
    C[20:] = C[0]  # ties, broken by the keys
    ex = (torch.tensor([0, 1, 1, 3, 4, 4, 4, 5, 6, 8]), torch.tensor([3, 0, 39, 7, 2, 11, 12, 5]))
    tie = torch.randperm(40, generator=g)
    mag = float(C.abs().max())
    for k in (1, 5, 45):
        want = hardneg.ops.topk_mine(q, C, k, exclude=ex, tie_break=tie)
        got = mine_cached_table("t", q, C, k, mag, ex, tie)
        assert torch.equal(want[0], got[0]) and torch.equal(want[1], got[1])
    e = mine_cached_table("t", q[:0], C, 3, mag, (torch.zeros(1, dtype=torch.int64), torch.zeros(0, dtype=torch.int64)))
    assert e[1].shape == (0, 3)


@pytest.mark.parametrize("k", [1, 3, 7, 12])
def test_stable_topk_is_a_stable_sorts_first_k(k):
    """``stable_topk`` equals ``torch.sort(descending, stable)`` cut at k: many ties (small integers), -inf
    (excluded candidates) in rows with fewer than k finite values, k = N, a single row and a single column."""
    from hardneg.samplers.base import stable_topk

    g = G(k)
    for R, N in ((9, 12), (1, 12), (5, 1)):
        x = torch.randint(-2, 3, (R, N), generator=g).float()
        x[torch.rand(R, N, generator=g) < 0.4] = float("-inf")
        if R > 1:
            x[0] = float("-inf")
        kk = min(k, N)
        vals, cols = stable_topk(x, kk)
        ref_v, ref_c = torch.sort(x, dim=1, descending=True, stable=True)
        assert torch.equal(vals, ref_v[:, :kk]) and torch.equal(cols, ref_c[:, :kk])
    with pytest.raises(ValueError, match="'k' must be at most the row length 12"):
        stable_topk(torch.zeros(2, 12), 13)
    with pytest.raises(ValueError, match="'k' must be >= 1"):
        stable_topk(torch.zeros(2, 12), 0)
