"""Strong scaling of sharded ``topk_mine`` (:mod:`hardneg.distributed`) over W processes of one thread each.

The [N, d] table is split by rows across W spawned processes (gloo); each mines its shard for all B
replicated queries and the per-rank [B, K] results are all-gathered and merged. Reported per W: the median
wall time of the whole sharded call, its two parts (the local mining, and the all-gather + merge), the bytes
each rank receives, the throughput against W = 1 (the plain single-process op on the whole table, one
thread: the baseline), and whether the ids equal the baseline's bit for bit.

    python bench/distributed.py                          # B=1024 N=1M d=64 K=32, W = 1 and 2
    python bench/distributed.py --N 200000 --worlds 1,2  # smaller

The printed projection (``--project``) to G GPUs per node × M nodes uses the model
t(W) = 2·B·N·d / (W·F) + α·⌈log₂ W⌉ + 12·B·K·(W − 1) / β
with F the per-device mining throughput, α the per-hop latency and β the link bandwidth; F, α, β measured
here (CPU, gloo over loopback) and quoted for GPUs (bench/RESULTS.md).
"""
from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import statistics
import sys
import tempfile
import time

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

sys.path.insert(0, os.path.dirname(__file__))
from _harness import git_commit, machine  # noqa: E402

CHUNK = 1 << 16


def table_rows(lo: int, hi: int, d: int, seed: int) -> torch.Tensor:
    """Rows [lo, hi) of a fixed random [N, d] table, generated in chunks so every split sees the same rows."""
    out = []
    for c in range(lo // CHUNK, (hi + CHUNK - 1) // CHUNK):
        g = torch.Generator().manual_seed(seed * 1_000_003 + c)
        rows = torch.randn(CHUNK, d, generator=g)
        a, b = max(lo, c * CHUNK) - c * CHUNK, min(hi, (c + 1) * CHUNK) - c * CHUNK
        out.append(rows[a:b])
    return torch.cat(out) if out else torch.empty(0, d)


def _worker(rank, world, a, init, out_dir):
    os.environ["HARDNEG_NUM_THREADS"] = "1"
    torch.set_num_threads(1)
    import hardneg
    from hardneg.distributed import ShardedCandidates, communication_bytes

    q = torch.randn(a.B, a.d, generator=torch.Generator().manual_seed(1))
    lo, hi = a.N * rank // world, a.N * (rank + 1) // world
    local = table_rows(lo, hi, a.d, seed=2)
    if world == 1:  # the baseline: the plain op on the whole table, no process group
        fn = lambda: hardneg.ops.topk_mine(q, local, a.k)  # noqa: E731
        fn()
        times = []
        for _ in range(a.repeats):
            t = time.perf_counter()
            s, i = fn()
            times.append(time.perf_counter() - t)
        torch.save(i, os.path.join(out_dir, "baseline_ids.pt"))
        rec = {"world": 1, "total_s": statistics.median(times), "mine_s": statistics.median(times),
               "comm_s": 0.0, "bytes": 0, "exact": True, "times": times}
        with open(os.path.join(out_dir, "w1.json"), "w") as f:
            json.dump(rec, f)
        return
    dist.init_process_group("gloo", init_method=f"file://{init}", rank=rank, world_size=world)
    try:
        sharded = ShardedCandidates.from_local(local)
        hardneg.ops.topk_mine(q, sharded, a.k)  # warm-up
        total, mine, comm = [], [], []
        for _ in range(a.repeats):
            dist.barrier()
            t0 = time.perf_counter()
            s, i = hardneg.ops.topk_mine(q, sharded, a.k)
            t1 = time.perf_counter()
            total.append(t1 - t0)
            t2 = time.perf_counter()
            hardneg.ops.topk_mine(q, local, a.k)  # the local part alone
            t3 = time.perf_counter()
            mine.append(t3 - t2)
            dist.barrier()  # the all-gather and merge alone, on the result's own sizes
            t4 = time.perf_counter()
            parts = [torch.empty_like(i) for _ in range(world)]
            dist.all_gather(parts, i)
            sparts = [torch.empty_like(s) for _ in range(world)]
            dist.all_gather(sparts, s)
            torch.sort(torch.cat(sparts, 1), dim=1, descending=True, stable=True)
            comm.append(time.perf_counter() - t4)
        # the slowest rank sets the pace
        stats = torch.tensor([statistics.median(total), statistics.median(mine), statistics.median(comm)],
                             dtype=torch.float64)
        dist.all_reduce(stats, op=dist.ReduceOp.MAX)
        if rank == 0:
            base = os.path.join(out_dir, "baseline_ids.pt")
            exact = bool(torch.equal(torch.load(base), i)) if os.path.exists(base) else None
            rec = {"world": world, "total_s": stats[0].item(), "mine_s": stats[1].item(), "comm_s": stats[2].item(),
                   "bytes": communication_bytes("topk_mine", a.B, a.k, world), "exact": exact, "times": total}
            with open(os.path.join(out_dir, f"w{world}.json"), "w") as f:
                json.dump(rec, f)
    finally:
        dist.destroy_process_group()


def projection(rows: dict, a) -> str:
    """The formula with the measured constants, for G devices per node × M nodes."""
    flop = 2.0 * a.B * a.N * a.d
    base = rows[1]
    F_cpu = flop / base["mine_s"]
    lines = [f"measured here: F = {F_cpu / 1e9:.1f} GFLOP/s per process (1 thread, AVX2),"]
    if 2 in rows:
        r = rows[2]
        beta = r["bytes"] / 2 / max(r["comm_s"], 1e-9)  # one peer's payload over the all-gather time
        lines.append(f"  all-gather + merge at W=2: {r['comm_s'] * 1e3:.2f} ms for {r['bytes'] / 1e3:.0f} kB "
                     f"received ({beta / 1e6:.0f} MB/s effective, latency-bound at this size)")
    F_gpu, beta_ib, beta_nvl, alpha = 74e12, 25e9, 450e9, 10e-6
    lines += [
        "model: t(W) = 2·B·N·d / (W·F) + α·⌈log₂ W⌉ + 12·B·K·(W − 1) / β,  W = G·M",
        f"GPU constants: F = 74 TFLOP/s (H100 bf16 Triton topk_mine, bench/RESULTS.md issue 2), α = 10 µs per hop, "
        f"β = 450 GB/s (NVLink, within a node) / 25 GB/s (IB 200 Gb/s, across nodes)",
        f"{'N':>8} {'G×M':>6} {'compute ms':>11} {'comm ms':>8} {'bytes/rank':>11} {'comm share':>10}",
    ]
    for N in (10**6, 10**7, 10**8):
        for M in (1, 2, 8, 32):
            W = 8 * M
            comp = 2.0 * a.B * N * a.d / (W * F_gpu)
            beta = beta_nvl if M == 1 else beta_ib
            by = 12 * a.B * a.k * W
            comm = alpha * math.ceil(math.log2(W)) + 12 * a.B * a.k * (W - 1) / beta
            lines.append(f"{N:>8.0e} {f'8×{M}':>6} {comp * 1e3:>11.3f} {comm * 1e3:>8.3f} {by / 1e6:>9.2f}MB "
                         f"{comm / (comp + comm):>10.0%}")
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--B", type=int, default=1024)
    p.add_argument("--N", type=int, default=1_000_000)
    p.add_argument("--d", type=int, default=64)
    p.add_argument("--k", type=int, default=32)
    p.add_argument("--worlds", default="1,2")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--project", action="store_true", help="print the projection to 8 GPUs × M nodes")
    a = p.parse_args(argv)
    worlds = [int(w) for w in a.worlds.split(",")]
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        for W in worlds:
            init = os.path.join(tmp, f"init{W}")
            mp.spawn(_worker, args=(W, a, init, tmp), nprocs=W, join=True)
            with open(os.path.join(tmp, f"w{W}.json")) as f:
                rows[W] = json.load(f)
    flop = 2.0 * a.B * a.N * a.d
    print(f"sharded topk_mine, B={a.B} N={a.N} d={a.d} K={a.k} fp32, W processes × 1 thread, gloo; "
          f"{machine('cpu')}, {datetime.date.today()}, commit {git_commit()}")
    print(f"{'W':>3} {'total s':>9} {'mine s':>8} {'comm s':>9} {'recv bytes':>11} {'GFLOP/s':>8} "
          f"{'speed-up':>8} {'exact':>6}")
    t1 = rows[worlds[0]]["total_s"] if worlds[0] == 1 else None
    for W, r in rows.items():
        sp = f"{t1 / r['total_s']:.2f}×" if t1 else "—"
        print(f"{W:>3} {r['total_s']:>9.3f} {r['mine_s']:>8.3f} {r['comm_s']:>9.5f} {r['bytes']:>11,} "
              f"{flop / r['total_s'] / 1e9:>8.1f} {sp:>8} {str(r['exact']):>6}")
    if a.project and 1 in rows:
        print(projection(rows, a))
    return rows


if __name__ == "__main__":
    main()
