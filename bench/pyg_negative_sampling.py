"""hardneg.integrations.pyg.negative_sampling against torch_geometric.utils.negative_sampling, across graph sizes.

One call = one graph's worth of negatives (num_neg_samples = M, PyG's default), as GAE's ``recon_loss`` asks
every step. Random graphs with average degree 13 (the issue's 10k nodes / 130k edges) from 100 to 100k nodes,
directed and ``force_undirected``; Cora's training graph too. PyG may return fewer than asked (its rounds of
oversampling can fall short); ours always returns exactly the count, never a known edge.

    python bench/pyg_negative_sampling.py [--quick] [--repeats 5]
"""
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(__file__))
from _harness import Config, Provider, main  # noqa: E402

SIZES = ((100, 1_300), (1_000, 13_000), (10_000, 130_000), (100_000, 1_300_000))


def edge_index(p):
    if p["graph"] == "cora":
        from hardneg.tasks.linkpred.data import load_dataset

        ds = load_dataset("cora")
        return ds.edge_index(), ds.num_nodes
    g = torch.Generator().manual_seed(0)
    return torch.randint(0, p["N"], (2, p["M"]), generator=g), p["N"]


def ours(p, device):
    from hardneg.integrations.pyg import negative_sampling

    ei, N = edge_index(p)
    ei = ei.to(device)
    g = torch.Generator(device).manual_seed(1)
    return lambda: negative_sampling(ei, N, force_undirected=p["undirected"], generator=g)


def pyg(p, device):
    from torch_geometric.utils import negative_sampling

    ei, N = edge_index(p)
    ei = ei.to(device)
    return lambda: negative_sampling(ei, N, force_undirected=p["undirected"])


def _pyg_skip(p, device):
    try:
        import torch_geometric  # noqa: F401
    except ImportError:
        return "torch_geometric not installed"
    return None


def _cora_skip(p, device):
    if p["graph"] != "cora":
        return None
    from hardneg.tasks.linkpred.data import find

    return None if find("cora") else "Cora not found (shared data absent)"


PROVIDERS = [
    Provider("hardneg", ours, devices=("cpu", "cuda"), skip=_cora_skip),
    Provider("PyG negative_sampling", pyg, devices=("cpu", "cuda"), baseline=True,
             skip=lambda p, d: _pyg_skip(p, d) or _cora_skip(p, d)),
]


def configs(quick):
    out = []
    for dev in ("cpu", "cuda"):
        for N, M in SIZES[:2] if quick else SIZES:
            for und in (False, True):
                out.append(Config(f"N={N:,} M={M:,}{' undirected' if und else ''}",
                                  dict(graph="random", N=N, M=M, undirected=und), device=dev))
        out.append(Config("Cora (2,708 nodes, 10,556 entries) undirected", dict(graph="cora", N=0, M=0, undirected=True),
                          device=dev))
    return out


if __name__ == "__main__":
    main("pyg_negative_sampling", configs, PROVIDERS)
