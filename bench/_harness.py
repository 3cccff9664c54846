"""Shared benchmark harness: warm-up, median and spread, peak extra memory, a table with the fastest marked and
a ratio column against the baseline, CSV rows tagged with machine/dtype/commit, and an optional PNG.

A bench script declares configurations and providers and calls :func:`main`. Peak memory: on CUDA,
``torch.cuda.max_memory_allocated`` above the pre-call level; on CPU, the peak resident set size sampled every
millisecond by a watcher thread during one extra call after the timed ones, above the level just before it (RSS
includes the allocator's caches, so it is an upper bound on what the call itself needed; the timed calls run
without the watcher, whose thread takes the GIL every millisecond).

``--interleave``: the providers of a configuration take turns call by call, the order rotating each round, and
the "vs base" column is a paired ratio (the median over rounds of the baseline's time over the provider's in
the same round). On a shared virtual machine whose speed drifts between seconds this is the ratio to quote.
"""
from __future__ import annotations

import argparse
import csv
import datetime as _dt
import os
import platform
import statistics
import subprocess
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

import torch

RESULTS_DIR = os.path.join(os.path.dirname(__file__), "results")


@dataclass
class Config:
    name: str
    params: dict
    flops: float | None = None  # useful floating-point operations per call, for GFLOP/s
    device: str = "cpu"
    dtype: str = "float32"
    floor_s: float | None = None  # a hardware floor for this work (optional), shown as a ratio


@dataclass
class Provider:
    name: str
    # make(params, device) -> zero-argument callable doing one call (inputs prepared outside the timing)
    make: Callable[[dict, str], Callable[[], object]]
    devices: tuple = ("cpu",)
    baseline: bool = False
    skip: Callable[[dict, str], str | None] = field(default=lambda p, d: None)
    # the provider this one's "vs base" ratio is taken against when it is timed too (same work: e.g. a fused
    # entry against the baseline plus the extra step it fuses); default: the configuration's baseline
    versus: str | None = None


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class _PeakRSS:
    def __init__(self):
        self.peak = 0
        self._stop = threading.Event()

    def __enter__(self):
        self.base = _rss()
        self.peak = self.base
        self._t = threading.Thread(target=self._watch, daemon=True)
        self._t.start()
        return self

    def _watch(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, _rss())
            time.sleep(0.001)

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join()
        self.peak = max(self.peak, _rss())

    @property
    def extra(self) -> int:
        return max(0, self.peak - self.base)


def _sync(device):
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def time_call(fn, device: str, warmup: int, repeats: int, min_time: float = 0.0):
    """``(median, IQR, peak, n)`` of ``fn`` called ``repeats`` times (and until ``min_time`` seconds, at most
    1,000 calls). The timed calls run without the CPU's RSS watcher: its thread wakes every millisecond and takes
    the GIL, which slowed loops of short calls by more than the work they measure; the peak comes from one more
    call, watched."""
    for _ in range(warmup):
        fn()
    _sync(device)
    times = []
    t_start = time.perf_counter()
    while len(times) < repeats or (time.perf_counter() - t_start < min_time and len(times) < 1000):
        times.append(_one_call(fn, device))
    peak = _peak(fn, device)
    times.sort()
    q1, q3 = times[len(times) // 4], times[(3 * len(times)) // 4]
    return statistics.median(times), (q3 - q1), peak, len(times)


def append_csv(path: str, fields: list[str], rows: list[dict], **common) -> None:
    """Append ``rows`` (each with ``common``) to the CSV at ``path``, writing the header when the file is new."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    new = not os.path.exists(path)
    with open(path, "a", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
        if new:
            w.writeheader()
        w.writerows(dict(r, **common) for r in rows)


def stamp() -> dict:
    """The date, commit and CPU of a training-bench row."""
    return dict(date=_dt.datetime.now().isoformat(timespec="seconds"), commit=git_commit(), machine=machine("cpu"))


def train_step(T, batch) -> None:
    """One training step of a :class:`hardneg.training.Trainer` as its engine takes it (under the engine's
    deterministic switch), without the engine's clock: for benches that interleave trainers step by step."""
    from hardneg.training.engine import deterministic

    with deterministic(T.cfg.deterministic, T.device):
        loss = T.task.step(batch, T.gen)
        T.opt.zero_grad(set_to_none=True)
        loss.backward()
        T.opt.step()
        T.task.after_step(batch)


def git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              cwd=os.path.dirname(__file__), check=True).stdout.strip()
    except Exception:
        return "unknown"


def machine(device: str) -> str:
    if device.startswith("cuda") and torch.cuda.is_available():
        return torch.cuda.get_device_name()
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{cpu} x{os.cpu_count()} (torch threads {torch.get_num_threads()})"


def _one_call(fn, device: str) -> float:
    """Seconds of one call of ``fn`` (CUDA: between two events)."""
    if device.startswith("cuda"):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        return start.elapsed_time(end) / 1e3
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def _peak(fn, device: str) -> int:
    """Extra peak memory of one call of ``fn`` (as :func:`time_call` measures it)."""
    _sync(device)
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        fn()
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated() - base
    with _PeakRSS() as m:
        fn()
    return m.extra


def time_interleaved(fns, device: str, warmup: int, repeats: int):
    """Rounds of one call of each of ``fns`` in turn, the order rotating every round, so that a machine whose
    speed drifts between seconds (a shared virtual machine) slows every provider alike. Returns, per function,
    ``(median, IQR, peak, n, times)`` with the per-round times kept for paired ratios."""
    for fn in fns:
        for _ in range(warmup):
            fn()
    _sync(device)
    times = [[] for _ in fns]
    for r in range(repeats):
        for j in range(len(fns)):
            i = (j + r) % len(fns)
            times[i].append(_one_call(fns[i], device))
    out = []
    for fn, ts in zip(fns, times):
        srt = sorted(ts)
        out.append((statistics.median(srt), srt[(3 * len(srt)) // 4] - srt[len(srt) // 4], _peak(fn, device),
                    len(srt), ts))
    return out


def run(op: str, configs, providers, *, warmup=1, repeats=3, min_time=0.0, csv_path=None, plot=None,
        only=None, device_filter=None, interleave=False):
    """Times every provider of every configuration and prints one table per configuration. ``interleave``:
    the providers of a configuration take turns call by call (:func:`time_interleaved`), and "vs base" is the
    median over rounds of the baseline's time over the provider's time in the same round (a paired ratio)."""
    rows = []
    for cfg in configs:
        if device_filter and not cfg.device.startswith(device_filter):
            continue
        if cfg.device.startswith("cuda") and not torch.cuda.is_available():
            print(f"\n## {op} {cfg.name}: skipped (no CUDA device)")
            continue
        print(f"\n## {op} {cfg.name}  [{cfg.device}, {cfg.dtype}]  {machine(cfg.device)}")
        res, made = [], []
        for prov in providers:
            if cfg.device.split(":")[0] not in prov.devices or (only and prov.name not in only):
                continue
            why = prov.skip(cfg.params, cfg.device)
            if why:
                print(f"   {prov.name}: skipped ({why})")
                continue
            fn = prov.make(cfg.params, cfg.device)
            if interleave:
                made.append((prov, fn))
                continue
            med, iqr, peak, n = time_call(fn, cfg.device, warmup, repeats, min_time)
            del fn
            res.append((prov, med, iqr, peak, n))
        paired = {}
        if made:
            timed = time_interleaved([fn for _, fn in made], cfg.device, warmup, repeats)
            res = [(prov, med, iqr, peak, n) for (prov, _), (med, iqr, peak, n, _) in zip(made, timed)]
            per_round = {prov.name: t[4] for (prov, _), t in zip(made, timed)}
            b = next((per_round[prov.name] for prov, _ in made if prov.baseline), None)
            if b is not None:
                paired = {prov.name: statistics.median(x / y for x, y in zip(per_round.get(prov.versus, b), ts))
                          for prov, ts in ((p, per_round[p.name]) for p, _ in made)}
            del made, timed
        if not res:
            continue
        base = next((r for r in res if r[0].baseline), None)
        medians = {r[0].name: r[1] for r in res}
        against = {r[0].name: r[0].versus for r in res if r[0].versus in medians}
        fastest = min(r[1] for r in res)
        hdr = f"   {'provider':<28}{'median':>12}{'IQR':>10}{'GFLOP/s':>10}{'peak MiB':>10}{'vs base':>9}"
        if cfg.floor_s:
            hdr += f"{'/floor':>8}"
        print(hdr)
        for prov, med, iqr, peak, n in res:
            gf = f"{cfg.flops / med / 1e9:.1f}" if cfg.flops else "-"
            speedup = paired.get(prov.name, medians.get(prov.versus, base[1]) / med) if base else None
            ratio = f"{speedup:.2f}x" if base else "-"
            mark = "*" if med == fastest else " "
            line = (f" {mark} {prov.name:<28}{med * 1e3:>10.2f}ms{iqr * 1e3:>8.2f}ms{gf:>10}{peak / 2**20:>10.1f}"
                    f"{ratio:>9}")
            if cfg.floor_s:
                line += f"{med / cfg.floor_s:>7.2f}x"
            print(line)
            rows.append(dict(op=op, config=cfg.name, provider=prov.name, median_s=med, iqr_s=iqr, repeats=n,
                             gflops=(cfg.flops / med / 1e9) if cfg.flops else "", peak_extra_bytes=peak,
                             speedup_vs_baseline=speedup if base else "", device=cfg.device,
                             versus=against.get(prov.name, base[0].name if base else ""),
                             timing="interleaved, paired ratio" if paired else "sequential",
                             dtype=cfg.dtype, machine=machine(cfg.device), commit=git_commit(),
                             date=_dt.datetime.now().isoformat(timespec="seconds"), **{f"p_{k}": v for k, v in cfg.params.items()}))
        if base:
            how = ("median over rounds of the baseline's time / the provider's in the same round" if paired
                   else f"{base[0].name} time / provider time")
            print(f"   (vs base = {how}; * = fastest)")
            for name, other in against.items():
                print(f"   ({name}: vs {other})")
    if csv_path and rows:
        append_csv(csv_path, sorted({k for r in rows for k in r}), rows)
        print(f"\nappended {len(rows)} rows to {csv_path}")
    if plot and rows:
        try:
            import matplotlib

            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError:
            print("matplotlib not installed: no plot")
        else:
            cfgs = list(dict.fromkeys(r["config"] for r in rows))
            provs = list(dict.fromkeys(r["provider"] for r in rows))
            fig, ax = plt.subplots(figsize=(1.8 * len(cfgs) + 3, 4))
            wdt = 0.8 / max(1, len(provs))
            for i, p in enumerate(provs):
                xs, ys = [], []
                for j, c in enumerate(cfgs):
                    r = [x for x in rows if x["config"] == c and x["provider"] == p]
                    if r:
                        xs.append(j + i * wdt)
                        ys.append(r[0]["median_s"] * 1e3)
                ax.bar(xs, ys, wdt, label=p)
            ax.set_xticks([j + 0.4 - wdt / 2 for j in range(len(cfgs))], cfgs, rotation=15, fontsize=8)
            ax.set_ylabel("median ms (log)")
            ax.set_yscale("log")
            ax.legend(fontsize=8)
            ax.set_title(op)
            fig.tight_layout()
            fig.savefig(plot, dpi=120)
            print(f"wrote {plot}")
    return rows


def main(op: str, configs, providers, argv=None):
    ap = argparse.ArgumentParser(description=f"benchmark {op}")
    ap.add_argument("--quick", action="store_true", help="small sizes only (smoke test)")
    ap.add_argument("--device", default=None, help="only configs on this device type (cpu / cuda)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--min-time", type=float, default=0.0, help="keep repeating until this many seconds")
    ap.add_argument("--only", default=None, help="comma-separated provider names")
    ap.add_argument("--interleave", action="store_true",
                    help="providers take turns call by call; 'vs base' becomes a paired per-round ratio")
    ap.add_argument("--csv", default=os.path.join(RESULTS_DIR, f"{op}.csv"))
    ap.add_argument("--plot", default=None, help="write a PNG here")
    args = ap.parse_args(argv)
    cfgs = configs(args.quick) if callable(configs) else configs
    return run(op, cfgs, providers, warmup=args.warmup, repeats=args.repeats, min_time=args.min_time,
               csv_path=args.csv, plot=args.plot, only=args.only.split(",") if args.only else None,
               device_filter=args.device, interleave=args.interleave)
