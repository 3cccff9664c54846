"""Each sampler's own invariants and distributions, and the bad-input errors."""
import math

import numpy as np
import pytest
import torch

import hardneg
from hardneg import samplers
from hardneg.reference.mining import scores as ref_scores
from hardneg.testing import assert_chi2

E, R = 40, 3


def kg(seed=0, m=300):
    g = torch.Generator().manual_seed(seed)
    tr = torch.stack([torch.randint(0, E, (m,), generator=g), torch.randint(0, R, (m,), generator=g),
                      torch.randint(0, E, (m,), generator=g)], 1)
    tr = torch.unique(tr, dim=0)
    return tr, hardneg.KnownSet.from_triples(tr, E, R)


def distmult(seed=1, d=6, scale=1.0):
    g = torch.Generator().manual_seed(seed)
    return samplers.DistMultScorer(scale * torch.randn(E, d, generator=g, dtype=torch.float64),
                                   torch.randn(R, d, generator=g, dtype=torch.float64))


def admissible_tails(tr, h, r):
    known = {int(x[2]) for x in tr.tolist() if x[0] == h and x[1] == r}
    return [e for e in range(E) if e not in known]


def tail_scores(sc, h, r):
    q = sc.query_vectors(torch.tensor([[h, r]]), "tail")
    return ref_scores(q, sc.candidate_vectors("tail"), sc.metric)[0]


G = lambda s: torch.Generator().manual_seed(s)


# ------------------------------------------------------------------------------------------ scorers
@pytest.mark.parametrize("cls", ["DistMult", "ComplEx", "TransE1", "TransE2", "RotatE"])
def test_scorer_matches_model_score_on_both_sides(cls):
    g = G(0)
    d = 6
    ent = torch.randn(E, 2 * d, generator=g, dtype=torch.float64)
    if cls == "DistMult":
        sc, rel = samplers.DistMultScorer(ent, torch.randn(R, 2 * d, generator=g, dtype=torch.float64)), None
        f = lambda h, r, t: (ent[h] * sc.relation_weight[r] * ent[t]).sum(-1)
    elif cls == "ComplEx":
        rel = torch.randn(R, 2 * d, generator=g, dtype=torch.float64)
        sc = samplers.ComplExScorer(ent, rel)
        c = lambda x: torch.complex(x[..., :d], x[..., d:])
        f = lambda h, r, t: (c(ent[h]) * c(rel[r]) * c(ent[t]).conj()).sum(-1).real
    elif cls.startswith("TransE"):
        p = int(cls[-1])
        rel = torch.randn(R, 2 * d, generator=g, dtype=torch.float64)
        sc = samplers.TransEScorer(ent, rel, p=p)
        f = (lambda h, r, t: -(ent[h] + rel[r] - ent[t]).abs().sum(-1)) if p == 1 else \
            (lambda h, r, t: -(ent[h] + rel[r] - ent[t]).pow(2).sum(-1))
    else:
        theta = torch.rand(R, d, generator=g, dtype=torch.float64) * 2 * math.pi
        sc = samplers.RotatEScorer(ent, theta)
        c = lambda x: torch.complex(x[..., :d], x[..., d:])
        f = lambda h, r, t: -(c(ent[h]) * torch.polar(torch.ones_like(theta[r]), theta[r]) - c(ent[t])).abs().sum(-1)
    tr, _ = kg()
    h, r, t = tr[:, 0], tr[:, 1], tr[:, 2]
    want = f(h, r, t)
    torch.testing.assert_close(sc.score_positives(tr), want)
    # tail side: query (h, r) against every entity; head side: query (r, t)
    full_t = ref_scores(sc.query_vectors(tr[:, :2], "tail"), sc.candidate_vectors("tail"), sc.metric)
    full_h = ref_scores(sc.query_vectors(tr[:, 1:], "head"), sc.candidate_vectors("head"), sc.metric)
    torch.testing.assert_close(full_t.gather(1, t[:, None])[:, 0], want)
    torch.testing.assert_close(full_h.gather(1, h[:, None])[:, 0], want)
    # score_negatives with a per-negative side agrees with the formula on the corrupted triples
    neg = samplers.create("uniform", num_negatives=4, num_entities=E).sample(tr, generator=G(3))
    tt = neg.triples(tr)
    torch.testing.assert_close(sc.score_negatives(tr, neg), f(tt[..., 0], tt[..., 1], tt[..., 2]))


def test_embedding_scorer_bipartite():
    users, items = torch.randn(7, 4), torch.randn(11, 4)
    sc = samplers.EmbeddingScorer(users, "cos", candidate_weight=items)
    assert sc.candidate_vectors("tail").shape == (11, 4)
    assert sc.query_vectors(torch.tensor([1, 2]), "tail").shape == (2, 4)
    assert sc.candidate_vectors("head").shape == (7, 4)


# ------------------------------------------------------------------------------------------ uniform family
def test_uniform_tail_is_uniform_over_admissible():
    tr, known = kg()
    h, r = int(tr[0, 0]), int(tr[0, 1])
    adm = admissible_tails(tr, h, r)
    s = samplers.create("uniform", num_negatives=64, known=known, side="tail")
    neg = s.sample(tr[:1].repeat(200, 1), generator=G(0))
    assert neg.side is None
    counts = torch.bincount(neg.ids.flatten(), minlength=E)
    p = torch.zeros(E, dtype=torch.float64)
    p[adm] = 1.0 / len(adm)
    assert_chi2(counts, p)


def test_bernoulli_side_frequencies():
    tr, known = kg()
    s = samplers.create("bernoulli", num_negatives=200, known=known)
    batch = tr[:30]
    neg = s.sample(batch, generator=G(1))
    freq = (neg.side == 0).double().mean(1)
    want = known.head_probability().double()[batch[:, 1]]
    assert torch.allclose(freq, want, atol=5 * math.sqrt(0.25 / 200))
    with pytest.raises(ValueError, match="KnownSet"):
        samplers.create("bernoulli", num_negatives=2, num_entities=E).sample(batch, generator=G(0))


def test_typed_draws_from_the_relation_domain():
    tr, known = kg()
    s = samplers.create("typed", num_negatives=20, known=known)
    neg = s.sample(tr, generator=G(2))
    heads = {r: {int(x[0]) for x in tr.tolist() if x[1] == r} for r in range(R)}
    tails = {r: {int(x[2]) for x in tr.tolist() if x[1] == r} for r in range(R)}
    side = neg.side_matrix(tr)
    for i in range(tr.shape[0]):
        r = int(tr[i, 1])
        for j in range(20):
            if neg.valid[i, j]:
                dom = heads[r] if side[i, j] == 0 else tails[r]
                assert int(neg.ids[i, j]) in dom


def test_in_batch_uses_other_rows_and_handles_tiny_batches():
    tr, known = kg()
    batch = tr[:25]
    s = samplers.create("in_batch", num_negatives=6, known=known, side="tail")
    neg = s.sample(batch, generator=G(0))
    tails = batch[:, 2].tolist()
    for i in range(25):
        others = set(tails[:i] + tails[i + 1:])
        for x in neg.ids[i][neg.valid[i]].tolist():
            assert x in others
    one = s.sample(batch[:1], generator=G(0))
    assert not bool(one.valid.any()) and bool((one.ids == -1).all())
    # two rows whose only other entity is known for them: invalid; otherwise exact fallback finds the rest
    pos = torch.tensor([[0, 0, 1], [0, 0, 2], [5, 1, 7]])
    ks = hardneg.KnownSet.from_triples(pos, E, R)
    out = samplers.create("in_batch", num_negatives=4, known=ks, side="tail").sample(pos, generator=G(1))
    assert not bool(out.valid[0].any()) or set(out.ids[0][out.valid[0]].tolist()) <= {7}
    assert set(out.ids[0][out.valid[0]].tolist()) == {7} and set(out.ids[2].tolist()) <= {1, 2}


def _bfs(tr, start, k):
    adj = {}
    for h, _, t in tr.tolist():
        if h != t:
            adj.setdefault(h, set()).add(t)
            adj.setdefault(t, set()).add(h)
    seen, frontier = {start}, {start}
    for _ in range(k):
        frontier = {v for u in frontier for v in adj.get(u, ())} - seen
        seen |= frontier
    return seen - {start}


def test_khop_neighbourhood_and_top_up():
    tr, known = kg(m=120)
    s = samplers.create("khop", num_negatives=5, known=known, side="tail", hops=1)
    neg = s.sample(tr, generator=G(0))
    for i in range(tr.shape[0]):
        h, r, t = tr[i].tolist()
        adm = set(admissible_tails(tr, h, r))
        near = _bfs(tr, h, 1) & adm
        got = neg.ids[i].tolist()
        assert set(got) <= adm
        if len(near) >= 5:
            assert set(got) <= near and len(set(got)) == 5  # distinct k-hop negatives
        else:
            assert near <= set(got)  # all of the neighbourhood, topped up uniformly


def test_khop_numba_matches_python_bfs():
    from hardneg.samplers.khop import khop_neighborhood, undirected_csr

    tr, _ = kg(m=80)
    ip, ix = undirected_csr(tr[:, 0], tr[:, 2], E)
    out, cnt = khop_neighborhood(ip, ix, np.arange(E), 2, E, 0)
    for a in range(E):
        assert set(out[a, : cnt[a]].tolist()) == _bfs(tr, a, 2)


# ------------------------------------------------------------------------------------------ hard samplers
def test_topk_draws_from_the_exact_top_pool():
    tr, known = kg()
    sc = distmult()
    K, n = 7, 5
    s = samplers.create("topk", num_negatives=n, known=known, side="tail", pool_size=K)
    neg = s.sample(tr[:40], scorer=sc, generator=G(0))
    for i in range(40):
        h, r, t = tr[i].tolist()
        adm = admissible_tails(tr, h, r)
        sco = tail_scores(sc, h, r)[adm]
        kth = sco.sort(descending=True).values[K - 1]
        got = neg.ids[i].tolist()
        assert len(set(got)) == n  # distinct
        for x in got:
            assert x in adm and tail_scores(sc, h, r)[x] >= kth - 1e-9
    with pytest.raises(ValueError, match="pool_size"):
        samplers.create("topk", num_negatives=8, known=known, pool_size=4)


def test_topk_uniform_over_pool_and_k_above_n_entities():
    tr, known = kg()
    sc = distmult()
    h, r = tr[0, :2].tolist()
    s = samplers.create("topk", num_negatives=1, known=known, side="tail", pool_size=4)
    neg = s.sample(tr[:1].repeat(4000, 1), scorer=sc, generator=G(5))
    adm = admissible_tails(tr, h, r)
    sco = tail_scores(sc, h, r)
    top = sorted(adm, key=lambda e: -float(sco[e]))[:4]
    p = torch.zeros(E, dtype=torch.float64)
    p[top] = 0.25
    assert_chi2(torch.bincount(neg.ids.flatten(), minlength=E), p)
    big = samplers.create("topk", num_negatives=3, known=known, pool_size=10 * E).sample(tr[:5], scorer=sc, generator=G(0))
    assert bool(big.valid.all())


def test_dns_keeps_the_hardest_of_m_uniform_candidates():
    """n = 1 of M = 2 i.i.d. filtered-uniform draws: the i-th lowest-scored admissible tail wins with
    probability (2i - 1) / a² (the maximum of two uniform draws)."""
    tr, known = kg()
    sc = distmult()
    h, r = tr[0, :2].tolist()
    s = samplers.create("dns", num_negatives=1, known=known, side="tail", num_candidates=2)
    neg = s.sample(tr[:1].repeat(6000, 1), scorer=sc, generator=G(3))
    adm = admissible_tails(tr, h, r)
    sco = tail_scores(sc, h, r)
    asc = sorted(adm, key=lambda e: float(sco[e]))
    p = torch.zeros(E, dtype=torch.float64)
    for i, e in enumerate(asc, 1):
        p[e] = (2 * i - 1) / len(asc) ** 2
    assert_chi2(torch.bincount(neg.ids.flatten(), minlength=E), p)
    with pytest.raises(ValueError, match="'num_candidates' \\(2\\) must be >= num_negatives"):
        samplers.create("dns", num_negatives=4, known=known, num_candidates=2)


def test_score_sampler_matches_softmax_and_log_prob():
    tr, known = kg()
    sc = distmult(scale=0.7)
    h, r = tr[0, :2].tolist()
    adm = admissible_tails(tr, h, r)
    sco = tail_scores(sc, h, r)
    p = torch.zeros(E, dtype=torch.float64)
    p[adm] = torch.softmax(sco[adm], 0)
    s = samplers.create("score", num_negatives=8, known=known, side="tail")
    neg = s.sample(tr[:1].repeat(1500, 1), scorer=sc, generator=G(0))
    assert_chi2(torch.bincount(neg.ids.flatten(), minlength=E), p)
    torch.testing.assert_close(neg.log_prob.double(), p.log()[neg.ids], rtol=1e-4, atol=1e-4)
    sp = samplers.create("score", num_negatives=4, known=known, weighting="softplus", temperature=0.5)
    assert sp.sample(tr[:3], scorer=sc, generator=G(0)).log_prob is not None


def test_nmiss_only_returns_candidates_scored_above_the_positive():
    tr, known = kg()
    sc = distmult()
    s = samplers.create("nmiss", num_negatives=4, known=known, side="tail", fallback="none")
    neg = s.sample(tr, scorer=sc, generator=G(0))
    for i in range(tr.shape[0]):
        h, r, t = tr[i].tolist()
        sco = tail_scores(sc, h, r)
        misses = [e for e in admissible_tails(tr, h, r) if sco[e] > sco[t]]
        got = neg.ids[i][neg.valid[i]].tolist()
        assert bool(neg.valid[i].any()) == bool(misses)
        assert set(got) <= set(misses)
        if 0 < len(misses) <= 4:
            assert set(got) == set(misses)
    hardest = samplers.create("nmiss", num_negatives=4, known=known, side="tail").sample(tr, scorer=sc, generator=G(0))
    assert bool(hardest.valid.all())


def test_nscaching_cache_is_admissible_and_gets_harder():
    tr, known = kg()
    sc = distmult()
    s = samplers.create("nscaching", num_negatives=4, known=known, side="tail", cache_size=6, num_fresh=6)
    batch = tr[:30]

    def mean_cache_score():
        keys, cache = s._keys["tail"], s._cache["tail"]
        hs, rs = keys // R, keys % R
        q = sc.query_vectors(torch.stack([hs, rs], 1), "tail")
        return float(samplers.pairwise(q[:, None], sc.candidate_vectors()[cache], "dot").mean())

    s.sample(batch, scorer=sc, generator=G(0))
    first = mean_cache_score()
    for i in range(30):
        s.sample(batch, scorer=sc, generator=G(i + 1))
    assert mean_cache_score() > first + 0.5
    keys, cache = s._keys["tail"], s._cache["tail"]
    truth = set(map(tuple, tr.tolist()))
    for k, row in zip(keys.tolist(), cache.tolist()):
        assert len(set(row)) == len(row)  # distinct entries
        assert not any((k // R, k % R, e) in truth for e in row)


def test_mixed_schedule_and_hard_columns():
    tr, known = kg()
    sc = distmult()
    s = samplers.create("mixed", num_negatives=10, known=known, side="tail", schedule="linear", start=0.0, end=0.6,
                        warmup_steps=4, hard_options={"pool_size": 10})
    assert [s.num_hard(i) for i in range(6)] == [0, 2, 3, 5, 6, 6]  # round(f * n), half up
    for _ in range(5):
        neg = s.sample(tr[:20], scorer=sc, generator=G(0))
    assert s.num_hard() == 6
    for i in range(20):
        h, r, t = tr[i].tolist()
        adm = admissible_tails(tr, h, r)
        sco = tail_scores(sc, h, r)
        kth = sorted((float(sco[e]) for e in adm), reverse=True)[9]
        assert all(float(sco[x]) >= kth - 1e-9 for x in neg.ids[i, :6].tolist())
    st = samplers.create("mixed", num_negatives=4, known=known, schedule="step", start=0.0, end=1.0, warmup_steps=2)
    assert [st.fraction(i) for i in range(4)] == [0.0, 0.0, 1.0, 1.0]
    assert samplers.create("mixed", num_negatives=4, known=known, schedule="constant", end=0.25).num_hard() == 1


# ------------------------------------------------------------------------------------------ bad input
def test_bad_input():
    tr, known = kg()
    with pytest.raises(ValueError, match=r"unknown sampler 'hardest'.*uniform.*topk"):
        samplers.create("hardest", num_negatives=4)
    with pytest.raises(ValueError, match="needs a scorer"):
        samplers.create("topk", num_negatives=4, known=known).sample(tr)
    for bad in (0, -3):
        with pytest.raises(ValueError, match="num_negatives"):
            samplers.create("uniform", num_negatives=bad, known=known)
    with pytest.raises(TypeError, match="num_negatives"):
        samplers.create("uniform", num_negatives=2.5, known=known)
    with pytest.raises(ValueError, match="pool_size"):
        samplers.create("topk", num_negatives=16, known=known, pool_size=8)
    with pytest.raises(ValueError, match="'positives' is on the meta device"):  # no data: a clear device error
        samplers.create("uniform", num_negatives=4, known=known).sample(tr.to("meta"))
    with pytest.raises(ValueError, match="'entity_weight' is on the meta device"):
        samplers.DistMultScorer(torch.randn(E, 4, device="meta"), torch.randn(R, 4, device="meta"))
    with pytest.raises(ValueError, match=r"entity ids .* \[0, 40\)"):
        samplers.create("uniform", num_negatives=4, known=known).sample(torch.tensor([[0, 0, 40]]))
    with pytest.raises(ValueError, match="relation ids"):
        samplers.create("uniform", num_negatives=4, known=known).sample(torch.tensor([[0, 3, 1]]))
    with pytest.raises(TypeError, match="positives"):
        samplers.create("uniform", num_negatives=4, known=known).sample(tr.float())
    with pytest.raises(ValueError, match="num_entities"):
        samplers.create("uniform", num_negatives=4).sample(tr)
    with pytest.raises(TypeError, match="KnownSet"):
        samplers.create("uniform", num_negatives=4, known=tr)
    with pytest.raises(ValueError, match="side"):
        samplers.create("uniform", num_negatives=4, known=known, side="left")
    with pytest.raises(TypeError, match="must implement"):
        samplers.create("score", num_negatives=4, known=known).sample(tr, scorer=object())
    wrong = samplers.DistMultScorer(torch.randn(E + 1, 4), torch.randn(R, 4))
    with pytest.raises(ValueError, match="41 candidates"):
        samplers.create("topk", num_negatives=4, known=known).sample(tr, scorer=wrong)
    with pytest.raises(ValueError, match="schedule"):
        samplers.create("mixed", num_negatives=4, known=known, schedule="cosine")


def test_nscaching_keys_need_num_relations_once():
    """Cache keys (h*R + r) need one R for the whole run: from known or num_relations, never from a batch."""
    tr, known = kg()
    sc = distmult()
    with pytest.raises(ValueError, match="num_relations=") as e:
        samplers.create("nscaching", num_negatives=2, num_entities=E).sample(tr[:8], scorer=sc, generator=G(0))
    assert "nscaching" in str(e.value)
    s = samplers.create("nscaching", num_negatives=2, num_entities=E, num_relations=R, side="tail")
    s.sample(tr[tr[:, 1] == 0][:5], scorer=sc, generator=G(0))  # a batch whose largest relation id is 0
    s.sample(tr[tr[:, 1] == R - 1][:5], scorer=sc, generator=G(1))
    keys = s.state_dict()["keys"]["tail"]
    want = {int(h) * R + int(r) for h, r in torch.cat([tr[tr[:, 1] == 0][:5], tr[tr[:, 1] == R - 1][:5]])[:, :2].tolist()}
    assert set(keys.tolist()) == want
