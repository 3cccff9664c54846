"""The PyG adapter: PyG's signature and shapes, PyG's own invariants, exact count, uniformity."""
import pytest
import torch

from hardneg.integrations import pyg as pyg_adapter
from hardneg.integrations.pyg import negative_sampling
from hardneg.testing import assert_chi2

pyg_utils = pytest.importorskip("torch_geometric.utils", reason="PyTorch Geometric is not installed (extra hardneg[pyg])")


@pytest.fixture(params=["dense bits", "KnownSet"], autouse=True)
def membership(request, monkeypatch):
    """Every test runs with both membership structures: a bit per pair (small graphs) and the KnownSet index."""
    if request.param == "KnownSet":
        monkeypatch.setattr(pyg_adapter, "_DENSE_MAX", 0)
    return request.param


def graph(n=60, m=500, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, n, (2, m), generator=g)


@pytest.mark.parametrize("force_undirected", [False, True])
def test_pyg_invariants_and_exact_count(force_undirected):
    ei = graph()
    N = 60
    if force_undirected:
        ei = pyg_utils.to_undirected(ei)
    out = negative_sampling(ei, N, 700, force_undirected=force_undirected, generator=torch.Generator().manual_seed(1))
    assert out.dtype == torch.int64 and out.shape == (2, 700 if not force_undirected else 700)
    # PyG's own checks: no positive edge, no self-loop, in range, no duplicates
    pos = set(map(tuple, ei.T.tolist()))
    assert not any(tuple(e) in pos for e in out.T.tolist())
    assert not bool((out[0] == out[1]).any())
    assert int(out.min()) >= 0 and int(out.max()) < N
    assert len(set(map(tuple, out.T.tolist()))) == out.shape[1]
    if force_undirected:
        assert pyg_utils.is_undirected(out)
    # the same call through PyG runs and satisfies the same contract (with at most as many samples)
    theirs = pyg_utils.negative_sampling(ei, N, 700, force_undirected=force_undirected)
    assert theirs.shape[1] <= 700


def test_force_undirected_excludes_both_directions_of_a_one_way_edge():
    ei = graph(n=40, m=300, seed=2)  # not symmetric: (u, v) may be an edge while (v, u) is not
    out = negative_sampling(ei, 40, 400, force_undirected=True, generator=torch.Generator().manual_seed(0))
    pos = set(map(tuple, ei.T.tolist()))
    assert not any((u, v) in pos or (v, u) in pos for u, v in out.T.tolist())


@pytest.mark.parametrize("force_undirected", [False, True])
def test_both_membership_structures_draw_the_same_negatives(monkeypatch, force_undirected):
    ei = graph(n=200, m=3000, seed=3)
    out = {}
    for limit in (1 << 20, 0):  # 200 x 200 pairs: the bit per pair, then the KnownSet index
        monkeypatch.setattr(pyg_adapter, "_DENSE_MAX", limit)
        out[limit] = negative_sampling(ei, 200, 900, force_undirected=force_undirected,
                                       generator=torch.Generator().manual_seed(4))
    assert torch.equal(out[1 << 20], out[0])


def test_signature_defaults_ratio_and_bipartite():
    ei = graph()
    assert negative_sampling(ei).shape == (2, ei.shape[1])           # num_neg_samples=None: one per edge
    assert negative_sampling(ei, 60, 0.5).shape == (2, ei.shape[1] // 2)  # a float is a ratio
    bi = torch.stack([torch.randint(0, 5, (20,)), torch.randint(0, 9, (20,))])
    out = negative_sampling(bi, (5, 9), 10)
    assert out.shape == (2, 10) and int(out[0].max()) < 5 and int(out[1].max()) < 9
    assert not any(tuple(e) in set(map(tuple, bi.T.tolist())) for e in out.T.tolist())


def test_dense_graph_enumerates_and_warns():
    n = 6
    full = torch.tensor([(u, v) for u in range(n) for v in range(n) if u != v]).T
    keep = torch.ones(full.shape[1], dtype=torch.bool)
    keep[[0, 7, 13]] = False  # three non-edges remain
    out = negative_sampling(full[:, keep], n, 3, generator=torch.Generator().manual_seed(0))
    assert sorted(map(tuple, out.T.tolist())) == sorted(map(tuple, full[:, ~keep].T.tolist()))
    with pytest.warns(UserWarning, match="only 3 non-edges"):
        assert negative_sampling(full[:, keep], n, 10).shape == (2, 3)


def test_uniform_over_non_edges():
    n = 7
    ei = torch.tensor([[0, 1, 2, 3, 4], [1, 2, 3, 4, 5]])
    pos = set(map(tuple, ei.T.tolist()))
    cells = [(u, v) for u in range(n) for v in range(n) if u != v and (u, v) not in pos]
    idx = {c: i for i, c in enumerate(cells)}
    counts = torch.zeros(len(cells))
    g = torch.Generator().manual_seed(0)
    for _ in range(1500):
        out = negative_sampling(ei, n, 1, generator=g)
        counts[idx[tuple(out[:, 0].tolist())]] += 1
    assert_chi2(counts, torch.full((len(cells),), 1.0 / len(cells)))


def test_bad_input():
    with pytest.raises(ValueError, match=r"'edge_index' must be \[2, M\]"):
        negative_sampling(torch.zeros(3, 4, dtype=torch.long))
    with pytest.raises(TypeError, match="edge_index"):
        negative_sampling(torch.zeros(2, 4))
    with pytest.raises(ValueError, match="node ids"):
        negative_sampling(torch.tensor([[0, 9]]).T.contiguous().view(2, 1), 5)
    with pytest.raises(ValueError, match="method"):
        negative_sampling(graph(), method="fast")
