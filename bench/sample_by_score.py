"""Benchmark sample_by_score (without replacement) against torch: matmul + softmax + multinomial.

    python bench/sample_by_score.py            # B=1024, N=100k and 1M, d=64, n=64 (CPU)
    python bench/sample_by_score.py --quick
    python bench/sample_by_score.py --device cuda   # bf16 on the GPU
"""
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(__file__))
from _harness import Config, Provider, main  # noqa: E402

import hardneg  # noqa: E402


def make_inputs(p, device):
    gen = torch.Generator().manual_seed(0)
    dt = getattr(torch, p.get("dtype", "float32"))
    q = (torch.randn(p["B"], p["d"], generator=gen) * 0.2).to(device=device, dtype=dt)
    c = (torch.randn(p["N"], p["d"], generator=gen) * 0.2).to(device=device, dtype=dt)
    return q, c


def hardneg_provider(backend):
    def make(p, device):
        q, c = make_inputs(p, device)
        g = torch.Generator(device="cpu").manual_seed(0)
        return lambda: hardneg.ops.sample_by_score(q, c, p["n"], weighting=p["w"], replacement=p["repl"],
                                                   generator=g, backend=backend)

    return make


def torch_baseline(p, device):
    q, c = make_inputs(p, device)
    g = torch.Generator(device=device).manual_seed(0)

    def f():
        s = (q @ c.T).float()
        prob = torch.softmax(s, dim=1) if p["w"] == "softmax" else torch.nn.functional.softplus(s)
        ids = torch.multinomial(prob, p["n"], replacement=p["repl"], generator=g)
        return ids, torch.log(torch.gather(prob, 1, ids) / prob.sum(1, keepdim=True))

    return f


PROVIDERS = [
    Provider("hardneg cpu", hardneg_provider("cpu"), devices=("cpu",)),
    Provider("hardneg triton", hardneg_provider("triton"), devices=("cuda",)),
    Provider("torch softmax+multinomial", torch_baseline, devices=("cpu", "cuda"), baseline=True),
]


def configs(quick):
    out = []
    Ns = [20_000] if quick else [100_000, 1_000_000]
    B = 256 if quick else 1024
    for N in Ns:
        for w in ("softmax", "softplus"):
            out.append(Config(f"B={B} N={N} d=64 n=64 {w} no-repl", dict(B=B, N=N, d=64, n=64, w=w, repl=False),
                              flops=2.0 * B * N * 64))
        out.append(Config(f"B={B} N={N} d=64 n=64 softmax repl", dict(B=B, N=N, d=64, n=64, w="softmax", repl=True),
                          flops=2.0 * B * N * 64))
    gB = 1024 if quick else 4096
    for N in ([100_000] if quick else [100_000, 1_000_000]):
        for repl in (False, True):
            out.append(Config(f"B={gB} N={N} d=128 n=64 softmax repl={repl} bf16",
                              dict(B=gB, N=N, d=128, n=64, w="softmax", repl=repl, dtype="bfloat16"),
                              flops=2.0 * gB * N * 128, device="cuda", dtype="bfloat16"))
    return out


if __name__ == "__main__":
    main("sample_by_score", configs, PROVIDERS)
