"""enclosing_subgraphs (SEAL subgraphs + DRNL) against PyG's per-link loop.

Baselines, both from PyG's ``examples/seal_link_pred.py``: ``k_hop_subgraph`` per link with the target link
removed (the loop alone, no labels: the conservative baseline), and the same loop plus its DRNL labelling
(scipy shortest paths on the subgraph without either endpoint), which is what SEAL needs. Links: half
training edges, half random non-edges of Cora / CiteSeer's training graph (85% of the edges, as SEAL trains).

    python bench/enclosing_subgraphs.py [--quick] [--repeats 3]
"""
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(__file__))
from _harness import Config, Provider, main  # noqa: E402

_CACHE = {}


def problem(p):
    key = (p["data"], p["links"])
    if key not in _CACHE:
        import warnings

        from hardneg.graph import CSRGraph
        from hardneg.tasks.linkpred.data import load_dataset

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = load_dataset(p["data"])
            sp = ds.split(seed=0, num_hits_negatives=1)
        g = torch.Generator().manual_seed(0)
        half = p["links"] // 2
        pos = sp.train[torch.randperm(sp.train.shape[0], generator=g)[:half]]
        neg = torch.randint(0, ds.num_nodes, (2 * half, 2), generator=g)
        neg = neg[neg[:, 0] != neg[:, 1]][:half]
        _CACHE[key] = (CSRGraph.from_edges(sp.train, ds.num_nodes), torch.cat([pos, neg]), sp.train_edge_index())
    return _CACHE[key]


def ours(backend):
    def make(p, device):
        from hardneg.ops import enclosing_subgraphs

        graph, pairs, _ = problem(p)
        graph, pairs = graph.to(device), pairs.to(device)
        return lambda: enclosing_subgraphs(graph, pairs, p["hops"], backend=backend)

    return make


def pyg_loop(with_drnl):
    def make(p, device):
        import numpy as np
        from scipy.sparse.csgraph import shortest_path
        from torch_geometric.utils import k_hop_subgraph, to_scipy_sparse_matrix

        _, pairs, ei = problem(p)
        links = pairs.tolist()

        def drnl(sub_ei, src, dst, n):  # examples/seal_link_pred.py's drnl_node_labeling
            src, dst = (dst, src) if src > dst else (src, dst)
            adj = to_scipy_sparse_matrix(sub_ei, num_nodes=n).tocsr()
            idx = list(range(src)) + list(range(src + 1, n))
            adj_wo_src = adj[idx, :][:, idx]
            idx = list(range(dst)) + list(range(dst + 1, n))
            adj_wo_dst = adj[idx, :][:, idx]
            d2s = torch.from_numpy(np.insert(shortest_path(adj_wo_dst, directed=False, unweighted=True, indices=src),
                                             dst, 0, axis=0))
            d2d = torch.from_numpy(np.insert(shortest_path(adj_wo_src, directed=False, unweighted=True,
                                                           indices=dst - 1), src, 0, axis=0))
            d = d2s + d2d
            z = 1 + torch.min(d2s, d2d) + (d // 2) * (d // 2 + d % 2 - 1)
            z[src] = z[dst] = 1.0
            z[torch.isnan(z)] = 0.0
            return z.long()

        def run():
            out = []
            for s, t in links:
                nodes, sub_ei, mapping, _ = k_hop_subgraph([s, t], p["hops"], ei, relabel_nodes=True)
                a, b = mapping.tolist()
                keep = ((sub_ei[0] != a) | (sub_ei[1] != b)) & ((sub_ei[0] != b) | (sub_ei[1] != a))
                sub_ei = sub_ei[:, keep]
                out.append((nodes, sub_ei, drnl(sub_ei, a, b, nodes.numel()) if with_drnl else None))
            return out

        return run

    return make


def _pyg_skip(p, device):
    try:
        import scipy  # noqa: F401
        import torch_geometric  # noqa: F401
    except ImportError:
        return "torch_geometric / scipy not installed"
    return None


def _data_skip(p, device):
    from hardneg.tasks.linkpred.data import find

    return None if find(p["data"]) else f"{p['data']} not found (shared data absent)"


PROVIDERS = [
    Provider("hardneg cpu", ours("cpu"), devices=("cpu",), skip=_data_skip),
    Provider("hardneg cuda", ours("cuda"), devices=("cuda",), skip=_data_skip),
    Provider("hardneg reference (Python)", ours("reference"), devices=("cpu",),
             skip=lambda p, d: _data_skip(p, d) or (None if p["links"] <= 2000 else "too slow")),
    Provider("PyG k_hop_subgraph loop", pyg_loop(False), devices=("cpu",), baseline=True,
             skip=lambda p, d: _pyg_skip(p, d) or _data_skip(p, d)),
    Provider("PyG loop + DRNL (example)", pyg_loop(True), devices=("cpu",),
             skip=lambda p, d: _pyg_skip(p, d) or _data_skip(p, d)),
]


def configs(quick):
    links = 200 if quick else 2000
    out = []
    for dev in ("cpu", "cuda"):
        for data, hops in (("cora", 2), ("cora", 1), ("citeseer", 2), ("cora", 3)):
            if quick and (data, hops) != ("cora", 2):
                continue
            out.append(Config(f"{data} {hops} hops, {links} links", dict(data=data, hops=hops, links=links),
                              device=dev))
    return out


if __name__ == "__main__":
    main("enclosing_subgraphs", configs, PROVIDERS)
