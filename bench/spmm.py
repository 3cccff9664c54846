"""spmm (CSR @ dense, LightGCN's propagation) against torch's own CSR product and PyG's LGConv.

Providers, all computing ``A_hat @ X`` for the same matrix and X:

* ``torch.sparse.mm (CSR)``: torch's CSR product (MKL on x86 CPU wheels, cuSPARSE on CUDA); what LightGCN and
  PyG's ``LGConv`` run on a sparse adjacency. The baseline.
* ``PyG LGConv (edge_index)``: ``LGConv(normalize=False)`` with an ``edge_index`` and edge weights: PyG's
  gather / scatter message passing, the other way PyG users call it.
* ``hardneg cpu`` / ``hardneg cuda``: :func:`hardneg.ops.spmm`.

Matrices: the symmetric normalised user-item adjacency of Gowalla's LightGCN training split (70,839 nodes, 1.62M
entries; needs the shared data) and a synthetic power-law graph of the same size and density.

    python bench/spmm.py [--quick] [--repeats 5] [--interleave]
"""
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(__file__))
from _harness import Config, Provider, main  # noqa: E402

_CACHE: dict = {}


def problem(p):
    key = (p["data"], p["d"])
    if key not in _CACHE:
        import warnings

        from hardneg.tasks.rec.models import normalized_adjacency

        g = torch.Generator().manual_seed(0)
        if p["data"] == "gowalla":
            from hardneg.tasks.rec.data import load_dataset

            sp = load_dataset("gowalla").split("given")
            U, I, train = sp.num_users, sp.num_items, sp.train  # noqa: E741
        else:
            U, I, m = p["U"], p["I"], p["m"]  # noqa: E741
            w = 1.0 / torch.arange(1, I + 1, dtype=torch.float64) ** 0.8  # power-law item popularity
            items = torch.multinomial(w, m, replacement=True, generator=g)
            train = torch.unique(torch.stack([torch.randint(0, U, (m,), generator=g), items], 1), dim=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            adj = normalized_adjacency(train[:, 0], train[:, 1], U, I)
        x = torch.randn(U + I, p["d"], generator=g)
        _CACHE[key] = (adj, x)
    return _CACHE[key]


def ours(backend):
    def make(p, device):
        from hardneg.ops import spmm

        adj, x = problem(p)
        adj, x = adj.to(device), x.to(device)
        return lambda: spmm(adj, x, backend=backend)

    return make


def torch_csr(p, device):
    adj, x = problem(p)
    adj, x = adj.to(device), x.to(device)
    return lambda: torch.sparse.mm(adj, x)


def pyg_lgconv(p, device):
    from torch_geometric.nn import LGConv

    adj, x = problem(p)
    coo = adj.to_sparse_coo()
    ei, w = coo.indices().to(device), coo.values().to(device)
    conv, x = LGConv(normalize=False), x.to(device)
    # LGConv aggregates messages x_j * w along edge_index (source j -> target i): row i of A_hat @ x
    ei = ei.flip(0)
    return lambda: conv(x, ei, w)


def _pyg_skip(p, device):
    try:
        import torch_geometric  # noqa: F401
    except ImportError:
        return "torch_geometric not installed"
    return None


def _data_skip(p, device):
    if p["data"] != "gowalla":
        return None
    from hardneg.tasks.rec.data import find

    return None if find("gowalla") else "gowalla not found (shared data absent)"


PROVIDERS = [
    Provider("torch.sparse.mm (CSR)", torch_csr, devices=("cpu", "cuda"), baseline=True, skip=_data_skip),
    Provider("PyG LGConv (edge_index)", pyg_lgconv, devices=("cpu", "cuda"),
             skip=lambda p, d: _pyg_skip(p, d) or _data_skip(p, d)),
    Provider("hardneg cpu", ours("cpu"), devices=("cpu",), skip=_data_skip),
    Provider("hardneg cuda", ours("cuda"), devices=("cuda",), skip=_data_skip),
]


def configs(quick):
    if quick:
        return [Config("synthetic 3k x 5k, 60k edges, d=64", dict(data="synthetic", U=3000, I=5000, m=60000, d=64),
                       flops=2.0 * 2 * 60000 * 64)]
    out = []
    for dev in ("cpu", "cuda"):
        out.append(Config("gowalla A_hat (70,839 nodes, 1.62M entries), d=64", dict(data="gowalla", d=64),
                          flops=2.0 * 1620256 * 64, device=dev))
        for d in (64, 16):
            out.append(Config(f"synthetic power-law 30k x 41k, 810k edges, d={d}",
                              dict(data="synthetic", U=29858, I=40981, m=810128, d=d), device=dev))
    return out


if __name__ == "__main__":
    main("spmm", configs, PROVIDERS)
