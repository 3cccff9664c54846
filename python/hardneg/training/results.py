"""Results a person can read: the JSON file, a PNG of each run's curves, and a one-screen table.

``output`` is either a ``.json`` path (the PNG goes beside it, same stem) or a run folder (``results.json``
and ``curves.png`` inside it).
"""
from __future__ import annotations

import json
import math
import os


def output_paths(output: str) -> tuple[str, str]:
    if output.endswith(".json"):
        return output, output[: -len(".json")] + ".png"
    return os.path.join(output, "results.json"), os.path.join(output, "curves.png")


def check_output(output: str) -> None:
    """Raise a one-line ValueError now if ``output`` cannot be written (before anything trains)."""
    path, _ = output_paths(output)
    d = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise ValueError(f"output {output!r} is a directory, not a .json file")
    try:
        os.makedirs(d, exist_ok=True)
        probe = os.path.join(d, f".hardneg-write-test-{os.getpid()}")
        with open(probe, "w") as f:
            f.write("ok")
        os.remove(probe)
    except OSError as e:
        raise ValueError(f"output {output!r} is not writable ({e.strerror or e})") from None


def _jsonable(x):
    if isinstance(x, float) and not math.isfinite(x):
        return None if math.isnan(x) else ("inf" if x > 0 else "-inf")
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if hasattr(x, "item") and callable(x.item):  # 0-d tensors / numpy scalars
        return _jsonable(x.item())
    return x


def write_json(obj: dict, path: str) -> str:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(_jsonable(obj), f, indent=2)
    os.replace(tmp, path)
    return path


def write_results(result: dict, output: str, extra: dict | None = None) -> dict:
    """Write the results JSON and the curves PNG; returns ``{"json": path, "plot": path or None, **extra}``."""
    path, png = output_paths(output)
    files = {"json": path, "plot": plot_curves({result["config"]["sampler"]: result}, png, result["primary_metric"]),
             **(extra or {})}
    write_json(dict(result, files=files), path)
    return files


def get(result: dict, dotted: str):
    """``get(r, "test.mrr")`` -> r["test"]["mrr"] (None when absent)."""
    cur = result
    for part in dotted.split("."):
        if not isinstance(cur, dict) or part not in cur:
            return None
        cur = cur[part]
    return cur


def plot_curves(runs: dict, path: str, metric: str, metrics=None) -> str | None:
    """Training loss and validation metrics per epoch, one line per run (e.g. per sampler): a panel for
    ``metric`` and one for each further name in ``metrics`` (default: the runs' ``plot_metrics``, which the
    engine copies from the task's :attr:`~hardneg.training.Task.plot_metrics`). Returns the path, or None
    when matplotlib is missing (``pip install 'hardneg[plot]'``)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    first = next(iter(runs.values()))
    names = list(dict.fromkeys([metric, *(metrics if metrics is not None else first.get("plot_metrics") or ())]))
    fig, axes = plt.subplots(1, 1 + len(names), figsize=(5 * (1 + len(names)), 3.8))
    ax1, rest = axes[0], axes[1:]
    for name, res in runs.items():
        hist = res["history"]
        ax1.plot([h["epoch"] for h in hist], [h["loss"] for h in hist], label=name)
        for ax, m in zip(rest, names):
            pts = [(h["epoch"], _valid_value(h, m)) for h in hist if _valid_value(h, m) is not None]
            if pts:
                ax.plot(*zip(*pts), marker="o", ms=3, label=name)
    title = f"{first['config']['model']} on {first['dataset'].get('name', first['config']['dataset'])}"
    ax1.set(xlabel="epoch", ylabel="training loss", title=title)
    for ax, m in zip(rest, names):
        ax.set(xlabel="epoch", ylabel=f"validation {m}", title=f"validation {m}")
    for ax in axes:
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _valid_value(h: dict, m: str):
    """Validation metric ``m`` of one history record (None when that epoch was not validated)."""
    v = h.get("valid")
    return v[m] if isinstance(v, dict) and m in v else h.get(f"valid_{m}")


def _cell(values, fmt: str) -> str:
    vals = [v for v in values if v is not None]
    if not vals:
        return "-"
    if all(isinstance(v, float) and v != v for v in vals):  # not measured (e.g. mrr_negatives 0) in every run
        return "nan"
    if len(vals) == 1:
        return fmt.format(vals[0])
    sd = sample_sd(vals)
    return f"{fmt.format(_mean(vals))}±{fmt.format(sd).lstrip('0') or '0'}"


def format_table(rows: list[tuple[str, list[dict]]], columns: list[tuple[str, str, str]], *,
                 primary: str | None = None, baseline: str | None = None) -> str:
    """One line per row name; each row holds one result per seed (mean±std when several). With ``baseline``
    (a row name), a ``Δ <primary>`` column gives each row's difference in the mean test ``primary``."""
    heads = ["sampler"] + [h for h, _, _ in columns]
    body = []
    base = None
    if baseline is not None and primary is not None:
        for name, res in rows:
            if name == baseline:
                base = _mean([get(r, f"test.{primary}") for r in res])
    for name, res in rows:
        cells = [name] + [_cell([get(r, path) for r in res], fmt) for _, path, fmt in columns]
        if base is not None:
            m = _mean([get(r, f"test.{primary}") for r in res])
            cells.append("-" if name == baseline or m is None else f"{m - base:+.4f}")
        body.append(cells)
    if base is not None:
        heads.append(f"Δ{primary}")
    widths = [max(len(str(row[i])) for row in [heads] + body) for i in range(len(heads))]
    line = lambda cells: "  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w) for i, (c, w) in
                                   enumerate(zip(cells, widths)))
    return "\n".join([line(heads)] + [line(c) for c in body])


def _mean(values):
    vals = [v for v in values if v is not None]
    return sum(vals) / len(vals) if vals else None


def sample_sd(values) -> float | None:
    """The sample standard deviation (n − 1) of the values that are not None; None with fewer than two."""
    vals = [v for v in values if v is not None]
    if len(vals) < 2:
        return None
    m = sum(vals) / len(vals)
    return math.sqrt(sum((v - m) ** 2 for v in vals) / (len(vals) - 1))


def paired(a: list[dict], b: list[dict], metric: str, *, higher_is_better: bool = True) -> dict | None:
    """Runs ``a`` against runs ``b`` paired by seed (``config.seed``: the same initialisation and, where the task
    seeds its split, the same split), on the test ``metric``. None with fewer than two common seeds.

    Returns ``{"n", "mean", "sd", "t", "ahead", "behind", "ties", "sign_p", "seeds"}``: the mean and standard
    deviation of the per-seed differences ``a − b``, the paired t statistic (``None`` when every difference is 0,
    ``±inf`` when they are all equal and not 0), how many seeds ``a`` is better / worse / level on (better follows
    ``higher_is_better``), and the exact two-sided sign-test p-value over the seeds that are not level.
    """
    def by_seed(runs):
        return {get(r, "config.seed"): get(r, f"test.{metric}") for r in runs}

    va, vb = by_seed(a), by_seed(b)
    seeds = sorted(s for s in va if s in vb and va[s] is not None and vb[s] is not None)
    if len(seeds) < 2:
        return None
    d = [va[s] - vb[s] for s in seeds]
    n = len(d)
    m, sd = sum(d) / n, sample_sd(d)
    t = m / (sd / math.sqrt(n)) if sd > 0 else (None if m == 0 else math.copysign(math.inf, m))
    sign = 1.0 if higher_is_better else -1.0
    ahead, behind = sum(sign * x > 0 for x in d), sum(sign * x < 0 for x in d)
    k, nt = min(ahead, behind), ahead + behind
    p = min(1.0, 2 * sum(math.comb(nt, i) for i in range(k + 1)) / 2 ** nt) if nt else 1.0
    return {"n": n, "mean": m, "sd": sd, "t": t, "ahead": ahead, "behind": behind, "ties": n - ahead - behind,
            "sign_p": p, "seeds": seeds}


def paired_line(name: str, against: str, p: dict) -> str:
    """``"dns − uniform +0.0258 (t +5.34; better on 10 of 10 seeds, sign test p 0.002)"``."""
    t = "t -" if p["t"] is None else f"t {p['t']:+.2f}"
    ties = f", {p['ties']} level" if p["ties"] else ""
    return (f"{name} − {against} {p['mean']:+.4f} ({t}; better on {p['ahead']} of {p['n']} seeds{ties}, "
            f"sign test p {p['sign_p']:.3g})")
