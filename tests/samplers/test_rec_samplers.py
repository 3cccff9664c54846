"""popularity and hardgnn: exact distributions and invariants beyond the generic contract."""
import pytest
import torch

import hardneg
from hardneg import samplers


def _edges():
    # user 0 interacted with items 0, 1; item popularity (in-degree): 0:3, 1:2, 2:1, 3:1, 4:0, 5:1
    ed = torch.tensor([[0, 0], [0, 1], [1, 0], [2, 0], [1, 1], [2, 2], [3, 3], [3, 5]])
    return ed, hardneg.KnownSet.from_edges(ed, 6)


def test_popularity_follows_the_restricted_popularity_distribution():
    ed, known = _edges()
    s = samplers.create("popularity", num_negatives=4000, known=known)
    neg = s.sample(torch.tensor([[0, 0]]), generator=torch.Generator().manual_seed(0))
    ids = neg.ids[0]
    assert bool(neg.valid.all()) and not bool(torch.isin(ids, torch.tensor([0, 1, 4])).any())
    # admissible for user 0: items 2, 3, 5 with weights 1, 1, 1 -> uniform over three
    counts = torch.bincount(ids, minlength=6)[[2, 3, 5]].double()
    expected = torch.full((3,), 4000 / 3, dtype=torch.float64)
    chi2 = float(((counts - expected) ** 2 / expected).sum())
    assert chi2 < 27.6  # p = 1e-6 at 2 degrees of freedom
    assert torch.allclose(neg.log_prob[0], torch.full((4000,), -torch.log(torch.tensor(3.0)).item()))


def test_popularity_alpha_weights_and_rows_with_no_admissible_mass():
    ed, known = _edges()
    s = samplers.create("popularity", num_negatives=3000, known=known, alpha=2.0)
    neg = s.sample(torch.tensor([[3, 3]]), generator=torch.Generator().manual_seed(1))
    # user 3 excluded 3, 5; weights^2: 0:9, 1:4, 2:1 (4 weighs 0)
    counts = torch.bincount(neg.ids[0], minlength=6).double()
    p = torch.tensor([9.0, 4.0, 1.0]) / 14.0
    chi2 = float(((counts[:3] - 3000 * p) ** 2 / (3000 * p)).sum())
    assert chi2 < 27.6 and counts[3:].sum() == 0
    only = samplers.create("popularity", num_negatives=2, known=known, weights=torch.tensor([1.0, 1, 0, 0, 0, 0]))
    neg = only.sample(torch.tensor([[0, 0]]), generator=torch.Generator().manual_seed(0))
    assert not bool(neg.valid.any()) and bool((neg.ids == -1).all())


def test_popularity_errors():
    _, known = _edges()
    with pytest.raises(ValueError, match="popularity needs known="):
        samplers.create("popularity", num_negatives=1, num_entities=6)
    with pytest.raises(ValueError, match="'weights' must be finite and >= 0"):
        samplers.create("popularity", num_negatives=1, known=known, weights=torch.tensor([1.0, -1, 0, 0, 0, 0]))
    with pytest.raises(ValueError, match="'weights' must have num_entities=6 entries"):
        samplers.create("popularity", num_negatives=1, known=known, weights=torch.ones(5))
    with pytest.raises(ValueError, match="'alpha' must be"):
        samplers.create("popularity", num_negatives=1, known=known, alpha=0.0)


def test_hardgnn_is_the_cosine_top_k_of_admissible_items_then_uniform():
    g = torch.Generator().manual_seed(0)
    U, I, d = 7, 30, 5  # noqa: E741
    users, items = torch.randn(U, d, generator=g), torch.randn(I, d, generator=g)
    ed = torch.stack([torch.randint(0, U, (60,), generator=g), torch.randint(0, I, (60,), generator=g)], 1)
    ed = torch.unique(ed, dim=0)
    known = hardneg.KnownSet.from_edges(ed, max(U, I))
    sc = samplers.EmbeddingScorer(users, "dot", items)
    pos = ed[:10]
    s = samplers.create("hardgnn", num_negatives=5, known=known, num_entities=max(U, I), k=3)
    sc_pad = samplers.EmbeddingScorer(torch.cat([users, torch.zeros(I - U, d)]), "dot", items)
    neg = s.sample(pos, scorer=sc_pad, generator=torch.Generator().manual_seed(0))
    cos = torch.nn.functional.normalize(users, dim=1) @ torch.nn.functional.normalize(items, dim=1).T
    for r in range(pos.shape[0]):
        u = int(pos[r, 0])
        seen = set(ed[ed[:, 0] == u, 1].tolist())
        order = [j for j in torch.argsort(-cos[u]).tolist() if j not in seen]
        assert neg.ids[r, :3].tolist() == order[:3]
        assert not (set(neg.ids[r, 3:].tolist()) & seen)
    assert bool(neg.valid.all())
    with pytest.raises(ValueError, match=r"'k' \(6\) must be <= num_negatives \(5\)"):
        samplers.create("hardgnn", num_negatives=5, known=known, k=6)
    assert sc.metric == "dot"


def test_hardgnn_pads_rows_with_too_few_admissible_items_with_uniform_draws():
    ed = torch.tensor([[0, 0], [0, 1], [0, 2], [1, 0]])
    known = hardneg.KnownSet.from_edges(ed, 4)  # user 0 has one admissible item (3)
    sc = samplers.EmbeddingScorer(torch.randn(4, 3))
    neg = samplers.create("hardgnn", num_negatives=3, known=known).sample(
        torch.tensor([[0, 0], [1, 0]]), scorer=sc, generator=torch.Generator().manual_seed(0))
    assert neg.ids[0].tolist() == [3, 3, 3] and bool(neg.valid.all())
    assert set(neg.ids[1].tolist()) <= {1, 2, 3}


def _hardgnn_case(seed=0, U=9, I=40, d=6):  # noqa: E741
    g = torch.Generator().manual_seed(seed)
    users, items = torch.randn(U, d, generator=g), torch.randn(I, d, generator=g)
    ed = torch.unique(torch.stack([torch.randint(0, U, (90,), generator=g), torch.randint(0, I, (90,), generator=g)],
                                  1), dim=0)
    known = hardneg.KnownSet.from_edges(ed, max(U, I))
    sc = samplers.EmbeddingScorer(torch.cat([users, torch.zeros(max(U, I) - U, d)]), "dot", items)
    cos = torch.nn.functional.normalize(users, dim=1) @ torch.nn.functional.normalize(items, dim=1).T
    return ed, known, sc, cos


def test_hardgnn_with_candidates_mines_the_top_k_of_one_random_subset_per_call(monkeypatch):
    import hardneg.samplers.rec as rec

    ed, known, sc, cos = _hardgnn_case()
    I, M, k = cos.shape[1], 12, 3  # noqa: E741
    drawn = []

    def spy(shape, generator, device, dtype=torch.float64):
        out = rec.__dict__["_real_uniform"](shape, generator, device, dtype)
        drawn.append(out)
        return out

    monkeypatch.setitem(rec.__dict__, "_real_uniform", rec.uniform)
    monkeypatch.setattr(rec, "uniform", spy)
    pos = ed[:25]
    s = samplers.create("hardgnn", num_negatives=5, known=known, num_entities=I, k=k, candidates=M)
    neg = s.sample(pos, scorer=sc, generator=torch.Generator().manual_seed(3))
    assert len(drawn) == 1 and drawn[0].shape == (I,)
    subset = set(drawn[0].argsort()[:M].tolist())
    for r in range(pos.shape[0]):
        u = int(pos[r, 0])
        seen = set(ed[ed[:, 0] == u, 1].tolist())
        order = [j for j in torch.argsort(-cos[u]).tolist() if j in subset and j not in seen]
        assert neg.ids[r, :k].tolist() == order[:k]  # the k nearest admissible ids of the subset, in order
        assert not (set(neg.ids[r].tolist()) & seen)
    assert bool(neg.valid.all())


def test_hardgnn_candidates_reaches_beyond_the_global_top_k_and_is_seeded():
    ed, known, sc, cos = _hardgnn_case(seed=1)
    I = cos.shape[1]  # noqa: E741
    pos = ed[:20]
    full = samplers.create("hardgnn", num_negatives=2, known=known, num_entities=I, k=2)
    sub = samplers.create("hardgnn", num_negatives=2, known=known, num_entities=I, k=2, candidates=10)
    a = full.sample(pos, scorer=sc, generator=torch.Generator().manual_seed(0)).ids
    b = sub.sample(pos, scorer=sc, generator=torch.Generator().manual_seed(0)).ids
    c = sub.sample(pos, scorer=sc, generator=torch.Generator().manual_seed(0)).ids
    d = sub.sample(pos, scorer=sc, generator=torch.Generator().manual_seed(5)).ids
    assert torch.equal(b, c) and not torch.equal(b, d) and not torch.equal(a, b)
    # a subset at least as large as the catalogue is the whole catalogue
    whole = samplers.create("hardgnn", num_negatives=2, known=known, num_entities=I, k=2, candidates=I)
    assert torch.equal(whole.sample(pos, scorer=sc, generator=torch.Generator().manual_seed(0)).ids, a)


def test_hardgnn_candidates_errors():
    _, known = _edges()
    with pytest.raises(ValueError, match="'candidates' must be >= 1"):
        samplers.create("hardgnn", num_negatives=2, known=known, candidates=0)
    with pytest.raises(TypeError, match="'candidates'"):
        samplers.create("hardgnn", num_negatives=2, known=known, candidates=2.5)
    with pytest.raises(ValueError, match="'k' must be >= 1"):
        samplers.create("hardgnn", num_negatives=2, known=known, k=0)
    with pytest.raises(TypeError, match="'k'"):
        samplers.create("hardgnn", num_negatives=2, known=known, k="3")
    with pytest.raises(ValueError, match="'metric'"):
        samplers.create("hardgnn", num_negatives=2, known=known, metric="manhattan")
    # (candidates with a row-sharded table: tests/distributed, dist_cases.bad_inputs)


def test_restrict_csr_matches_a_brute_force_remap():
    from hardneg.samplers.base import restrict_csr

    g = torch.Generator().manual_seed(0)
    for rows, N, M in ((0, 10, 3), (1, 5, 5), (7, 30, 9), (12, 50, 1)):
        lens = torch.randint(0, 6, (rows,), generator=g)
        indptr = torch.cat([torch.zeros(1, dtype=torch.int64), lens.cumsum(0)])
        idx = torch.randint(0, N, (int(lens.sum()),), generator=g)
        subset = torch.randperm(N, generator=g)[:M]
        p, i = restrict_csr((indptr, idx), subset, N)
        where = {int(v): j for j, v in enumerate(subset.tolist())}
        assert p.tolist()[0] == 0 and p.numel() == rows + 1
        for r in range(rows):
            want = [where[v] for v in idx[indptr[r]:indptr[r + 1]].tolist() if v in where]
            assert i[p[r]:p[r + 1]].tolist() == want
