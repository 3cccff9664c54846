"""``compare``: one model, several samplers (and seeds), one table, one plot, each sampler's gap to uniform;
``grid``: the same over the cells of a hyperparameter grid, against a baseline run."""
from __future__ import annotations

import copy
import itertools
import os

from .config import TrainConfig
from .engine import Trainer
from .results import _mean, format_table, get, paired, paired_line, plot_curves, sample_sd, write_json
from .task import get_task


def _run_means(runs: dict, key: str) -> dict:
    """``{run name: mean test key over its seeds}``, without the runs that have no value."""
    means = {n: _mean([get(r, f"test.{key}") for r in rs]) for n, rs in runs.items()}
    return {n: m for n, m in means.items() if m is not None}


def compare(base: dict, samplers: list[str], *, seeds=(0,), output: str | None = None, progress=None,
            log=print, data=None) -> dict:
    """Train ``base`` once per sampler and seed, sharing the loaded data.

    ``base["sampler_options"]`` stay with ``base["sampler"]`` (the recipe's own sampler); other samplers run
    with their defaults, or with ``base["per_sampler"][name]`` (a mapping of config overrides, e.g.
    ``{"nscaching": {"sampler_options": {"cache_size": 30}}}``).

    Returns ``{"runs": {sampler: [result per seed]}, "table": str, "summary": str, "paired": [...], "files":
    {...}}``; with ``output`` (a folder or ``.json`` path) it writes the JSON and one plot with a line per sampler.
    With two seeds or more, the summary also tests each sampler against uniform (or random) and the best sampler
    against each other one, paired by seed (:func:`paired_summary`); ``paired`` holds those tests.
    """
    log = log or (lambda *a, **k: None)
    base = dict(base)
    per_sampler = base.pop("per_sampler", {}) or {}
    own = base.get("sampler")
    runs: dict[str, list[dict]] = {}
    for name in samplers:
        for seed in seeds:
            d = dict(base, sampler=name, seed=seed)
            d["sampler_options"] = base.get("sampler_options", {}) if name == own else {}
            d.update(per_sampler.get(name, {}))
            cfg = TrainConfig.from_dict(d)
            tr = Trainer(cfg, data=data, progress=progress, log=log)
            data = tr.data
            log(f"[compare] {cfg.model} on {tr.task.describe().get('name', cfg.dataset)} with {name!r} negatives, "
                f"seed {seed}: {cfg.epochs} epochs ...")
            runs.setdefault(name, []).append(tr.run())
    first = next(iter(runs.values()))[0]
    task = get_task(first["task"])
    key = first["primary_metric"]
    baseline = "uniform" if "uniform" in runs else ("random" if "random" in runs else None)
    table = format_table(list(runs.items()), task.result_columns(first), primary=key, baseline=baseline)
    summary = winner_line(runs, key, task.higher_is_better, baseline)
    pairs, lines = paired_summary(runs, key, task.higher_is_better, baseline)
    return _finish(runs, table, summary + lines, key, output, pairs)


def winner_line(runs: dict, key: str, higher_is_better: bool, baseline: str | None) -> str:
    """``"best: topk, test mrr 0.7180 (+0.0300 over uniform, seed spread ±0.0020)"``."""
    means = _run_means(runs, key)
    if not means:
        return "no results"
    best = (max if higher_is_better else min)(means, key=means.get)
    s = f"best: {best}, test {key} {means[best]:.4f}"
    if baseline and baseline in means and best != baseline:
        s += f" ({means[best] - means[baseline]:+.4f} over {baseline})"
    elif baseline == best and len(means) > 1:
        rest = {n: m for n, m in means.items() if n != best}
        second = (max if higher_is_better else min)(rest, key=rest.get)
        s += f" (hard negatives did not help: best other, {second}, {rest[second] - means[best]:+.4f})"
    vals = [v for v in (get(r, f"test.{key}") for r in runs[best]) if v is not None]
    if len(vals) > 1:
        s += f"; seed-to-seed std {sample_sd(vals):.4f} over {len(vals)} seeds"
    return s


def paired_summary(runs: dict, key: str, higher_is_better: bool, baseline: str | None) -> tuple[list[dict], str]:
    """Paired-by-seed tests of the test ``key`` (:func:`hardneg.training.results.paired`): every run against
    ``baseline``, and the best run against every other. Returns ``(records, text)``; the text is empty when no
    pair has two common seeds, else one line a pair under a heading (it starts with a newline)."""
    means = _run_means(runs, key)
    if not means:
        return [], ""
    best = (max if higher_is_better else min)(means, key=means.get)
    todo = [(n, baseline) for n in runs if baseline in runs and n != baseline]
    if best != baseline or baseline not in runs:  # else the baseline pairs already cover the best
        todo += [(best, n) for n in runs if n not in (best, baseline)]
    records, lines = [], []
    for a, b in todo:
        p = paired(runs[a], runs[b], key, higher_is_better=higher_is_better)
        if p is not None:
            records.append(dict(a=a, b=b, metric=key, **p))
            lines.append("  " + paired_line(a, b, p))
    if not lines:
        return records, ""
    return records, f"\npaired by seed, test {key} (paired t; exact sign test):\n" + "\n".join(lines)


def grid(base: dict, axes: dict, *, baseline: dict | None = None, seeds=(0,), output: str | None = None,
         progress=None, log=print, data=None) -> dict:
    """Train ``base`` once per cell of a hyperparameter grid and per seed, sharing the loaded data, plus an
    optional baseline run; one table with each cell's gap to the baseline, one plot.

    ``axes``: ``{field: [values], ...}``; a dotted field sets a key of a mapping option
    (``"sampler_options.k": [3, 5, 7]``). ``baseline``: config overrides for the reference run (e.g.
    ``{"sampler": "uniform", "sampler_options": {}}``), labelled ``"baseline"``.

    Returns ``{"runs": {label: [result per seed]}, "table": str, "summary": str, "paired": [...], "files":
    {...}}``; the summary names the best cell and every cell that does worse than the baseline, and with two
    seeds or more tests each cell against the baseline, paired by seed (:func:`paired_summary`).
    """
    log = log or (lambda *a, **k: None)
    if not isinstance(axes, dict) or not axes or not all(isinstance(v, list) and v for v in axes.values()):
        raise ValueError(f"grid: 'axes' must map each field to a non-empty list of values (got {axes!r})")
    cells: list[tuple[str, dict]] = []
    if baseline is not None:
        if not isinstance(baseline, dict):
            raise TypeError(f"grid: 'baseline' must be a mapping of config overrides (got {type(baseline).__name__})")
        cells.append(("baseline", _with(base, baseline)))
    for values in itertools.product(*axes.values()):
        over = dict(zip(axes, values))
        label = ", ".join(f"{k.split('.')[-1]}={v}" for k, v in over.items())
        cells.append((label, _with(base, over)))
    runs: dict[str, list[dict]] = {}
    for label, d in cells:
        for seed in seeds:
            cfg = TrainConfig.from_dict(dict(d, seed=seed))
            tr = Trainer(cfg, data=data, progress=progress, log=log)
            data = tr.data
            log(f"[grid] {label}, seed {seed}: {cfg.epochs} epochs ...")
            runs.setdefault(label, []).append(tr.run())
    first = next(iter(runs.values()))[0]
    task = get_task(first["task"])
    key = first["primary_metric"]
    ref = "baseline" if baseline is not None else None
    table = format_table(list(runs.items()), task.result_columns(first), primary=key, baseline=ref)
    summary = winner_line(runs, key, task.higher_is_better, ref)
    if ref is not None:
        sign = 1.0 if task.higher_is_better else -1.0
        means = _run_means(runs, key)
        worse = [n for n, m in means.items() if n != ref and ref in means and sign * m < sign * means[ref]]
        summary += f"; cells worse than the baseline: {', '.join(worse) if worse else 'none'}"
    pairs, lines = paired_summary(runs, key, task.higher_is_better, ref)
    return _finish(runs, table, summary + lines, key, output, pairs)


def _finish(runs: dict, table: str, summary: str, key: str, output: str | None, pairs: list[dict]) -> dict:
    """The result dict; with ``output`` (a folder or ``.json`` path) also the JSON and one plot, a line per run."""
    out = {"runs": runs, "table": table, "summary": summary, "paired": pairs, "files": {}}
    if output:
        folder = output[:-5] if output.endswith(".json") else output
        os.makedirs(folder, exist_ok=True)
        png = plot_curves({n: r[0] for n, r in runs.items()}, os.path.join(folder, "curves.png"), key)
        path = output if output.endswith(".json") else os.path.join(folder, "results.json")
        doc = {"runs": runs, "table": table, "summary": summary, "paired": pairs}
        out["files"] = {"json": write_json(doc, path), "plot": png}
    return out


def _with(base: dict, overrides: dict) -> dict:
    """``base`` with ``overrides`` applied; ``"a.b"`` keys set ``d["a"]["b"]`` (a copy)."""
    d = copy.deepcopy(base)
    for k, v in overrides.items():
        if "." in k:
            head, sub = k.split(".", 1)
            inner = dict(d.get(head) or {})
            inner[sub] = v
            d[head] = inner
        else:
            d[k] = v
    return d
