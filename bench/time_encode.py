"""time_encode (TGAT / TGN's cosine time encoding) against PyG's ``TimeEncoder`` (``Linear(1, τ)`` then ``cos``),
forward and backward, as a training step runs them.

Each call encodes M time gaps with τ = 100 TGAT frequencies (w = 10^-linspace(0, 9, τ), a learnt bias) and
backpropagates a fixed upstream gradient into the gaps' encoder parameters. Gaps are UCI-like: log-uniform from 1 s
to 10⁷ s, so that the phases w·Δt span 10⁻⁹..10⁷, where torch's float32 ``cos`` / ``sin`` take their slow path.
M = 6,000 is one UCI TGN step's (node, neighbour) pairs (600 nodes × 10 neighbours); 32,000 a TGAT step's.

    python bench/time_encode.py [--quick] [--repeats 5] [--interleave]
"""
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(__file__))
from _harness import Config, Provider, main  # noqa: E402


def _inputs(p, device):
    g = torch.Generator().manual_seed(0)
    dt = (10 ** (torch.rand(p["M"], generator=g) * 7)).to(device)
    grad = torch.randn(p["M"], p["tau"], generator=g).to(device)
    return dt, grad


def _encoder(p, device):
    from hardneg.tasks.temporal.models import time_encoder

    enc = time_encoder(p["tau"]).to(device)
    with torch.no_grad():
        enc.lin.bias.copy_(torch.randn(p["tau"], generator=torch.Generator().manual_seed(1)))
    return enc


def pyg(p, device):
    """PyG's TimeEncoder forward (its own module code) and backward."""
    from torch_geometric.nn.models.tgn import TimeEncoder

    enc = _encoder(p, device)
    dt, grad = _inputs(p, device)

    def f():
        y = TimeEncoder.forward(enc, dt)
        y.backward(grad)

    return f


def ours(backend):
    def make(p, device):
        import hardneg

        enc = _encoder(p, device)
        dt, grad = _inputs(p, device)

        def f():
            y = hardneg.ops.time_encode(dt, enc.lin.weight, enc.lin.bias, backend=backend)
            y.backward(grad)

        return f

    return make


def _pyg_skip(p, device):
    try:
        import torch_geometric  # noqa: F401
    except ImportError:
        return "torch_geometric not installed"
    return None


PROVIDERS = [
    Provider("PyG TimeEncoder (Linear + cos)", pyg, devices=("cpu", "cuda"), baseline=True, skip=_pyg_skip),
    Provider("hardneg cpu", ours("cpu"), devices=("cpu",), skip=_pyg_skip),
    Provider("hardneg triton", ours("triton"), devices=("cuda",), skip=_pyg_skip),
]


def configs(quick):
    sizes = [1_000] if quick else [1_000, 6_000, 32_000]
    return [Config(f"M={M} tau=100, forward + backward", dict(M=M, tau=100), device=dev)
            for dev in ("cpu", "cuda") for M in sizes]


if __name__ == "__main__":
    main("time_encode", configs, PROVIDERS)
