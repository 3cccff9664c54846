"""Benchmark mlp_topk_mine (an MLP link decoder's fused top-k: ``w·relu(q + c_j + o_bj)``) against torch.

The baseline is what a TGN / DyGLib user writes to rank every destination with the decoder (and what ENS's score
pool ran before this op): the hidden layer ``relu(q[:, None] + c[None])`` for 4 query rows at a time (one
[B, N, d] tensor would not fit in cache, nor in memory at large B·N), the output layer as a matrix-vector product,
the per-pair terms scattered in, excluded ids masked, then ``torch.topk``. Sizes: ENS's pools on UCI (50 mined
events against 1,899 destinations, d = 100, K = 20, up to 20 pair terms each; also with 45 % identical rows, scored
once each through ``candidate_index``) and Wikipedia (20 against 1,000), a large batch, and a large table.

    python bench/mlp_topk_mine.py --interleave           # CPU, every configuration (a paired ratio)
    python bench/mlp_topk_mine.py --quick --interleave   # the two ENS sizes only
    python bench/mlp_topk_mine.py --device cuda          # the Triton kernel against the torch baseline on a GPU
"""
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(__file__))
from _harness import Config, Provider, main  # noqa: E402

import hardneg  # noqa: E402


def make_inputs(p, device):
    gen = torch.Generator().manual_seed(0)
    B, N, d = p["B"], p["N"], p["d"]
    q, c, w = torch.randn(B, d, generator=gen), torch.randn(N, d, generator=gen), torch.randn(d, generator=gen)
    if p.get("dup"):  # a share of identical rows, as the embeddings of nodes without history are
        c[torch.randperm(N, generator=gen)[:int(p["dup"] * N)]] = c[0].clone()
    per = p.get("pairs", 0)  # distinct offset ids per row, sorted
    ids = torch.stack([torch.randperm(N, generator=gen)[:per].sort().values for _ in range(B)]).flatten()
    off = (torch.arange(B + 1, dtype=torch.int64) * per, ids, torch.randn(B * per, d, generator=gen))
    ex = (torch.arange(B + 1, dtype=torch.int64), torch.randint(0, N, (B,), generator=gen))  # the true destination
    to = lambda xs: tuple(x.to(device) for x in xs)  # noqa: E731
    return q.to(device), c.to(device), w.to(device), to(ex), to(off) if per else None


def hardneg_provider(backend):
    def make(p, device):
        q, c, w, ex, off = make_inputs(p, device)
        return lambda: hardneg.ops.mlp_topk_mine(q, c, w, p["K"], exclude=ex, offsets=off, backend=backend)

    return make


def distinct_provider(p, device):
    """The CPU kernel on the table's distinct rows (``candidate_index``), the rows found outside the timing."""
    from hardneg.samplers.base import distinct_rows

    q, c, w, ex, off = make_inputs(p, device)
    rows, index = distinct_rows(c)
    return lambda: hardneg.ops.mlp_topk_mine(q, rows, w, p["K"], exclude=ex, offsets=off, candidate_index=index,
                                             backend="cpu")


def distinct_skip(p, device):
    return None if p.get("dup") else "no repeated rows in this configuration"


def torch_baseline(p, device):
    q, c, w, ex, off = make_inputs(p, device)
    B, N = q.shape[0], c.shape[0]
    erow = torch.repeat_interleave(torch.arange(B, device=device), ex[0].diff())
    orow = None if off is None else torch.repeat_interleave(torch.arange(B, device=device), off[0].diff())

    @torch.inference_mode()
    def f():
        s = q.new_empty(B, N)
        for lo in range(0, B, 4):
            s[lo:lo + 4] = torch.relu(q[lo:lo + 4, None, :] + c[None]) @ w
        if off is not None:
            s[orow, off[1]] = torch.relu(q[orow] + c[off[1]] + off[2]) @ w
        s[erow, ex[1]] = float("-inf")
        return torch.topk(s, p["K"], dim=1)

    return f


PROVIDERS = [
    Provider("hardneg cpu", hardneg_provider("cpu"), devices=("cpu",)),
    Provider("hardneg cpu, candidate_index", distinct_provider, devices=("cpu",), skip=distinct_skip),
    Provider("hardneg triton", hardneg_provider("triton"), devices=("cuda",)),
    Provider("torch 4-row hidden tiles+topk", torch_baseline, devices=("cpu", "cuda"), baseline=True),
]


def configs(quick):
    sizes = [("ENS UCI", 50, 1899, 100, 20, 20, 0.0), ("ENS UCI, 45% identical rows", 50, 1899, 100, 20, 20, 0.45),
             ("ENS Wikipedia", 20, 1000, 100, 20, 20, 0.0)]
    if not quick:
        sizes += [("batch", 200, 1899, 100, 20, 20, 0.0), ("large table", 64, 100_000, 100, 32, 0, 0.0)]
    out = []
    for name, B, N, d, K, pairs, dup in sizes:
        for device in ("cpu", "cuda"):
            out.append(Config(f"{name}: B={B} N={N} d={d} K={K} pairs={pairs}",
                              dict(B=B, N=N, d=d, K=K, pairs=pairs, dup=dup), flops=3.0 * B * N * d, device=device))
    return out


if __name__ == "__main__":
    main("mlp_topk_mine", configs, PROVIDERS)
