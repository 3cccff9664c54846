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
