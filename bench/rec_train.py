"""Sequence recommenders: what encoding a batch in groups of similar length saves, with steps in lockstep.

Two trainers of the same recipe and seed (SASRec on Amazon Games by default), one encoding each batch in
length groups (``SASRec.group_lengths``, the default: each group padded to its own longest sequence), one
padding the whole batch to its longest sequence (the usual way), take one training step each in turn (the order
alternating), on the same batches, timing each step: forward, sampling, loss, backward and optimiser. On a
shared virtual machine whose speed drifts between minutes, separate runs cannot resolve such ratios; steps taken
side by side see the same machine. Then the evaluation's query pass (every user's hidden state at the last
position, as full ranking reads it) of one model is timed both ways, alternating, and the largest difference
between the two query tables is printed (the same computation in eval mode: float rounding only).

    python bench/rec_train.py --steps 100 --threads 2
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

MODES = {"grouped": True, "padded": False}


def trainers(recipe: str, seed: int) -> dict:
    base = load_recipe(recipe)
    for key in ("compare", "seeds", "grid", "baseline", "per_sampler"):
        base.pop(key, None)
    out, data = {}, None
    for name, grouped in MODES.items():
        T = Trainer(TrainConfig.from_dict(dict(base, seed=seed, eval_every=0)), data=data, progress=False, log=None)
        if not hasattr(T.model, "group_lengths"):
            raise SystemExit(f"{recipe}: model {type(T.model).__name__} has no length grouping to compare")
        T.model.group_lengths = grouped
        data = T.data
        out[name] = T
    return out


def lockstep(tr: dict, steps: int, warmup: int) -> dict:
    """Seconds of training steps per mode over ``steps`` batches (after ``warmup`` uncounted ones)."""
    spent = dict.fromkeys(tr, 0.0)
    for T in tr.values():
        T.model.train()
        T.task.on_epoch_start(1)
    first = next(iter(tr.values()))
    batches = iter(first.task.batches(torch.Generator().manual_seed(0)))  # the same batches for both
    names = list(tr)
    for i, b in zip(range(warmup + steps), batches):
        for k in names[i % 2:] + names[:i % 2]:
            t = time.perf_counter()
            train_step(tr[k], b)
            if i >= warmup:
                spent[k] += time.perf_counter() - t
    return spent


@torch.no_grad()
def query_pass(T, users: int, repeats: int) -> tuple[dict, float]:
    """Seconds per query pass of one model over the first ``users`` users, grouped and padded (median of
    ``repeats``, alternating), and the largest difference between the two query tables."""
    model = T.model.eval()
    view = model.eval_view(tuple(x.to(T.device) for x in T.task.evaluator.history("test")))
    u = torch.arange(min(users, T.task.split.num_users), device=T.device)
    times, out = {k: [] for k in MODES}, {}
    for r in range(repeats):
        for k in (list(MODES) if r % 2 == 0 else list(reversed(MODES))):
            model.group_lengths = MODES[k]
            t = time.perf_counter()
            out[k] = view.query(u)
            times[k].append(time.perf_counter() - t)
    model.group_lengths = True
    return {k: sorted(v)[len(v) // 2] for k, v in times.items()}, float((out["grouped"] - out["padded"]).abs().max())


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--config", default="games-sasrec", help="a rec recipe with a sequence model")
    p.add_argument("--steps", type=int, default=100, help="training steps timed per mode")
    p.add_argument("--warmup", type=int, default=5, help="steps run first and not counted")
    p.add_argument("--query-users", type=int, default=4096, help="users in the timed query pass (0: skip it)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--csv", default=os.path.join(RESULTS_DIR, "rec_train.csv"))
    a = p.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    tr = trainers(a.config, a.seed)
    print(f"# {a.config}: {a.steps} training steps per mode in lockstep after {a.warmup}; seed {a.seed}; "
          f"{torch.get_num_threads()} threads; {machine('cpu')}")
    spent = lockstep(tr, a.steps, a.warmup)
    rows = []
    print(f"{'mode':<8} {'ms/step':>9} {'x padded':>9}")
    for k, s in spent.items():
        print(f"{k:<8} {s / a.steps * 1e3:9.2f} {s / spent['padded']:9.3f}")
        rows.append(dict(provider=k, what="train step", ms=s / a.steps * 1e3, ratio=s / spent["padded"]))
    if a.query_users:
        q, diff = query_pass(tr["grouped"], a.query_users, a.repeats)
        for k, s in q.items():
            print(f"query pass, {a.query_users} users, {k}: {s * 1e3:.1f} ms ({s / q['padded']:.3f}x padded)")
            rows.append(dict(provider=k, what=f"query {a.query_users} users", ms=s * 1e3, ratio=s / q["padded"]))
        print(f"largest difference between the two query tables: {diff:.2e}")
    fields = ["date", "commit", "machine", "config", "steps", "seed", "threads", "provider", "what", "ms", "ratio"]
    append_csv(a.csv, fields, rows, **stamp(), config=a.config, steps=a.steps, seed=a.seed,
               threads=torch.get_num_threads())


if __name__ == "__main__":
    main()
