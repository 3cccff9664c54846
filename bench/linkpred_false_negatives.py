"""How often a link-prediction sampler's negatives are *false negatives* its filter cannot see: pairs that are
validation or test edges of the run's split (the filter holds the training edges only, as it must).

Runs ``hardneg compare`` with the given options and counts, for each (sampler, seed) run, the valid training
negatives ``(u, v')`` that are held-out edges of that run's own split (undirected: either orientation). The
rate is the fraction of all valid training negatives over the whole run; the table also gives how many distinct
held-out edges were hit and the run's test Hits@20.

    python bench/linkpred_false_negatives.py --config cora-gcn --no-progress
    python bench/linkpred_false_negatives.py --config citeseer-gcn --samplers uniform,dns --seeds 0 --no-progress

Every argument goes to ``hardneg compare``; the table is printed after its own output.
"""
from __future__ import annotations

import sys

import torch

from hardneg import cli
from hardneg.samplers.base import Sampler
from hardneg.tasks.linkpred.task import LinkPredTask


def _pair_keys(a: torch.Tensor, b: torch.Tensor, n: int) -> torch.Tensor:
    return torch.minimum(a, b) * n + torch.maximum(a, b)


def main(argv: list[str]) -> int:
    runs: dict[tuple, dict] = {}
    current: dict = {}
    init, sample = LinkPredTask.__init__, Sampler.sample

    def task_init(self, cfg, *a, **kw):
        current.clear()  # the set-up's own draws (MeBNS's teacher negatives) are not counted
        init(self, cfg, *a, **kw)
        sp, n = self.split, self.data.num_nodes
        held = torch.cat([sp.valid, sp.test]).cpu()
        current.update(n=n, held=torch.unique(_pair_keys(held[:, 0], held[:, 1], n)),
                       stats=runs.setdefault((cfg.sampler, cfg.seed), {"hits": 0, "all": 0, "edges": set()}),
                       sampler=self.sampler)

    def counted(self, positives, **kw):
        out = sample(self, positives, **kw)
        if not current or self is not current["sampler"]:  # only the training sampler's draws
            return out
        anchor = positives[:, :1].expand_as(out.ids).cpu()
        keys = _pair_keys(anchor, out.ids.clamp_min(0).cpu(), current["n"])[out.valid.cpu()]
        hit = torch.isin(keys, current["held"])
        s = current["stats"]
        s["hits"] += int(hit.sum())
        s["all"] += int(keys.numel())
        s["edges"].update(keys[hit].tolist())
        return out

    LinkPredTask.__init__, Sampler.sample = task_init, counted
    try:
        out = cli.main(["compare", *argv])
    finally:
        LinkPredTask.__init__, Sampler.sample = init, sample
    if isinstance(out, int) and out != 0:
        return out
    print("sampler      seed  held-out negatives  of all      rate  distinct held-out edges hit")
    for (name, seed), s in runs.items():
        print(f"{name:12s} {seed:4d}  {s['hits']:18d}  {s['all']:7d}  {s['hits'] / max(1, s['all']):8.4%}  "
              f"{len(s['edges']):27d}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
