"""Bipartite graphs everywhere: users and items are separate id spaces. KnownSet, corrupt, EmbeddingScorer and
every sampler take separate source and destination sizes, with more users than items and fewer."""
import pytest
import torch

import hardneg
from hardneg import samplers

SHAPES = [(50, 8), (8, 50)]


def _bip(U, I, m=120, seed=0):  # noqa: E741
    g = torch.Generator().manual_seed(seed)
    ed = torch.stack([torch.randint(0, U, (m,), generator=g), torch.randint(0, I, (m,), generator=g)], 1)
    ed = torch.unique(ed, dim=0)
    return ed, hardneg.KnownSet.from_edges(ed, num_sources=U, num_destinations=I)


@pytest.mark.parametrize("U,I", SHAPES)
def test_known_set_answers_with_separate_sizes(U, I):  # noqa: E741
    ed, ks = _bip(U, I)
    assert (ks.num_sources, ks.num_destinations, ks.bipartite) == (U, I, True)
    truth = set(map(tuple, ed.tolist()))
    allp = torch.cartesian_prod(torch.arange(U), torch.arange(I))
    assert ks.contains(allp).tolist() == [tuple(p) in truth for p in allp.tolist()]
    users = torch.arange(U)
    ptr, items = ks.exclusion(users, side="tail")
    for u in range(U):
        assert set(items[ptr[u]:ptr[u + 1]].tolist()) == {i for (a, i) in truth if a == u}
    ptr, us = ks.exclusion(torch.arange(I), side="head")
    for i in range(I):
        assert set(us[ptr[i]:ptr[i + 1]].tolist()) == {a for (a, b) in truth if b == i}
    m = ks.mask(users, torch.arange(I).expand(U, I), side="tail")
    assert m.sum() == len(truth)


def test_known_set_bipartite_errors():
    ed = torch.tensor([[9, 1], [0, 2]])
    with pytest.raises(ValueError, match=r"'edges\[:, 1\]' destination ids must be in \[0, 2\) \(got min 1, max 2\)"):
        hardneg.KnownSet.from_edges(ed, num_sources=10, num_destinations=2)
    with pytest.raises(ValueError, match=r"'edges\[:, 0\]' source ids must be in \[0, 5\) \(got min 0, max 9\)"):
        hardneg.KnownSet.from_edges(ed, num_sources=5, num_destinations=3)
    with pytest.raises(ValueError, match="give num_nodes, or num_sources and num_destinations"):
        hardneg.KnownSet.from_edges(ed, num_sources=10)
    with pytest.raises(ValueError, match="a bipartite set is directed"):
        hardneg.KnownSet.from_edges(ed, directed=False, num_sources=10, num_destinations=3)
    ks = hardneg.KnownSet.from_edges(ed, num_sources=10, num_destinations=3)
    with pytest.raises(ValueError, match=r"'candidates' destination ids must be in \[0, 3\)"):
        ks.mask(torch.tensor([0]), torch.tensor([[5]]))
    with pytest.raises(ValueError, match=r"source ids must be in \[0, 10\)"):
        ks.exclusion(torch.tensor([12]))


@pytest.mark.parametrize("U,I", SHAPES)
def test_corrupt_draws_each_side_from_its_own_id_space(U, I):  # noqa: E741
    ed, ks = _bip(U, I)
    truth = set(map(tuple, ed.tolist()))
    g = torch.Generator().manual_seed(0)
    neg, valid = hardneg.ops.corrupt(ed, 16, I, side="tail", known=ks, generator=g)
    assert int(neg[..., 1].max()) < I and bool(valid.all())
    assert not any(tuple(x) in truth for x in neg[valid].tolist())
    neg, valid = hardneg.ops.corrupt(ed, 16, U, side="head", known=ks, generator=g)
    assert int(neg[..., 0].max()) < U
    assert not any(tuple(x) in truth for x in neg[valid].tolist())
    with pytest.raises(ValueError, match=f"num_entities={U + I} does not match"):
        hardneg.ops.corrupt(ed, 2, U + I, side="tail", known=ks)
    if U != I:
        with pytest.raises(ValueError, match="one side at a time"):
            hardneg.ops.corrupt(ed, 2, I, side="both", known=ks)


@pytest.mark.parametrize("U,I", SHAPES)
@pytest.mark.parametrize("name", samplers.available())
def test_every_sampler_on_a_bipartite_graph(name, U, I):  # noqa: E741
    if name in ("bernoulli", "typed") or samplers.get_class(name).triples_only:
        pytest.skip("needs relations")
    ed, ks = _bip(U, I)
    g = torch.Generator().manual_seed(3)
    scorer = samplers.EmbeddingScorer(torch.randn(U, 6, generator=g), "dot", torch.randn(I, 6, generator=g))
    s = samplers.create(name, num_negatives=4, known=ks)
    assert (s.num_sources, s.num_entities) == (U, I)
    batch = ed[:40]
    neg = s.sample(batch, scorer=scorer, generator=torch.Generator().manual_seed(0))
    ids = neg.ids[neg.valid]
    assert neg.side is None and bool((ids < I).all()) and bool((ids >= 0).all())
    truth = set(map(tuple, ed.tolist()))
    assert not any(tuple(x) in truth for x in neg.triples(batch)[neg.valid].tolist())


def test_bpr_mf_from_the_docstrings_with_more_users_than_items():
    U, I = 300, 40  # noqa: E741
    ed, ks = _bip(U, I, m=2000)
    user, item = torch.nn.Embedding(U, 16), torch.nn.Embedding(I, 16)
    scorer = samplers.EmbeddingScorer(user.weight, "dot", item.weight)
    opt = torch.optim.Adam([user.weight, item.weight], lr=0.05)
    for name in ("uniform", "topk"):
        s = samplers.create(name, num_negatives=4, known=ks)
        for batch in ed.split(256):
            neg = s.sample(batch, scorer=scorer, generator=torch.Generator().manual_seed(0))
            pos_s = scorer.score_positives(batch)
            loss = hardneg.losses.bpr(pos_s, scorer.score_negatives(batch, neg), valid=neg.valid)
            opt.zero_grad()
            loss.backward()
            opt.step()
