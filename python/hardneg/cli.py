"""Command line: ``hardneg train`` (no arguments: the main job), ``compare``, ``datasets``, ``samplers``,
``recipes``, ``demo`` and ``info``. ``python -m hardneg`` is the same.

Every user error is one line on stderr and exit status 2. Nothing heavy is imported before a command runs,
so ``hardneg --help`` is fast.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import re
import sys
import time

#: recipe keys that are not config fields: what ``hardneg compare`` runs (samplers, seeds, per-sampler overrides,
#: a hyperparameter grid and its baseline) and the seed-to-seed spread measured once for the recipe (printed
#: under the main job's table)
RECIPE_KEYS = ("compare", "seeds", "per_sampler", "grid", "baseline", "spread")
MAIN_JOB = "umls"  # the recipe the no-argument main job runs (uniform vs hard negatives, one table)


class UserError(ValueError):
    """An error caused by the command line or its inputs: printed as one line, exit status 2."""


# ------------------------------------------------------------------------------------------ recipes
def load_recipe(name_or_path: str) -> dict:
    """A recipe by shipped name (``hardneg recipes``) or a YAML path, as a dict. YAML errors name the file
    and line."""
    import yaml

    from hardneg.tasks import recipes

    path = name_or_path
    if not os.path.isfile(path):
        shipped = recipes()
        if name_or_path not in shipped:
            raise UserError(f"recipe {name_or_path!r} not found (not a file; shipped recipes: {sorted(shipped)})")
        path = shipped[name_or_path]
    try:
        with open(path, encoding="utf-8-sig") as f:
            d = yaml.safe_load(f) or {}
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else path
        raise UserError(f"recipe {where}: invalid YAML ({getattr(e, 'problem', None) or e})") from None
    except (OSError, UnicodeDecodeError) as e:
        raise UserError(f"recipe {path}: cannot read it ({e})") from None
    if not isinstance(d, dict):
        raise UserError(f"recipe {path}: expected a mapping of options (got {type(d).__name__})")
    return d


def recipe_for(dataset: str, task: str | None, model: str | None) -> str | None:
    """The shipped recipe for a dataset: ``<dataset>`` or ``<dataset>-<model>`` (the first one otherwise)."""
    from hardneg.tasks import recipes

    shipped = recipes()
    ds = dataset.lower()
    if model and f"{ds}-{model.lower()}" in shipped:
        return f"{ds}-{model.lower()}"
    if ds in shipped:
        return ds
    cands = sorted(n for n in shipped if n.startswith(ds + "-"))
    return cands[0] if cands else None


# ------------------------------------------------------------------------------------------ options
def config_classes() -> dict[str, type]:
    """The config class of every task that has one (no torch import)."""
    from hardneg.training.task import TASKS, config_class

    out = {}
    for t in TASKS:
        try:
            out[t] = config_class(t)
        except ModuleNotFoundError:
            continue
    return out


SPECIAL = ("task", "dataset")  # flags with their own handling


def option_table() -> dict[str, dict]:
    """field name -> {"kind", "help", "helps": {task: help}, "defaults": {task: default}} over every task's
    config; ``help`` is the one text when the tasks agree, else each task's own (a shared name such as
    ``dropout`` or ``mrr_negatives`` means something per task)."""
    table: dict[str, dict] = {}
    for task, cls in config_classes().items():
        for f in dataclasses.fields(cls):
            if f.name in SPECIAL:
                continue
            default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
            e = table.setdefault(f.name, {"helps": {}, "defaults": {}, "kind": _kind(default)})
            e["defaults"][task] = default
            e["helps"][task] = f.metadata.get("help", "")
    for e in table.values():
        texts = list(dict.fromkeys(e["helps"].values()))
        e["help"] = texts[0] if len(texts) == 1 else "; ".join(f"{t}: {h}" for t, h in e["helps"].items())
    return table


def _kind(default):
    if isinstance(default, bool):
        return "bool"
    if isinstance(default, int):
        return "int"
    if isinstance(default, float):
        return "float"
    if isinstance(default, (dict, list)):
        return "yaml"
    return "str"


def _parse_value(v: str):
    import yaml

    try:
        return yaml.safe_load(v)
    except yaml.YAMLError as e:
        raise UserError(f"cannot parse value {v!r} ({getattr(e, 'problem', None) or e})") from None


class _Null:
    """``none`` / ``null`` given for a field whose default is None: it sets the field to None, over the recipe's
    value (a flag's own None means "not given")."""

    def __repr__(self):
        return "None"


_NULL = _Null()


def _typed(kind, literal_none: bool = False):
    """The converter of a ``--<field>`` value. A str field whose default is a str keeps ``none`` as text, since it
    is a value there (``--node-embedding none``, ``--rank-eval none``); elsewhere ``none`` / ``null`` sets None."""
    def conv(v: str):
        if kind == "int":
            return int(v)
        if kind == "float":
            return float(v)
        if kind in ("bool", "yaml"):
            return _parse_value(v)
        return v if literal_none or v.lower() not in ("none", "null") else _NULL

    conv.__name__ = kind
    return conv


def _default_text(defaults: dict) -> str:
    vals = {repr(v) if not isinstance(v, str) else v for v in defaults.values()}
    if len(vals) == 1:
        return f"default: {next(iter(vals))}"
    return "defaults: " + ", ".join(f"{t} {v!r}" for t, v in defaults.items())


def add_config_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("run options (any field of the task's config; see also --set)")
    g.add_argument("--task", default=None, help="kg | temporal | linkpred | rec (default: from the dataset or recipe)")
    g.add_argument("--config", default=None, metavar="RECIPE",
                   help="a shipped recipe (hardneg recipes) or a YAML file of options")
    g.add_argument("--dataset", default=None, help="a shipped dataset name (hardneg datasets) or a path")
    for name, e in option_table().items():
        literal = any(isinstance(v, str) for v in e["defaults"].values())
        g.add_argument("--" + name.replace("_", "-"), dest=name, type=_typed(e["kind"], literal), default=None,
                       metavar=e["kind"].upper(), help=f"{e['help']} ({_default_text(e['defaults'])})")
    g.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="any config field, YAML-parsed (e.g. --set sampler_options='{pool_size: 128}')")
    p.add_argument("--output", default=None,
                   help="run folder (or .json path) for the results JSON and the PNG (default: runs/<date>-<run>/)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar or progress lines")


def config_from_args(args, *, log=print) -> tuple[dict, dict]:
    """(options, recipe extras such as ``compare`` / ``seeds`` / ``per_sampler``) from the command line."""
    d: dict = {}
    name = args.config
    if name is None and args.dataset is not None:
        name = recipe_for(args.dataset, args.task, getattr(args, "model", None))
        if name is not None:
            log(f"[hardneg] using the shipped recipe {name!r} for dataset {args.dataset!r} "
                f"(--config to choose another)")
    if name is not None:
        d = load_recipe(name)
    extras = {k: d.pop(k) for k in RECIPE_KEYS if k in d}
    if args.task is not None:
        d["task"] = args.task
    if args.dataset is not None:
        d["dataset"] = args.dataset
    new_sampler = getattr(args, "sampler", None)
    if (new_sampler is not None and new_sampler != d.get("sampler") and d.get("sampler_options")
            and getattr(args, "sampler_options", None) is None):
        log(f"[hardneg] --sampler {new_sampler}: the recipe's sampler_options {d['sampler_options']} are for "
            f"{d.get('sampler')!r} and are dropped (--sampler-options to set {new_sampler!r}'s)")
        d.pop("sampler_options")
    for key in option_table():
        v = getattr(args, key, None)
        if v is not None:
            d[key] = None if v is _NULL else v
    for kv in args.set or []:
        if "=" not in kv:
            raise UserError(f"--set expects KEY=VALUE (got {kv!r})")
        k, v = kv.split("=", 1)
        d[k.strip().replace("-", "_")] = _parse_value(v)
    return d, extras


def default_output(d: dict) -> str:
    root = os.environ.get("HARDNEG_RUNS", "runs")
    stamp = time.strftime("%Y%m%d-%H%M%S")
    parts = [d.get("task", "kg"), os.path.basename(str(d.get("dataset", "run")).rstrip("/")), d.get("model", "")]
    return os.path.join(root, f"{stamp}-" + "-".join(p for p in parts if p))


def hyperparameters(cfg: dict) -> str:
    keys = ("model", "dim", "loss", "loss_options", "num_negatives", "optimizer", "lr", "batch_size", "epochs",
            "regularizer", "reg_weight", "sampler_options", "seed")
    return ", ".join(f"{k}={cfg[k]}" for k in keys if k in cfg and (k == "seed" or cfg[k] not in (None, {}, "", 0.0)))


def _print_result(rows, task_cls, primary, *, title, baseline=None, summary=None):
    from hardneg.training.results import format_table

    print(f"\n{title}")
    first = rows[0][1][0]
    print(format_table(rows, task_cls.result_columns(first), primary=primary, baseline=baseline))
    if first.get("protocol"):
        print(f"(test split; {first['protocol']})")
    if summary:
        print(summary)


# ------------------------------------------------------------------------------------------ commands
def cmd_train(args) -> int:
    from hardneg.training import TrainConfig, Trainer, get_task

    bare = args.config is None and args.dataset is None and args.task is None and not args.set and not any(
        getattr(args, k, None) is not None for k in option_table() if k != "seed")
    if bare:
        return main_job(args)
    d, _ = config_from_args(args)
    cfg = TrainConfig.from_dict(d)
    output = args.output or default_output(cfg.to_dict())
    tr = Trainer(cfg, progress=False if args.no_progress else None)
    try:
        r = tr.run(resume=args.resume, output=output)
    finally:
        tr.close()
    if not tr.is_main:  # torchrun: rank 0 prints and writes
        return 0
    task = get_task(cfg.task)
    _print_result([(cfg.sampler, [r])], task, r["primary_metric"],
                  title=f"{cfg.model} on {r['dataset'].get('name', cfg.dataset)}: {hyperparameters(r['config'])}")
    print(f"[train] results: {r['files']['json']}" + (f", plot: {r['files']['plot']}" if r['files']['plot'] else ""))
    return 0


def _compare(d: dict, names: list[str], seeds: list[int], output: str, progress, per_sampler=None) -> dict:
    from hardneg import samplers
    from hardneg.training import TrainConfig, compare, get_task

    bad = [n for n in names if n not in samplers.available()]
    if bad:
        raise UserError(f"--samplers: unknown sampler(s) {bad}; known samplers: {samplers.available()}")
    if per_sampler:
        d = dict(d, per_sampler=per_sampler)
    out = compare(d, names, seeds=seeds, output=output, progress=progress)
    first = next(iter(out["runs"].values()))[0]
    cfg = TrainConfig.from_dict(dict(first["config"]))
    ds = first["dataset"]
    title = (f"{cfg.model} on {ds.get('name', cfg.dataset)}, {len(seeds)} seed(s) per sampler: "
             f"{hyperparameters(first['config'])}")
    base = "uniform" if "uniform" in out["runs"] else ("random" if "random" in out["runs"] else None)
    _print_result(list(out["runs"].items()), get_task(cfg.task), first["primary_metric"], title=title,
                  baseline=base, summary=out["summary"])
    if out["files"]:
        print(f"[compare] results: {out['files']['json']}"
              + (f", plot: {out['files']['plot']}" if out["files"].get("plot") else ""))
    return out


def _seeds(text: str | None, default) -> list[int]:
    if text is None:
        return list(default)
    try:
        return [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise UserError(f"--seeds expects comma-separated integers (got {text!r})") from None


def main_job(args) -> int:
    """The main job: the ``MAIN_JOB`` recipe (ComplEx on UMLS from the PyKEEN wheel), uniform vs hard negatives,
    one table, the winner and the seed-to-seed spread."""
    d = load_recipe(MAIN_JOB)
    extras = {k: d.pop(k) for k in RECIPE_KEYS if k in d}
    seeds = extras.get("seeds", [0])
    if args.seed is not None:
        seeds = [args.seed]
    print(f"[hardneg] the main job: {d['model']} on {d['dataset']}, {' vs '.join(extras['compare'])} negatives "
          f"({hyperparameters(d)}; seeds {seeds})", flush=True)
    output = args.output or default_output(dict(d, model=d["model"] + "-compare"))
    _compare(d, extras["compare"], seeds, output, False if args.no_progress else None, extras.get("per_sampler"))
    if extras.get("spread"):
        print(f"seed-to-seed spread (measured once, bench/RESULTS.md): {extras['spread']}")
    return 0


def cmd_compare(args) -> int:
    if getattr(args, "sampler", None) is not None:
        raise UserError(f"compare runs every sampler of --samplers a,b (got --sampler {args.sampler}; "
                        f"'hardneg train --sampler {args.sampler}' runs one)")
    if args.config is None and args.dataset is None and args.task is None:
        args.config = MAIN_JOB  # as 'hardneg train' with no dataset: the main job's recipe
        print(f"[hardneg] no --config or --dataset: comparing on the main job's recipe {MAIN_JOB!r}", flush=True)
    d, extras = config_from_args(args)
    if extras.get("grid") and not args.samplers:
        return _grid(d, extras, args)
    names = [s.strip() for s in args.samplers.split(",") if s.strip()] if args.samplers else \
        extras.get("compare") or ["uniform", "topk"]
    if getattr(args, "sampler_options", None) is not None:
        _own_sampler_options(d, extras, names)
    seeds = _seeds(args.seeds, extras.get("seeds", [d.get("seed", 0)]))
    output = args.output or default_output(dict(d, model=str(d.get("model", "")) + "-compare"))
    _compare(d, names, seeds, output, False if args.no_progress else None, extras.get("per_sampler"))
    return 0


def _own_sampler_options(d: dict, extras: dict, names: list[str]) -> None:
    """Whose options an explicit ``--sampler-options`` of ``compare`` are: the recipe's sampler's when it is
    compared (the others keep their defaults or the recipe's ``per_sampler`` options), else the one sampler of
    ``--samplers`` (replacing the recipe's ``per_sampler`` options for it). Several samplers, none of them the
    recipe's, leave the options without an owner: a UserError rather than options silently not applied."""
    own = d.get("sampler")
    if own in names:
        others = [n for n in names if n != own]
        if others:
            print(f"[compare] --sampler-options apply to {own!r} (the recipe's sampler); {', '.join(others)} run "
                  f"with their defaults or the recipe's per-sampler options", flush=True)
        return
    if len(names) != 1:
        raise UserError(f"--sampler-options {d.get('sampler_options')}: the options of which sampler? --samplers "
                        f"{','.join(names)} does not include the recipe's sampler {own!r}; compare one sampler "
                        f"at a time with its options, or write them into a recipe's per_sampler")
    d["sampler"] = names[0]
    per = dict(extras.get("per_sampler") or {})
    if "sampler_options" in per.get(names[0], {}):
        per[names[0]] = {k: v for k, v in per[names[0]].items() if k != "sampler_options"}
        extras["per_sampler"] = per


def _grid(d: dict, extras: dict, args) -> int:
    """A recipe with ``grid: {field: [values]}`` (and optionally ``baseline: {overrides}``): one run per cell."""
    from hardneg.training import TrainConfig, get_task, grid

    seeds = _seeds(args.seeds, extras.get("seeds", [d.get("seed", 0)]))
    output = args.output or default_output(dict(d, model=str(d.get("model", "")) + "-grid"))
    out = grid(d, extras["grid"], baseline=extras.get("baseline"), seeds=seeds, output=output,
               progress=False if args.no_progress else None)
    first = next(iter(out["runs"].values()))[0]
    cfg = TrainConfig.from_dict(dict(first["config"]))
    title = f"{cfg.model} on {first['dataset'].get('name', cfg.dataset)}, grid {list(extras['grid'])}: " \
            f"{hyperparameters(first['config'])}"
    _print_result(list(out["runs"].items()), get_task(cfg.task), first["primary_metric"], title=title,
                  baseline="baseline" if extras.get("baseline") else None, summary=out["summary"])
    print(f"[grid] results: {out['files']['json']}" + (f", plot: {out['files']['plot']}" if out["files"].get("plot")
                                                       else ""))
    return 0


def cmd_datasets(args) -> int:
    from hardneg.tasks import datasets

    rows = [r for r in datasets() if args.task in (None, r["task"])]
    w = max([len(r["name"]) for r in rows] + [4])
    print(f"{'name':<{w}}  {'task':<8}  {'here':<4}  description / where")
    for r in rows:
        print(f"{r['name']:<{w}}  {r['task']:<8}  {'yes' if r['available'] else 'no':<4}  {r['description']}")
        if r["where"]:
            print(f"{'':<{w}}  {'':<8}  {'':<4}  {r['where']}")
    print("\nAny path works too: a KG folder (train/valid/test.txt), a JODIE/TGN .csv, an edge list or .mat, "
          "a LightGCN folder or a SASRec file (README: 'Your own data').")
    return 0


def _summary(doc: str | None, width: int = 130) -> str:
    """The first sentence of a docstring's first paragraph, on one line of at most ``width`` characters."""
    para = " ".join((doc or "").strip().split("\n\n")[0].split())
    ends = [m for m in re.finditer(r"\.(\s+[A-Z(]|$)", para)
            if not re.search(r"(\bal|e\.g|i\.e|\bcf|\bvs|\bet)$", para[:m.start()])]
    first = para[:ends[0].start() + 1] if ends else para
    return first if len(first) <= width else first[:width - 1].rstrip() + "…"


def cmd_samplers(args) -> int:
    from hardneg import samplers

    for name in samplers.available():
        cls = samplers.get_class(name)
        print(f"{name:<12} {_summary(cls.__doc__)}")
        opts = samplers.options(name)
        if opts:
            print(" " * 13 + "options: " + ", ".join(f"{k}={v!r}" for k, v in opts.items()))
    return 0


def cmd_recipes(args) -> int:
    from hardneg.tasks import recipes

    for name, path in recipes().items():
        with open(path, encoding="utf-8") as f:
            first = f.readline().strip().lstrip("# ")
        print(f"{name:<20} {first}")
    return 0


def cmd_export(args) -> int:
    from hardneg.training.export import export

    files = export(args.run, args.format, args.out)
    print(f"[export] {len(files)} file(s) in {os.path.dirname(files[0]) if files else args.out}:")
    for f in files:
        print(f"  {f}")
    return 0


def _demo_graph():
    from hardneg.data import load_dataset

    kg = load_dataset("umls")
    return kg.train, kg.num_entities, kg.num_relations, f"UMLS ({kg.num_entities} entities)"


def cmd_demo(args) -> int:
    """Mine hard negatives for every (h, r) query of UMLS with a DistMult scorer, never returning a known tail."""
    import torch

    import hardneg
    from hardneg.ops import sample_by_score, topk_mine

    hardneg.show_config()
    triples, E, R, what = _demo_graph()
    print(f"\n[demo] graph: {what}: {E} entities, {R} relations, {triples.shape[0]} train triples")
    g = torch.Generator().manual_seed(0)
    ent = torch.randn(E, args.dim, generator=g) / args.dim**0.5
    rel = torch.randn(R, args.dim, generator=g)
    hr = torch.unique(triples[:, :2], dim=0)
    known = hardneg.KnownSet.from_triples(triples, E, R)
    ex = known.exclusion(hr, side="tail")  # all known tails of each (h, r) query, as a CSR
    query = ent[hr[:, 0]] * rel[hr[:, 1]]  # DistMult: score(h, r, t) = <e_h * w_r, e_t>
    t = time.perf_counter()
    s, ids = topk_mine(query, ent, args.k, exclude=ex)
    t_top = time.perf_counter() - t
    t = time.perf_counter()
    sid, lp = sample_by_score(query, ent, args.k, exclude=ex, generator=g, weighting="softplus")
    t_samp = time.perf_counter() - t
    truth = set(map(tuple, triples.tolist()))  # brute-force check, independent of KnownSet
    bad = sum((int(h), int(r), int(x)) in truth for (h, r), row in zip(hr.tolist(), ids.tolist()) for x in row if x >= 0)
    bad += sum((int(h), int(r), int(x)) in truth for (h, r), row in zip(hr.tolist(), sid.tolist()) for x in row if x >= 0)
    print(f"[demo] {hr.shape[0]} (h, r) queries: top-{args.k} hard negatives in {t_top * 1e3:.1f} ms, "
          f"{args.k} loss-proportional samples in {t_samp * 1e3:.1f} ms; known positives returned: {bad}")
    t = time.perf_counter()
    neg, valid = hardneg.ops.corrupt(triples, 64, E, side="bernoulli", known=known, generator=g)
    t_cor = time.perf_counter() - t
    leaked = sum(tuple(x) in truth for x in neg[valid].tolist())
    print(f"[demo] Bernoulli filtered corruption, {triples.shape[0]} x 64: {t_cor * 1e3:.1f} ms, "
          f"known triples among them: {leaked}, rows with no admissible negative: {int((~valid).sum())}")
    bad += leaked
    h, r = hr[0].tolist()
    print(f"[demo] query (h={h}, r={r}): hardest tails {ids[0, :8].tolist()} scores {[round(x, 3) for x in s[0, :8].tolist()]}")
    B, N, d, k = args.big  # a larger synthetic mining run, against torch's materialised matmul + topk
    q = torch.randn(B, d, generator=g)
    c = torch.randn(N, d, generator=g)
    ex2 = (torch.arange(B + 1) * 20, torch.randint(0, N, (B * 20,), generator=g))
    topk_mine(q[:8], c[:1000], k)
    t = time.perf_counter()
    topk_mine(q, c, k, exclude=ex2)
    t_ours = time.perf_counter() - t
    t = time.perf_counter()
    sc = q @ c.T
    sc[torch.repeat_interleave(torch.arange(B), 20), ex2[1]] = float("-inf")
    torch.topk(sc, k, dim=1)
    t_torch = time.perf_counter() - t
    del sc
    print(f"[demo] B={B} N={N} d={d} k={k}, 20 exclusions/query: hardneg {t_ours:.3f} s, torch matmul+topk "
          f"{t_torch:.3f} s ({t_torch / t_ours:.1f}x)")
    return 0 if bad == 0 else 1


def cmd_info(args) -> int:
    import hardneg

    hardneg.show_config()
    return 0


def build_parser() -> argparse.ArgumentParser:
    fmt = argparse.RawDescriptionHelpFormatter
    ap = argparse.ArgumentParser(prog="hardneg", formatter_class=fmt,
                                 description="Fast, exact hard negative sampling for link prediction.\n"
                                             "With no command: the main job (hardneg train).")
    sub = ap.add_subparsers(dest="cmd", metavar="COMMAND")
    t = sub.add_parser("train", formatter_class=fmt, help="train one model (no options: the main job)",
                       description="Train one model. With no dataset, recipe or option: the main job (DistMult on "
                                   "UMLS, uniform vs hard negatives); --output, --no-progress and --seed keep it.")
    add_config_flags(t)
    t.add_argument("--resume", action="store_true", help="continue from checkpoint_dir/checkpoint.pt")
    t.set_defaults(func=cmd_train)
    c = sub.add_parser("compare", formatter_class=fmt, help="one model, several samplers (and seeds), one table",
                       description="Train one model with several samplers (and seeds) and print one table. A recipe "
                                   "with a 'grid' (e.g. hardgnn-grid) runs one model per grid cell instead, "
                                   "against its 'baseline', unless --samplers is given.")
    add_config_flags(c)
    c.add_argument("--samplers", default=None, help="comma-separated sampler names (default: the recipe's, or "
                                                    "uniform,topk)")
    c.add_argument("--seeds", default=None, help="comma-separated seeds, each sampler runs once per seed")
    c.set_defaults(func=cmd_compare)
    sub.add_parser("datasets", help="list the shipped datasets and whether they are available here").set_defaults(
        func=cmd_datasets, task=None)
    sub.add_parser("samplers", help="list the samplers with their options and defaults").set_defaults(func=cmd_samplers)
    sub.add_parser("recipes", help="list the shipped recipes").set_defaults(func=cmd_recipes)
    e = sub.add_parser("export", help="write a run's embeddings with their names (PyKEEN / PyG / TensorBoard layouts)")
    e.add_argument("run", metavar="RUN", help="the output folder of a 'hardneg train' run")
    e.add_argument("--format", choices=["pt", "npy", "tsv"], default="pt",
                   help="pt: one torch file; npy: <table>.npy + <table>_to_id.tsv (PyKEEN); tsv: TensorBoard "
                        "projector vectors + metadata (default: pt)")
    e.add_argument("--out", default=None, help="folder to write into (default: RUN/export-<format>)")
    e.set_defaults(func=cmd_export)
    d = sub.add_parser("demo", help="mine hard negatives on UMLS and time them")
    d.add_argument("--dim", type=int, default=64)
    d.add_argument("-k", type=int, default=32)
    d.add_argument("--big", type=int, nargs=4, default=[1024, 200_000, 64, 32], metavar=("B", "N", "D", "K"))
    d.set_defaults(func=cmd_demo)
    sub.add_parser("info", help="print the build and the backends of each op").set_defaults(func=cmd_info)
    return ap


#: optional dependency (top-level module) -> the extra that installs it
EXTRAS = {"torch_geometric": "pyg", "scipy": "pyg", "pykeen": "pykeen", "matplotlib": "plot", "numba": "numba",
          "triton": "triton"}


def _missing_dependency(e: ImportError) -> str:
    """One line for an ImportError, naming the extra that installs the missing module."""
    msg = str(getattr(e, "msg", None) or e).splitlines()[0]
    root = (getattr(e, "name", None) or "").split(".")[0]
    if root in EXTRAS and "pip install" not in msg:
        msg += f" (pip install 'hardneg[{EXTRAS[root]}]')"
    return msg


def main(argv=None) -> int:
    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(line_buffering=True)  # progress lines appear as they happen when redirected
    argv = list(sys.argv[1:] if argv is None else argv)
    ap = build_parser()
    args = ap.parse_args(argv or ["train"])
    try:
        return args.func(args)
    except (ValueError, TypeError, FileNotFoundError, PermissionError, NotADirectoryError) as e:
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        print(f"hardneg {args.cmd}: error: {msg}", file=sys.stderr)
        return 2
    except ImportError as e:
        print(f"hardneg {args.cmd}: error: {_missing_dependency(e)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"hardneg {args.cmd}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
