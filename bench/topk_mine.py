"""Benchmark topk_mine against torch (q @ c.T, masked_fill, topk) and faiss.IndexFlatIP when installed.

    python bench/topk_mine.py             # full sizes (CPU: B=1024, N=1M, d=64, K=32, +/- 20 exclusions)
    python bench/topk_mine.py --quick     # small smoke sizes
    python bench/topk_mine.py --device cuda   # GPU configs (bf16 B=4096, N=1M, d=128, K=64)
    python bench/topk_mine.py --ab-ties   # random tie order: tie_break keys against mining a permuted table
"""
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(__file__))
from _harness import Config, Provider, main, machine, time_interleaved  # noqa: E402

import hardneg  # noqa: E402

# dense bf16 tensor-core rate measured on the H100 of this workplace (8192^3 torch matmul), see RESULTS.md
H100_BF16_FLOPS = 7.9e14


def make_inputs(p, device):
    gen = torch.Generator().manual_seed(0)
    dt = getattr(torch, p.get("dtype", "float32"))
    q = torch.randn(p["B"], p["d"], generator=gen).to(device=device, dtype=dt)
    c = torch.randn(p["N"], p["d"], generator=gen).to(device=device, dtype=dt)
    ex = None
    if p.get("excl", 0):
        e = p["excl"]
        indptr = torch.arange(p["B"] + 1, dtype=torch.int64) * e
        idx = torch.randint(0, p["N"], (p["B"] * e,), generator=gen)
        ex = (indptr.to(device), idx.to(device))
    return q, c, ex


def hardneg_provider(backend):
    def make(p, device):
        q, c, ex = make_inputs(p, device)
        return lambda: hardneg.ops.topk_mine(q, c, p["K"], metric="dot", exclude=ex, backend=backend)

    return make


def torch_baseline(p, device):
    q, c, ex = make_inputs(p, device)
    mask_rows = mask_cols = None
    if ex is not None:
        mask_rows = torch.repeat_interleave(torch.arange(p["B"], device=device), ex[0][1:] - ex[0][:-1])
        mask_cols = ex[1]

    def f():
        s = q @ c.T
        if mask_rows is not None:
            s[mask_rows, mask_cols] = float("-inf")
        return torch.topk(s, p["K"], dim=1)

    return f


def faiss_provider(p, device):
    import faiss

    q, c, ex = make_inputs(p, device)
    index = faiss.IndexFlatIP(p["d"])
    index.add(c.float().numpy())
    extra = p.get("excl", 0)
    qn = q.float().numpy()
    return lambda: index.search(qn, p["K"] + extra)  # excluded ids would be filtered afterwards


def faiss_skip(p, device):
    try:
        import faiss  # noqa: F401
    except ImportError:
        return "faiss not installed"
    return None


PROVIDERS = [
    Provider("hardneg cpu", hardneg_provider("cpu"), devices=("cpu",)),
    Provider("hardneg triton", hardneg_provider("triton"), devices=("cuda",)),
    Provider("torch matmul+topk", torch_baseline, devices=("cpu", "cuda"), baseline=True),
    Provider("faiss IndexFlatIP (k+excl)", faiss_provider, devices=("cpu",), skip=faiss_skip),
]


def configs(quick):
    out = []
    sizes = [(256, 100_000, 64, 32)] if quick else [(1024, 1_000_000, 64, 32)]
    for B, N, d, K in sizes:
        for excl in (0, 20):
            out.append(Config(f"B={B} N={N} d={d} K={K} excl={excl}", dict(B=B, N=N, d=d, K=K, excl=excl),
                              flops=2.0 * B * N * d))
    gB, gN, gd, gK = (1024, 200_000, 128, 64) if quick else (4096, 1_000_000, 128, 64)
    for dt in ("bfloat16", "float32"):
        for excl in (0, 20):
            fl = 2.0 * gB * gN * gd
            out.append(Config(f"B={gB} N={gN} d={gd} K={gK} excl={excl} {dt}",
                              dict(B=gB, N=gN, d=gd, K=gK, excl=excl, dtype=dt), flops=fl, device="cuda", dtype=dt,
                              floor_s=fl / H100_BF16_FLOPS if dt == "bfloat16" else None))
    return out


def ab_exclusions(repeats=5, B=1024, N=1_000_000, d=64, K=32, excl=20):
    """Interleaved A/B of the CPU kernel with and without exclusions: this machine drifts by ±15% over a run,
    so back-to-back configs cannot resolve a 10% difference; alternating calls can."""
    import statistics
    import time

    q, c, _ = make_inputs(dict(B=B, N=N, d=d), "cpu")
    _, _, ex = make_inputs(dict(B=B, N=N, d=d, excl=excl), "cpu")
    hardneg.ops.topk_mine(q[:8], c[:1000], K)
    t = {"plain": [], "excl": []}
    for _ in range(repeats):
        for name, e in (("plain", None), ("excl", ex)):
            t0 = time.perf_counter()
            hardneg.ops.topk_mine(q, c, K, exclude=e, backend="cpu")
            t[name].append(time.perf_counter() - t0)
    mp, me = statistics.median(t["plain"]), statistics.median(t["excl"])
    print(f"interleaved A/B, B={B} N={N} d={d} K={K}: plain {mp:.3f} s, {excl} exclusions/query {me:.3f} s "
          f"-> exclusions cost {100 * (me / mp - 1):+.1f}%  (runs: {[round(x, 3) for x in t['plain']]} / "
          f"{[round(x, 3) for x in t['excl']]})")


def ab_ties(device="cpu"):
    """Random tie order, two ways, interleaved: ``tie_break=randperm(N)`` (keys compared in the kernel) against
    what ENS did before it existed, mining the table gathered in a random row order and mapping the ids back
    (exclusions mapped too). With keys = the inverse of the gather order they return the same ids (checked
    once); each timed call takes a fresh permutation, as ENS does. Shapes: ENS's UCI call (~30 distinct queries
    against 1,899 destinations, d = 100, K = 20, the event's destination excluded), Wikipedia-sized, and a
    larger table; half of each table is one tie (the identical embeddings of nodes without history), at random
    rows, at the front ("contiguous", the kernel's worst case: its threshold sits on the tie for half the scan),
    or none."""
    from hardneg._backend import num_threads

    print(f"# {machine(device)}; torch threads {num_threads()}; median of the interleaved rounds; ratio = the "
          f"median of the paired per-round ratios")
    for B, N, d, K, tied, repeats in ((30, 1_899, 100, 20, "scattered", 401), (200, 9_227, 100, 20, "scattered", 101),
                                      (1024, 100_000, 64, 32, "scattered", 21), (1024, 100_000, 64, 32, "none", 21),
                                      (1024, 100_000, 64, 32, "contiguous", 21)):
        gen = torch.Generator().manual_seed(0)
        q, c = torch.randn(B, d, generator=gen), torch.randn(N, d, generator=gen)
        rows = {"scattered": torch.randperm(N, generator=gen)[: N // 2], "contiguous": torch.arange(N // 2),
                "none": None}[tied]
        if rows is not None:
            c[rows] = c[rows[0]].clone()
        ex = (torch.arange(B + 1), torch.randint(0, N, (B,), generator=gen))
        perms = iter([torch.randperm(N, generator=gen) for _ in range(2 * repeats + 8)])

        def keys():
            return hardneg.ops.topk_mine(q, c, K, exclude=ex, tie_break=next(perms))

        def gather():
            order = next(perms)
            rank = torch.empty_like(order)
            rank[order] = torch.arange(N)
            _, pool = hardneg.ops.topk_mine(q, c[order], K, exclude=(ex[0], rank[ex[1]]))
            return torch.where(pool >= 0, order[pool.clamp_min(0)], pool)

        order = torch.randperm(N, generator=gen)  # the gathered table's row order: its inverse is the key
        rank = torch.empty_like(order)
        rank[order] = torch.arange(N)
        a = hardneg.ops.topk_mine(q, c, K, exclude=ex, tie_break=rank)[1]
        perms_saved, perms = perms, iter([order])
        b = gather()
        perms = perms_saved
        assert torch.equal(a, b), "the two routes disagree"
        (mk, _, pk, _, tk), (mg, _, pg, _, tg) = time_interleaved([keys, gather], device, warmup=3, repeats=repeats)
        ratio = sorted(x / y for x, y in zip(tk, tg))[len(tk) // 2]
        print(f"B={B} N={N} d={d} K={K} ties {tied:10s}: tie_break {1e6 * mk:9.1f} us   permuted table "
              f"{1e6 * mg:9.1f} us   ratio {ratio:.3f}   peak {pk / 2**20:.1f} / {pg / 2**20:.1f} MiB")


if __name__ == "__main__":
    if "--ab-ties" in sys.argv:
        ab_ties()
    elif "--ab-exclusions" in sys.argv:
        ab_exclusions()
    else:
        main("topk_mine", configs, PROVIDERS)
