"""The generic contract every registered sampler meets (shape, dtype, bounds, never a known positive,
determinism per seed), on CPU and on GPU when present, for triples and for pairs."""
import pytest
import torch

import hardneg
from hardneg import samplers

from conftest import devices

E, R = 60, 5
# event samplers replace the destination of (src, dst) pairs only; they have no triples form
EVENTS = {n for n in samplers.available() if issubclass(samplers.get_class(n), samplers.TemporalSampler)}


def _kind(name, kind="triples"):
    return "pairs" if name in EVENTS else kind


def _graph(kind, seed=0, m=400):
    g = torch.Generator().manual_seed(seed)
    if kind == "triples":
        tr = torch.stack([torch.randint(0, E, (m,), generator=g), torch.randint(0, R, (m,), generator=g),
                          torch.randint(0, E, (m,), generator=g)], 1)
        tr = torch.unique(tr, dim=0)
        return tr, hardneg.KnownSet.from_triples(tr, E, R)
    ed = torch.stack([torch.randint(0, E, (m,), generator=g), torch.randint(0, E, (m,), generator=g)], 1)
    ed = torch.unique(ed, dim=0)
    return ed, hardneg.KnownSet.from_edges(ed, E)


def _scorer(kind, dev, d=8):
    g = torch.Generator().manual_seed(1)
    if kind == "triples":
        return samplers.DistMultScorer(torch.randn(E, d, generator=g).to(dev), torch.randn(R, d, generator=g).to(dev))
    return samplers.EmbeddingScorer(torch.randn(E, d, generator=g).to(dev))


@pytest.mark.parametrize("rng", ["generator", "seed"])
@pytest.mark.parametrize("device", devices())
@pytest.mark.parametrize("kind", ["triples", "pairs"])
@pytest.mark.parametrize("name", samplers.available())
def test_contract(name, kind, device, rng):
    if name == "bernoulli" and kind == "pairs":
        pytest.skip("Bernoulli needs relations (tph/hpt)")
    if name == "typed" and kind == "pairs":
        pytest.skip("type constraints need relations")
    if name in EVENTS and kind == "triples":
        pytest.skip("event samplers take (src, dst) pairs; they never corrupt triples")
    if samplers.get_class(name).triples_only and kind == "pairs":
        pytest.skip(f"{name} generates negatives for (h, r, t) triples only")
    pos, known = _graph(kind)
    pos, known = pos.to(device), known.to(device)
    sc = _scorer(kind, device)
    batch = pos[:97]
    n = 5
    truth = set(map(tuple, pos.cpu().tolist()))

    def run(seed, steps=2):
        s = samplers.create(name, num_negatives=n, known=known)
        out = None
        for i in range(steps):
            if rng == "seed":  # the explicit-seed form (torch.compile's) meets the same contract
                out = s.sample(batch, scorer=sc, seed=seed + i)
            else:
                out = s.sample(batch, scorer=sc, generator=torch.Generator(device).manual_seed(seed + i))
        return out

    neg = run(0)
    assert isinstance(neg, samplers.Negatives)
    assert neg.ids.shape == (97, n) and neg.valid.shape == (97, n)
    assert neg.ids.dtype == torch.int64 and neg.valid.dtype == torch.bool
    assert neg.ids.device.type == torch.device(device).type
    ids = neg.ids[neg.valid]
    assert bool(((ids >= 0) & (ids < E)).all())
    assert bool((neg.ids[~neg.valid] == -1).all())
    assert bool(neg.valid.all())  # this graph is sparse: every row has admissible negatives
    tailc = batch.shape[1] - 1
    if neg.side is not None:
        assert neg.side.dtype == torch.int64 and neg.side.shape in ((97,), (97, n))
        assert set(neg.side.unique().tolist()) <= {0, tailc}
    if neg.log_prob is not None:
        assert neg.log_prob.shape == (97, n)
        assert bool(torch.isfinite(neg.log_prob[neg.valid]).all()) and bool((neg.log_prob[neg.valid] <= 0).all())
    t = neg.triples(batch)
    assert t.shape == (97, n, batch.shape[1])
    leaked = [x for x in t[neg.valid].cpu().tolist() if tuple(x) in truth]
    assert not leaked, f"{name} returned known positives {leaked[:5]}"
    # determinism for a seed, and a different draw for another seed
    again = run(0)
    assert torch.equal(neg.ids, again.ids) and torch.equal(neg.valid, again.valid)
    other = run(123)
    if name != "hardgnn" or kind == "triples":  # hardgnn's all-hard default is the deterministic top-k for pairs
        assert not torch.equal(neg.ids, other.ids)


@pytest.mark.parametrize("rng", ["generator", "seed"])
@pytest.mark.parametrize("name", samplers.available())
def test_empty_batch(name, rng):
    pos, known = _graph(_kind(name))
    s = samplers.create(name, num_negatives=3, known=known)
    how = {"seed": 0} if rng == "seed" else {"generator": torch.Generator().manual_seed(0)}
    neg = s.sample(pos[:0], scorer=_scorer(_kind(name), "cpu"), **how)
    assert neg.ids.shape == (0, 3) and neg.valid.shape == (0, 3)


@pytest.mark.parametrize("name", samplers.available())
def test_only_common_arguments(name):
    """Every sampler builds from the common arguments alone (no known set for the ones that do not need it)."""
    pos, known = _graph(_kind(name))
    s = samplers.create(name, num_negatives=4, known=known, num_entities=E, num_relations=R)
    assert s.num_negatives == 4 and s.name == name
    assert isinstance(s.state_dict(), dict)


@pytest.mark.parametrize("name", samplers.available())
def test_state_dict_resumes_identically(name):
    pos, known = _graph(_kind(name))
    sc = _scorer(_kind(name), "cpu")
    a = samplers.create(name, num_negatives=4, known=known)
    for i in range(3):
        a.sample(pos[:50], scorer=sc, generator=torch.Generator().manual_seed(i))
    b = samplers.create(name, num_negatives=4, known=known)
    b.load_state_dict(a.state_dict())
    x = a.sample(pos[:50], scorer=sc, generator=torch.Generator().manual_seed(9))
    y = b.sample(pos[:50], scorer=sc, generator=torch.Generator().manual_seed(9))
    assert torch.equal(x.ids, y.ids)
