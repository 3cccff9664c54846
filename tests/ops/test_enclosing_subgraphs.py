"""enclosing_subgraphs: every backend against the reference (exact, node for node), the reference against PyG's
own SEAL recipe (``k_hop_subgraph`` + scipy shortest paths for DRNL), the per-hop cap, and every error."""
import pytest
import torch

import hardneg
from hardneg.graph import CSRGraph
from hardneg.ops import enclosing_subgraphs
from hardneg.testing import assert_chi2

from conftest import backend_params


def random_graph(n=60, m=150, seed=0, device="cpu"):
    g = torch.Generator().manual_seed(seed)
    e = torch.randint(0, n, (m, 2), generator=g)
    return CSRGraph.from_edges(e, n).to(device), e


def random_pairs(n, P, seed=1, device="cpu"):
    g = torch.Generator().manual_seed(seed)
    p = torch.randint(0, n, (P, 2), generator=g)
    p = p[p[:, 0] != p[:, 1]]
    return p.to(device)


def as_sets(sub, i):
    """(nodes in order, {(u, v)} global entries, {node: label}) of subgraph i."""
    a, b = int(sub.node_ptr[i]), int(sub.node_ptr[i + 1])
    nodes = sub.nodes[a:b].tolist()
    ea, eb = int(sub.edge_ptr[i]), int(sub.edge_ptr[i + 1])
    ent = sub.edge_index[:, ea:eb] - a
    edges = {(nodes[x], nodes[y]) for x, y in ent.T.tolist()}
    return nodes, edges, dict(zip(nodes, sub.labels[a:b].tolist()))


def pyg_seal(edge_index, s, t, hops):
    """The SEAL recipe of PyG's examples/seal_link_pred.py, written independently of hardneg."""
    import numpy as np
    from scipy.sparse.csgraph import shortest_path
    from torch_geometric.utils import k_hop_subgraph, to_scipy_sparse_matrix

    sub, ei, mapping, _ = k_hop_subgraph([s, t], hops, edge_index, relabel_nodes=True)
    ls, lt = mapping.tolist()
    keep = ~(((ei[0] == ls) & (ei[1] == lt)) | ((ei[0] == lt) & (ei[1] == ls)))
    ei = ei[:, keep]
    n = sub.numel()
    adj = to_scipy_sparse_matrix(ei, num_nodes=n).tocsr()

    def dist(root, banned):
        idx = [i for i in range(n) if i != banned]
        d = shortest_path(adj[idx][:, idx], directed=False, unweighted=True, indices=idx.index(root))
        return np.insert(d, banned, 0)

    ds, dt = dist(ls, lt), dist(lt, ls)
    labels = {}
    for i, v in enumerate(sub.tolist()):
        if i in (ls, lt):
            labels[v] = 1
        elif np.isinf(ds[i]) or np.isinf(dt[i]):
            labels[v] = 0
        else:
            a, b = int(ds[i]), int(dt[i])
            d = a + b
            labels[v] = 1 + min(a, b) + (d // 2) * (d // 2 + d % 2 - 1)
    edges = {(int(sub[x]), int(sub[y])) for x, y in ei.T.tolist()}
    return set(sub.tolist()), edges, labels


@pytest.mark.parametrize("hops", [1, 2, 3])
def test_reference_matches_pyg_seal_recipe(hops):
    pytest.importorskip("torch_geometric")
    pytest.importorskip("scipy")
    g, _ = random_graph(n=40, m=70, seed=hops)
    pairs = random_pairs(40, 30, seed=hops)
    sub = enclosing_subgraphs(g, pairs, hops, backend="reference")
    ei = g.edge_index()
    for i, (s, t) in enumerate(pairs.tolist()):
        nodes, edges, labels = as_sets(sub, i)
        want_nodes, want_edges, want_labels = pyg_seal(ei, s, t, hops)
        assert nodes[:2] == [s, t] and set(nodes) == want_nodes and len(nodes) == len(want_nodes)
        assert edges == want_edges
        assert labels == want_labels


@pytest.mark.parametrize("backend,device", backend_params("enclosing_subgraphs"))
@pytest.mark.parametrize("hops", [1, 2, 3])
def test_backend_matches_reference(backend, device, hops):
    for seed, (n, m, P) in enumerate([(60, 150, 80), (200, 400, 50), (5, 3, 6), (30, 0, 4)]):
        g, _ = random_graph(n, m, seed, device) if m else (CSRGraph.from_edges(torch.zeros(0, 2, dtype=torch.long),
                                                                                  n).to(device), None)
        pairs = random_pairs(n, P, seed + 10, device)
        got = enclosing_subgraphs(g, pairs, hops, backend=backend)
        want = enclosing_subgraphs(g.to("cpu"), pairs.cpu(), hops, backend="reference")
        for f in ("nodes", "node_ptr", "edge_index", "edge_ptr", "labels"):
            x = getattr(got, f)
            assert x.device.type == torch.device(device).type and x.dtype == torch.int64
            assert torch.equal(x.cpu(), getattr(want, f)), (f, seed)
        assert got.batch().shape == got.nodes.shape and got.num_graphs == pairs.shape[0]


@pytest.mark.parametrize("backend,device", backend_params("enclosing_subgraphs"))
def test_empty_and_awkward_inputs(backend, device):
    g, _ = random_graph(device=device)
    sub = enclosing_subgraphs(g, torch.zeros(0, 2, dtype=torch.int64, device=device), 2, backend=backend)
    assert sub.nodes.numel() == 0 and sub.node_ptr.tolist() == [0] and sub.edge_index.shape == (2, 0)
    # a linked pair loses its own link; int32 pairs are accepted
    line = CSRGraph.from_edges(torch.tensor([[0, 1], [1, 2]]), 4).to(device)
    sub = enclosing_subgraphs(line, torch.tensor([[0, 1], [3, 0]], dtype=torch.int32, device=device), 1,
                              backend=backend)
    assert sub.nodes.tolist() == [0, 1, 2, 3, 0, 1] and sub.node_ptr.tolist() == [0, 3, 6]
    assert sub.labels.tolist() == [1, 1, 0, 1, 1, 0]  # node 2 only reaches 0 through 1; node 1 is cut off from 3
    assert sub.edge_index.T.tolist() == [[1, 2], [2, 1], [4, 5], [5, 4]]


def test_cap_keeps_at_most_c_new_nodes_per_hop_and_is_seeded():
    g, _ = random_graph(n=80, m=400, seed=3)
    pairs = random_pairs(80, 40, seed=4)
    full = enclosing_subgraphs(g, pairs, 2)
    for backend in hardneg._backend.available("enclosing_subgraphs", "cpu"):
        a = enclosing_subgraphs(g, pairs, 2, max_nodes_per_hop=3, generator=torch.Generator().manual_seed(0),
                                backend=backend)
        b = enclosing_subgraphs(g, pairs, 2, max_nodes_per_hop=3, generator=torch.Generator().manual_seed(0),
                                backend=backend)
        c = enclosing_subgraphs(g, pairs, 2, max_nodes_per_hop=3, generator=torch.Generator().manual_seed(1),
                                backend=backend)
        assert torch.equal(a.nodes, b.nodes) and torch.equal(a.labels, b.labels)
        assert not torch.equal(a.nodes, c.nodes)
        assert bool((a.sizes() <= 2 + 2 * 3).all())
        for i in range(pairs.shape[0]):
            nodes, edges, _ = as_sets(a, i)
            assert set(nodes) <= set(as_sets(full, i)[0])
            # the entries are exactly the capped node set's induced edges, without the target link
            s, t = pairs[i].tolist()
            want = {(u, v) for u in nodes for v in g.neighbors(u).tolist() if v in nodes} - {(s, t), (t, s)}
            assert edges == want


@pytest.mark.parametrize("backend", ["reference", "cpu"])
def test_cap_draws_uniformly(backend):
    """A star: pair (hub, leaf 1) reaches the other L leaves at hop 1; with cap 1 each is kept with prob 1/L."""
    if backend not in hardneg._backend.available("enclosing_subgraphs", "cpu"):
        pytest.skip(f"{backend} backend not available")
    L = 8
    star = CSRGraph.from_edges(torch.stack([torch.zeros(L + 1, dtype=torch.long), torch.arange(1, L + 2)], 1), L + 2)
    P = 4000
    pairs = torch.tensor([[0, 1]]).expand(P, 2).contiguous()
    sub = enclosing_subgraphs(star, pairs, 1, max_nodes_per_hop=1, generator=torch.Generator().manual_seed(7),
                              backend=backend)
    assert bool((sub.sizes() == 3).all())
    kept = sub.nodes.view(P, 3)[:, 2]
    assert_chi2(torch.bincount(kept - 2, minlength=L).double(), torch.full((L,), 1.0 / L, dtype=torch.float64))


def test_errors():
    g, _ = random_graph()
    ok = torch.tensor([[0, 1]])
    with pytest.raises(TypeError, match=r"'graph' must be a hardneg.graph.CSRGraph"):
        enclosing_subgraphs(torch.zeros(2, 2), ok)
    with pytest.raises(TypeError, match=r"'pairs' must be a 2-D integer tensor"):
        enclosing_subgraphs(g, ok.float())
    with pytest.raises(ValueError, match=r"'pairs' must be \[P, 2\]"):
        enclosing_subgraphs(g, torch.tensor([[0, 1, 2]]))
    with pytest.raises(ValueError, match=r"'pairs' node ids must be in \[0, 60\) \(got min 0, max 60\)"):
        enclosing_subgraphs(g, torch.tensor([[0, 60]]))
    with pytest.raises(ValueError, match=r"'pairs' node ids must be in \[0, 60\) \(got min -1, max 3\)"):
        enclosing_subgraphs(g, torch.tensor([[-1, 3]]))
    with pytest.raises(ValueError, match=r"must link two different nodes \(got pair 1 = \(4, 4\)\)"):
        enclosing_subgraphs(g, torch.tensor([[0, 1], [4, 4]]))
    with pytest.raises(ValueError, match=r"'num_hops' must be >= 1 \(got 0\)"):
        enclosing_subgraphs(g, ok, 0)
    with pytest.raises(TypeError, match=r"'num_hops' must be an int"):
        enclosing_subgraphs(g, ok, 1.5)
    with pytest.raises(ValueError, match=r"'max_nodes_per_hop' must be >= 0 \(got -1\)"):
        enclosing_subgraphs(g, ok, 1, max_nodes_per_hop=-1)
    with pytest.raises(TypeError, match=r"'generator' must be a torch.Generator or None"):
        enclosing_subgraphs(g, ok, 1, generator=3)
    with pytest.raises(ValueError, match=r"backend 'triton' is not implemented for this op"):
        enclosing_subgraphs(g, ok, 1, backend="triton")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match=r"backend 'cuda' is not"):
            enclosing_subgraphs(g, ok, 1, backend="cuda")


def test_graph_construction_and_errors():
    g = CSRGraph.from_edges(torch.tensor([[0, 1], [1, 0], [2, 2], [1, 2], [1, 2]]), 4)
    assert g.indptr.tolist() == [0, 1, 3, 4, 4] and g.indices.tolist() == [1, 0, 2, 1]
    assert g.num_edges == 2 and g.degree().tolist() == [1, 2, 1, 0] and "nodes=4, edges=2" in repr(g)
    d = CSRGraph.from_edges(torch.tensor([[0, 1], [1, 2]]).T.contiguous(), 3, undirected=False)  # edge_index form
    assert d.indices.tolist() == [1, 2] and d.num_edges == 2
    v = g.kernel_view().core_args()
    assert v["num_nodes"] == 4 and v["num_entries"] == 4
    with pytest.raises(ValueError, match=r"'edges' node ids must be in \[0, 2\) \(got min 0, max 2\)"):
        CSRGraph.from_edges(torch.tensor([[0, 2]]), 2)
    with pytest.raises(TypeError, match=r"'edges' must be a 2-D integer tensor"):
        CSRGraph.from_edges(torch.tensor([[0.0, 1.0]]), 2)
    with pytest.raises(ValueError, match=r"'edges' must be \[M, 2\] or an edge_index \[2, M\]"):
        CSRGraph.from_edges(torch.zeros(3, 3, dtype=torch.long), 4)
    with pytest.raises(ValueError, match=r"'num_nodes' must be >= 1 \(got 0\)"):
        CSRGraph.from_edges(torch.zeros(0, 2, dtype=torch.long), 0)
    with pytest.raises(TypeError, match=r"'undirected' must be a bool"):
        CSRGraph.from_edges(torch.tensor([[0, 1]]), 2, undirected=1)
