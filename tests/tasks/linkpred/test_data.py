"""Linkpred task data: edge lists / .mat / Planetoid loading, the 85/5/10 split and its fixed negatives."""
import warnings

import pytest
import torch

from conftest import shared_path
from hardneg.tasks.linkpred import data as L

SEAL = {"usair": (332, 2_126), "ns": (1_589, 2_742), "pb": (1_222, 16_714), "celegans": (297, 2_148),
        "router": (5_022, 6_258), "ecoli": (1_805, 14_660)}


def random_graph(n=200, m=1000, seed=0):
    g = torch.Generator().manual_seed(seed)
    e = torch.randint(0, n, (3 * m, 2), generator=g)
    e = e[e[:, 0] != e[:, 1]]
    key = torch.unique(torch.minimum(e[:, 0], e[:, 1]) * n + torch.maximum(e[:, 0], e[:, 1]))[:m]
    return L.LinkPredDataset.from_edges(torch.stack([key // n, key % n], 1), n)


def keys(pairs, n):
    return set((torch.minimum(pairs[:, 0], pairs[:, 1]) * n + torch.maximum(pairs[:, 0], pairs[:, 1])).tolist())


# ------------------------------------------------------------------------------------------------ loading
def test_edge_list_formats_header_weights_and_one_based_ids(tmp_path):
    p = tmp_path / "g.csv"
    p.write_text("source,target,weight\n1,2,0.5\n2,3,1.0\n\n4,1,2\n")
    ds = L.load_dataset(str(p))
    assert ds.num_nodes == 4 and ds.edges.tolist() == [[0, 1], [0, 3], [1, 2]]
    assert ds.edge_index().shape == (2, 6) and keys(ds.edge_index().T, 4) == keys(ds.edges, 4)
    q = tmp_path / "g.txt"
    q.write_text("0\t1\n  1   2 \n")
    assert L.load_dataset(str(q), num_nodes=5).num_nodes == 5
    assert L.load_dataset(str(q), id_base=0).edges.tolist() == [[0, 1], [1, 2]]


def test_self_loops_and_duplicates_are_removed_and_counted(tmp_path):
    p = tmp_path / "dup.txt"
    p.write_text("0 1\n1 0\n0 1\n2 2\n1 2\n")
    with pytest.warns(UserWarning, match=r"removed 1 self-loops and 2 duplicate edges \(1 exact repeats of a row, "
                                         r"1 reverse-direction repeats\)"):
        ds = L.load_dataset(str(p))
    assert ds.edges.tolist() == [[0, 1], [1, 2]] and ds.num_nodes == 3
    d = ds.describe()
    assert (d["self_loops_removed"], d["duplicates_removed"], d["edges"]) == (1, 2, 2)


def test_ids_out_of_range_and_bad_input(tmp_path):
    with pytest.raises(ValueError, match=r"'edges\[:, 1\]' ids must be in \[0, 3\) \(got min 1, max 3\)"):
        L.LinkPredDataset.from_edges(torch.tensor([[0, 1], [1, 3]]), 3)
    with pytest.raises(ValueError, match=r"'edges' must be \[E, 2\]"):
        L.LinkPredDataset.from_edges(torch.tensor([[0, 1, 2]]))
    with pytest.raises(TypeError, match=r"'edges' must be a 2-D integer tensor"):
        L.LinkPredDataset.from_edges(torch.tensor([[0.0, 1.0]]))
    p = tmp_path / "big.txt"
    p.write_text("0 1\n1 7\n")
    with pytest.raises(ValueError, match=r"ids must be in \[0, 4\)"):
        L.load_dataset(str(p), num_nodes=4)
    with pytest.raises(ValueError, match=r"'id_base' must be 0, 1 or None"):
        L.load_dataset(str(p), id_base=2)
    (tmp_path / "folder").mkdir()
    with pytest.raises(ValueError, match=r"holds no Planetoid files"):
        L.load_dataset(str(tmp_path / "folder"))
    with pytest.raises(ValueError, match=r"'x' must have num_nodes=2 rows"):
        L.LinkPredDataset.from_edges(torch.tensor([[0, 1]]), x=torch.zeros(3, 4))


def test_mat_files(tmp_path):
    import scipy.io
    import scipy.sparse as sp

    A = sp.csc_matrix(([1.0] * 5, ([0, 1, 1, 2, 3], [1, 0, 2, 1, 1])), shape=(5, 5))  # (3, 1) lacks its reverse
    scipy.io.savemat(tmp_path / "G.mat", {"net": A})
    with pytest.warns(UserWarning, match="1 adjacency entries lacked their reverse"):
        ds = L.load_dataset(str(tmp_path / "G.mat"))
    assert ds.num_nodes == 5 and ds.edges.tolist() == [[0, 1], [1, 2], [1, 3]] and ds.describe()["isolated_nodes"] == 1
    scipy.io.savemat(tmp_path / "H.mat", {"adj": A})
    with pytest.raises(ValueError, match="has no 'net' variable"):
        L.load_dataset(str(tmp_path / "H.mat"))
    scipy.io.savemat(tmp_path / "R.mat", {"net": sp.csc_matrix((2, 3))})
    with pytest.raises(ValueError, match=r"must be a square adjacency \(got shape \(2, 3\)\)"):
        L.load_dataset(str(tmp_path / "R.mat"))


def test_not_found():
    with pytest.raises(ValueError, match=r"linkpred dataset 'nope' not found \(shipped names: \['celegans', 'citeseer'"):
        L.load_dataset("nope")
    assert {e["name"] for e in L.available()} == set(L.SHIPPED)


# ------------------------------------------------------------------------------------------------ split
def test_split_invariants():
    ds = random_graph()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sp = ds.split(seed=3, num_hits_negatives=500)
    M, N = ds.num_edges, ds.num_nodes
    assert (sp.valid.shape[0], sp.test.shape[0], sp.train.shape[0]) == (int(0.05 * M), int(0.1 * M), M - 50 - 100)
    parts = [keys(p, N) for p in (sp.train, sp.valid, sp.test)]
    assert sum(map(len, parts)) == M and set().union(*parts) == keys(ds.edges, N)  # disjoint and complete
    for p in (sp.train, sp.valid, sp.test, sp.valid_neg, sp.test_neg, sp.hits_valid_neg, sp.hits_test_neg):
        assert (p[:, 0] < p[:, 1]).all()
    full = keys(ds.edges, N)
    for p, size in ((sp.valid_neg, 50), (sp.test_neg, 100), (sp.hits_valid_neg, 500), (sp.hits_test_neg, 500)):
        k = keys(p, N)
        assert p.shape[0] == size and len(k) == size and not k & full
    assert not keys(sp.valid_neg, N) & keys(sp.test_neg, N)
    for pos, mrr in ((sp.valid, sp.valid_mrr_neg), (sp.test, sp.test_mrr_neg)):
        assert mrr.shape == (pos.shape[0], 100)
        u = pos[:, 0:1].expand_as(mrr)
        assert not (mrr == u).any() and not keys(torch.stack([u.flatten(), mrr.flatten()], 1), N) & full
        srt = torch.sort(mrr, 1).values
        assert not (srt[:, 1:] == srt[:, :-1]).any()
    assert keys(sp.train_edge_index().T, N) == parts[0] and sp.train_edge_index().shape[1] == 2 * sp.train.shape[0]
    d = ds.describe(sp)["split"]
    assert (d["train"], d["hits_negatives"], d["mrr_negatives"]) == (M - 150, 500, 100)


def test_split_is_deterministic_per_seed():
    ds = random_graph()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a, b, c = (ds.split(seed=s, num_hits_negatives=100) for s in (1, 1, 2))
    for f in ("train", "valid", "test", "valid_neg", "test_neg", "hits_test_neg", "test_mrr_neg"):
        assert torch.equal(getattr(a, f), getattr(b, f)), f
        assert not torch.equal(getattr(a, f), getattr(c, f)), f


def test_split_warns_for_nodes_left_without_training_edges():
    star = L.LinkPredDataset.from_edges(torch.stack([torch.zeros(100, dtype=torch.int64), torch.arange(1, 101)], 1))
    with pytest.warns(UserWarning) as w:
        sp = star.split(num_mrr_negatives=10)
    msgs = [str(x.message) for x in w]
    assert any("15 nodes that have edges got no training edge" in m for m in msgs)
    assert sp.nodes_without_train_edge == 15
    # the hub is adjacent to every node: no admissible MRR negative for it (rows of -1, warned)
    assert any("have none (filled with -1)" in m for m in msgs) and (sp.test_mrr_neg == -1).all()


def test_small_graph_hits_set_is_all_non_edges_and_errors():
    ds = random_graph(n=30, m=300)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sp = ds.split(num_mrr_negatives=5)
    assert sp.hits_test_neg.shape[0] == 30 * 29 // 2 - 300
    tiny = L.LinkPredDataset.from_edges(torch.tensor([[0, 1], [1, 2], [2, 3]]))
    with pytest.raises(ValueError, match=r"3 edges are too few"):
        tiny.split()
    with pytest.raises(ValueError, match=r"'val_ratio' must be in \(0, 1\)"):
        ds.split(val_ratio=1.5)
    with pytest.raises(ValueError, match=r"'num_hits_negatives' must be >= 0"):
        ds.split(num_hits_negatives=-1)
    i, j = torch.triu_indices(20, 20, 1)
    complete = L.LinkPredDataset.from_edges(torch.stack([i, j], 1))
    with pytest.raises(ValueError, match=r"the graph has 0 non-edges, fewer than the 28 1:1 negatives"):
        complete.split()


def _components(n, edges):
    """Connected components by breadth-first search (the test's own reference)."""
    adj = [[] for _ in range(n)]
    for u, v in edges.tolist():
        adj[u].append(v)
        adj[v].append(u)
    comp, out = [-1] * n, []
    for s in range(n):
        if comp[s] >= 0:
            continue
        comp[s], todo, members = len(out), [s], [s]
        while todo:
            for w in adj[todo.pop()]:
                if comp[w] < 0:
                    comp[w] = comp[s]
                    todo.append(w)
                    members.append(w)
        out.append(sorted(members))
    return out


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_largest_component_keeps_the_biggest_component_renumbered_in_order(seed):
    g = torch.Generator().manual_seed(seed)
    n = 300
    ds = random_graph(n, 170, seed)  # sparse: many components and isolated nodes
    ds.x = torch.randn(n, 5, generator=g)
    ds.y = torch.randint(0, 4, (n,), generator=g)
    lcc = ds.largest_component()
    best = max(_components(n, ds.edges), key=len)
    keep = torch.tensor(best)
    new_id = torch.full((n,), -1, dtype=torch.int64)
    new_id[keep] = torch.arange(keep.numel())
    inside = (new_id[ds.edges[:, 0]] >= 0) & (new_id[ds.edges[:, 1]] >= 0)
    expect = new_id[ds.edges[inside]]
    assert lcc.num_nodes == keep.numel() and lcc.num_edges == int(inside.sum())
    assert keys(lcc.edges, lcc.num_nodes) == keys(expect, lcc.num_nodes)
    assert torch.equal(lcc.x, ds.x[keep]) and torch.equal(lcc.y, ds.y[keep])
    assert lcc.describe()["largest_component_of"] == {"nodes": n, "edges": ds.num_edges}
    assert lcc.describe()["isolated_nodes"] == 0
    assert len(_components(lcc.num_nodes, lcc.edges)) == 1
    assert lcc.largest_component() is lcc  # connected: returned as it is
    assert ds.largest_component().num_edges == lcc.num_edges  # the source dataset is untouched


# ------------------------------------------------------------------------------------------------ real data
def test_planetoid_counts():
    shared_path("data", "static", "cora", "ind.cora.graph")
    cora = L.load_dataset("cora")
    assert (cora.num_nodes, cora.num_edges, cora.x.shape[1], int(cora.y.max()) + 1) == (2_708, 5_278, 1_433, 7)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sp = cora.split(num_hits_negatives=1000)
    assert (sp.train.shape[0], sp.valid.shape[0], sp.test.shape[0]) == (4_488, 263, 527)
    shared_path("data", "static", "citeseer", "ind.citeseer.graph")
    cs = L.load_dataset("citeseer")
    assert (cs.num_nodes, cs.num_edges, cs.x.shape[1]) == (3_327, 4_552, 3_703)
    lcc = cs.largest_component()  # BUDDY's Planetoid protocol
    assert (lcc.num_nodes, lcc.num_edges) == (2_120, 3_679) and lcc.x.shape == (2_120, 3_703)


@pytest.mark.parametrize("name", sorted(SEAL))
def test_seal_counts(name):
    shared_path("data", "static", "seal")
    ds = L.load_dataset(name)
    assert (ds.num_nodes, ds.num_edges) == SEAL[name] and ds.x is None
    if name == "ns":
        assert ds.describe()["isolated_nodes"] == 128


@pytest.mark.parametrize("name,dups", [("USAir", 0), ("NS", 0), ("PB", 2_307), ("Celegans", 211), ("Router", 0)])
def test_seal_edge_lists_equal_the_mat_graphs(name, dups):
    txt = shared_path("data", "static", "seal", "raw_data", f"{name}.txt")
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        ds = L.load_dataset(txt)
    assert ds.duplicates_removed == dups and (len(w) > 0) == (dups > 0)
    mat = L.load_dataset(name.lower())
    assert ds.num_nodes == mat.num_nodes and torch.equal(ds.edges, mat.edges)
