"""Command line: ``hardneg train`` (the main job), ``hardneg compare``, ``hardneg demo``, ``hardneg info``.

``hardneg train`` with no arguments trains DistMult on UMLS (read from the PyKEEN wheel) with uniform and with
top-K hard negatives and prints the comparison."""
from __future__ import annotations

import argparse
import os
import sys
import time

import torch


def _demo_graph(args):
    from hardneg.data import find_shared_data, load_kg

    data = find_shared_data()
    if data and os.path.isdir(os.path.join(data, "kg", "umls")):
        kg = load_kg(os.path.join(data, "kg", "umls"), "umls")
        return kg.train, kg.num_entities, kg.num_relations, f"UMLS ({data}/kg/umls)"
    g = torch.Generator().manual_seed(0)
    E, R, M = 135, 46, 5216
    tr = torch.stack([torch.randint(0, E, (M,), generator=g), torch.randint(0, R, (M,), generator=g),
                      torch.randint(0, E, (M,), generator=g)], 1)
    return tr, E, R, "a synthetic UMLS-sized graph (../shared/data not found)"


def cmd_demo(args) -> int:
    """Mine hard negatives for every (h, r) query of a KG with a DistMult scorer, never returning a known tail."""
    import hardneg
    from hardneg.ops import sample_by_score, topk_mine

    hardneg.show_config()
    triples, E, R, what = _demo_graph(args)
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
    bad = sum((int(h), int(r), int(x)) in truth for (h, r), row_ids in zip(hr.tolist(), ids.tolist()) for x in row_ids if x >= 0)
    bad += sum((int(h), int(r), int(x)) in truth for (h, r), row_ids in zip(hr.tolist(), sid.tolist()) for x in row_ids if x >= 0)
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
    # a larger synthetic mining run, against torch's materialised matmul + topk
    B, N, d, k = args.big
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


# ------------------------------------------------------------------------------------------ train / compare
TRAIN_FLAGS = [  # (flag, config key, type, help)
    ("--dataset", "dataset", str, "umls | nations | kinships | wn18rr | nell-995 | codex-s | fb15k-237 | a directory"),
    ("--model", "model", str, "transe | distmult | complex | rotate"),
    ("--dim", "dim", int, "embedding dimension"),
    ("--encoder", "encoder", str, "rgcn: an R-GCN encoder in front of the decoder (needs hardneg[pyg])"),
    ("--sampler", "sampler", str, "negative sampler (hardneg.samplers.available())"),
    ("--num-negatives", "num_negatives", int, "negatives per positive"),
    ("--loss", "loss", str, "margin | softplus | bce | sans | infonce | bpr"),
    ("--optimizer", "optimizer", str, "adam | adagrad | sgd"),
    ("--lr", "lr", float, "learning rate"),
    ("--batch-size", "batch_size", int, "positives per step"),
    ("--epochs", "epochs", int, "training epochs"),
    ("--regularizer", "regularizer", str, "l2 | n3"),
    ("--reg-weight", "reg_weight", float, "regulariser weight"),
    ("--eval-every", "eval_every", int, "validate every N epochs (0: only at the end)"),
    ("--patience", "patience", int, "early stopping: validations without a valid-MRR gain (0: off)"),
    ("--tie", "tie", str, "rank ties: optimistic | pessimistic | realistic"),
    ("--unseen", "unseen", str, "valid/test triples with entities unseen in train: keep | drop"),
    ("--checkpoint-dir", "checkpoint_dir", str, "where checkpoint.pt goes"),
    ("--checkpoint-every", "checkpoint_every", int, "checkpoint every N epochs"),
    ("--seed", "seed", int, "random seed"),
    ("--device", "device", str, "cpu | cuda"),
]


def _parse_value(v: str):
    import yaml

    return yaml.safe_load(v)


def load_recipe(name_or_path: str) -> dict:
    """A recipe by shipped name (``hardneg.recipes``: umls, nations, kinships, wn18rr, nell-995, codex-s) or a
    YAML path."""
    import yaml

    path = name_or_path
    if not os.path.exists(path):
        here = os.path.join(os.path.dirname(__file__), "recipes", f"{name_or_path}.yaml")
        if not os.path.exists(here):
            shipped = sorted(f[:-5] for f in os.listdir(os.path.join(os.path.dirname(__file__), "recipes"))
                             if f.endswith(".yaml"))
            raise ValueError(f"recipe {name_or_path!r} not found (not a file; shipped recipes: {shipped})")
        path = here
    with open(path) as f:
        d = yaml.safe_load(f) or {}
    if not isinstance(d, dict):
        raise ValueError(f"recipe {path}: expected a mapping of options (got {type(d).__name__})")
    return d


def _config_from_args(args) -> tuple[dict, list | None]:
    d = load_recipe(args.config) if args.config else {}
    compare = d.pop("compare", None)
    for flag, key, _, _ in TRAIN_FLAGS:
        v = getattr(args, key)
        if v is not None:
            d[key] = v
    for kv in args.set or []:
        if "=" not in kv:
            raise ValueError(f"--set expects key=value (got {kv!r})")
        k, v = kv.split("=", 1)
        d[k.strip().replace("-", "_")] = _parse_value(v)
    return d, compare


def _fmt_row(name, r):
    t = r["test"]
    tm = r["timings"]
    return (f"{name:<12} {t['mrr']:>7.4f} {t['hits@1']:>7.4f} {t['hits@3']:>7.4f} {t['hits@10']:>7.4f} {t['mr']:>8.2f} "
            f"{r['valid']['mrr']:>8.4f} {r['epochs_trained']:>6d} {tm['epoch_s']:>8.3f} {100 * tm['sampler_share']:>7.1f}%")


def print_table(rows, title):
    print(f"\n{title}")
    print(f"{'sampler':<12} {'MRR':>7} {'H@1':>7} {'H@3':>7} {'H@10':>7} {'MR':>8} {'valMRR':>8} {'epochs':>6} "
          f"{'epoch_s':>8} {'sampler':>8}")
    for name, r in rows:
        print(_fmt_row(name, r))
    print("(test split, filtered, both sides, ties: realistic = mean of optimistic and pessimistic; 'sampler' = "
          "share of training-step time spent drawing negatives)")


def _run_compare(base: dict, names, output, progress):
    from hardneg.training import TrainConfig, Trainer

    rows = []
    kg = None
    for name in names:
        # sampler_options belong to the sampler they were written for (the recipe's own); others use defaults
        opts = base.get("sampler_options", {}) if name == base.get("sampler", "uniform") else {}
        cfg = TrainConfig.from_dict(dict(base, sampler=name, sampler_options=opts))
        tr = Trainer(cfg, kg=kg, progress=progress)
        kg = tr.kg
        print(f"[compare] {cfg.model} on {kg.name} with {name!r} negatives: {cfg.epochs} epochs ...", flush=True)
        rows.append((name, tr.run()))
    title = (f"{base.get('model', 'distmult')} on {kg.name} ({kg.num_entities} entities, {kg.train.shape[0]} train "
             f"triples), {rows[0][1]['config']['num_negatives']} negatives per positive, "
             f"{rows[0][1]['config']['epochs']} epochs")
    print_table(rows, title)
    if output:
        import json

        with open(output, "w") as f:
            json.dump({"runs": {n: r for n, r in rows}}, f, indent=2)
        print(f"[compare] results written to {output}")
    return rows


def cmd_train(args) -> int:
    from hardneg.training import TrainConfig, Trainer

    progress = None if not args.no_progress else False
    bare = args.bare
    d, compare = _config_from_args(args)
    if bare:  # the main job: DistMult on UMLS, uniform vs hard negatives
        d, compare = load_recipe("umls"), None
        compare = d.pop("compare")
        print("[train] no arguments: DistMult on UMLS (from the PyKEEN wheel), uniform vs top-K hard negatives "
              "(recipe python/hardneg/recipes/umls.yaml)")
        _run_compare(d, compare, args.output, progress)
        return 0
    cfg = TrainConfig.from_dict(d)
    tr = Trainer(cfg, progress=progress)
    r = tr.run(resume=args.resume, output=args.output)
    print_table([(cfg.sampler, r)], f"{cfg.model} on {tr.kg.name}")
    if args.output:
        print(f"[train] results written to {args.output}")
    return 0


def cmd_compare(args) -> int:
    d, compare = _config_from_args(args)
    names = [s.strip() for s in args.samplers.split(",")] if args.samplers else (compare or ["uniform", "topk"])
    from hardneg import samplers

    bad = [n for n in names if n not in samplers.available()]
    if bad:
        raise ValueError(f"--samplers: unknown sampler(s) {bad}; known samplers: {samplers.available()}")
    _run_compare(d, names, args.output, None if not args.no_progress else False)
    return 0


def _add_train_flags(p):
    p.add_argument("--config", default=None, help="a recipe: shipped name (umls, wn18rr, ...) or a YAML file")
    for flag, key, typ, hlp in TRAIN_FLAGS:
        p.add_argument(flag, dest=key, type=typ, default=None, help=hlp)
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="any TrainConfig field, YAML-parsed (e.g. --set sampler_options='{pool_size: 128}')")
    p.add_argument("--output", default=None, help="write the results JSON here")
    p.add_argument("--no-progress", action="store_true", help="no tqdm bars")


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="hardneg", description="Fast, exact hard negative sampling for link prediction")
    sub = ap.add_subparsers(dest="cmd")
    t = sub.add_parser("train", help="train a KG embedding model (no arguments: DistMult on UMLS, uniform vs hard)")
    _add_train_flags(t)
    t.add_argument("--resume", action="store_true", help="continue from checkpoint_dir/checkpoint.pt")
    t.set_defaults(func=cmd_train)
    c = sub.add_parser("compare", help="train one model under several samplers and print one table")
    _add_train_flags(c)
    c.add_argument("--samplers", default=None, help="comma-separated sampler names (default: the recipe's, or uniform,topk)")
    c.set_defaults(func=cmd_compare)
    d = sub.add_parser("demo", help="mine hard negatives on UMLS (or a synthetic graph) and time them")
    d.add_argument("--dim", type=int, default=64)
    d.add_argument("-k", type=int, default=32)
    d.add_argument("--big", type=int, nargs=4, default=[1024, 200_000, 64, 32], metavar=("B", "N", "D", "K"))
    d.set_defaults(func=cmd_demo)
    i = sub.add_parser("info", help="print the build and the backends of each op")
    i.set_defaults(func=cmd_info)
    return ap


def main(argv=None) -> int:
    ap = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv:
        argv = ["train"]
    args = ap.parse_args(argv)
    if args.cmd == "train":
        args.bare = argv == ["train"]
    try:
        return args.func(args)
    except (ValueError, TypeError, FileNotFoundError) as e:
        print(f"hardneg {args.cmd}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
