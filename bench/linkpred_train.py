"""Static link prediction: the epoch cost of each sampler against uniform negatives, with steps in lockstep, and
where MeBNS's time goes.

One trainer per sampler (the recipe's model, loss and options; ``per_sampler`` overrides applied as ``hardneg
compare`` applies them), each training its own model as usual, one training step of each in turn (the order
rotating every step), timing each step: forward, sampling, loss, backward and optimiser. On a shared virtual
machine whose speed drifts between minutes, separate runs cannot resolve these ratios; steps taken side by side
see the same machine. Each step's time is split with the task's clock into the sampler (candidate scoring, the
teacher's scoring), MeBNS's meta step (the virtual SGD step and the second-order backward through it on the meta
set) and the rest. MeBNS's one-off set-up (training the teacher, collecting the meta set) is reported apart.

    python bench/linkpred_train.py --config cora-gcn --epochs 50
    python bench/linkpred_train.py --config citeseer-gcn --samplers uniform,mebns --epochs 50 --threads 2
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(__file__))
from _harness import RESULTS_DIR, append_csv, machine, stamp, train_step  # noqa: E402

from hardneg.cli import load_recipe  # noqa: E402
from hardneg.training import TrainConfig, Trainer  # noqa: E402


def trainers(recipe: str, samplers: list[str], seed: int) -> dict:
    base = load_recipe(recipe)
    per = base.pop("per_sampler", {}) or {}
    for key in ("compare", "seeds"):
        base.pop(key, None)
    out, data = {}, None
    for name in samplers:  # the options as hardneg.training.compare() gives them
        d = dict(base, sampler=name, seed=seed, eval_every=0)
        d["sampler_options"] = base.get("sampler_options", {}) if name == base.get("sampler") else {}
        d.update(per.get(name, {}))
        t = time.perf_counter()
        T = Trainer(TrainConfig.from_dict(d), data=data, progress=False, log=None)
        data = T.data
        out[name] = (T, time.perf_counter() - t)
    return out


def lockstep(tr: dict, epochs: int) -> dict:
    """Per sampler: total step time and the task clock's sampler / meta time over ``epochs`` epochs."""
    names = list(tr)
    spent = dict.fromkeys(names, 0.0)
    before = {k: (T.task.clock["sampler"], T.task.clock["meta"]) for k, (T, _) in tr.items()}
    steps = 0
    for ep in range(epochs):
        its = {}
        for k, (T, _) in tr.items():
            T.model.train()
            T.task.on_epoch_start(ep + 1)
            its[k] = iter(T.task.batches(T.gen))
        for batches in zip(*its.values()):
            for k in names[steps % len(names):] + names[:steps % len(names)]:
                T, b = tr[k][0], batches[names.index(k)]
                t = time.perf_counter()
                train_step(T, b)
                spent[k] += time.perf_counter() - t
            steps += 1
        for T, _ in tr.values():
            T.task.on_epoch_end(ep + 1)
    return {k: dict(step_s=spent[k], sampler_s=T.task.clock["sampler"] - before[k][0],
                    meta_s=T.task.clock["meta"] - before[k][1], epochs=epochs)
            for k, (T, _) in tr.items()}


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--config", default="cora-gcn", help="a linkpred recipe")
    p.add_argument("--samplers", default="uniform,dns,mebns")
    p.add_argument("--epochs", type=int, default=50)
    p.add_argument("--warmup", type=int, default=5, help="lockstep epochs run first and not counted")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--csv", default=os.path.join(RESULTS_DIR, "linkpred_train.csv"))
    a = p.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    names = [s.strip() for s in a.samplers.split(",") if s.strip()]
    tr = trainers(a.config, names, a.seed)
    print(f"# {a.config}: samplers {', '.join(names)}; {a.epochs} epochs in lockstep after {a.warmup}; seed {a.seed}; "
          f"{machine('cpu')}")
    for k, (T, setup) in tr.items():
        info = getattr(T.task, "mebns_info", {}) or {}
        if info:
            print(f"{k}: set-up {setup:.2f} s, of which teacher {info['teacher_s']:.2f} s and meta set "
                  f"{info['meta_set_s']:.2f} s (once per run)")
    if a.warmup:
        lockstep(tr, a.warmup)
    res = lockstep(tr, a.epochs)
    base = res.get("uniform", next(iter(res.values())))["step_s"]
    rows = []
    print(f"{'sampler':<10} {'ms/epoch':>9} {'x uniform':>9} {'sampler':>9} {'meta':>9} {'rest':>9}")
    for k, r in res.items():
        ep = 1e3 / r["epochs"]
        rest = r["step_s"] - r["sampler_s"] - r["meta_s"]
        print(f"{k:<10} {r['step_s'] * ep:9.2f} {r['step_s'] / base:9.2f} {r['sampler_s'] * ep:9.2f} "
              f"{r['meta_s'] * ep:9.2f} {rest * ep:9.2f}", flush=True)
        rows.append(dict(provider=k, epoch_ms=r["step_s"] * ep, ratio=r["step_s"] / base,
                         sampler_ms=r["sampler_s"] * ep, meta_ms=r["meta_s"] * ep, rest_ms=rest * ep))
    fields = ["date", "commit", "machine", "config", "epochs", "seed", "threads", "provider", "epoch_ms", "ratio",
              "sampler_ms", "meta_ms", "rest_ms"]
    append_csv(a.csv, fields, rows, **stamp(), config=a.config, epochs=a.epochs, seed=a.seed,
               threads=torch.get_num_threads())


if __name__ == "__main__":
    main()
