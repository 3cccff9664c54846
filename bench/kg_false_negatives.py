"""How often a KG sampler's negatives are *false negatives* the training filter cannot see: triples that are
true in the validation or test split (the filter holds only training triples, as it must).

Runs ``hardneg train`` with the given options and counts, per epoch, the valid negatives ``(h, r, t')`` that
are held-out true triples (with reciprocal relations, ``(t, r⁻¹, h)`` for each held-out ``(h, r, t)`` too).
For DANS the generated columns (its first ``entity_negatives + relation_negatives``) and the uniform ones
are counted apart, with the number of distinct entities the generated columns hit and their perplexity
(exp of the entropy of the hit distribution: 135 on UMLS would be uniform over all entities).

    python bench/kg_false_negatives.py --config umls-dans --no-progress
    python bench/kg_false_negatives.py --config umls-dans --sampler uniform --no-progress

Every argument goes to ``hardneg train``; the table is printed after its own output. Samplers that do not track
epochs (all but the trainable ones) get one row, "all".
"""
from __future__ import annotations

import collections
import sys

import torch

from hardneg import KnownSet, cli
from hardneg.samplers.base import Sampler
from hardneg.tasks.kg.data import load_dataset
from hardneg.tasks.kg.evaluation import inverse_triples


def main(argv: list[str]) -> int:
    cfg, _ = cli.config_from_args(cli.build_parser().parse_args(["train", *argv]), log=lambda *a: None)
    kg = load_dataset(cfg.get("dataset") or "umls")
    E, R = kg.num_entities, kg.num_relations
    held = torch.cat([kg.valid, kg.test])
    held = KnownSet.from_triples(torch.cat([held, inverse_triples(held, R)]), E, 2 * R)  # valid + test, both ways

    # epoch -> [generated hits, generated total, other hits, other total]; epoch -> generated entity counts
    stats = collections.defaultdict(lambda: [0, 0, 0, 0])
    hits_of = collections.defaultdict(lambda: torch.zeros(E))
    original = Sampler.sample

    def counted(self, positives, **kw):
        out = original(self, positives, **kw)
        if getattr(self, "pretraining", False) or positives.shape[1] != 3:
            return out
        k = getattr(self, "entity_negatives", 0) + getattr(self, "relation_negatives", 0)
        P, ids, valid = positives, out.ids, out.valid
        cand = ids.clamp_min(0)
        hit = held.mask(P[:, :2], cand, "tail") & valid
        if out.side is not None:  # rows (or slots) whose head was replaced: (h', r, t)
            head = out.side.reshape(ids.shape[0], -1) == 0
            hit = torch.where(head, held.mask(P[:, 1:], cand, "head") & valid, hit)
        s = stats[getattr(self, "epoch", 0)]
        s[0] += int(hit[:, :k].sum()); s[1] += int(valid[:, :k].sum())
        s[2] += int(hit[:, k:].sum()); s[3] += int(valid[:, k:].sum())
        if k:
            hits_of[getattr(self, "epoch", 0)] += torch.bincount(ids[:, :k][valid[:, :k]], minlength=E).float()
        return out

    Sampler.sample = counted
    rc = cli.main(["train", *argv])
    print("epoch  generated FN rate  other FN rate  generated distinct  generated perplexity")
    for ep in sorted(stats):
        g_hit, g_all, o_hit, o_all = stats[ep]
        c = hits_of[ep]
        p = c[c > 0] / c.sum() if c.sum() else c[:0]
        perp = float(torch.exp(-(p * p.log()).sum())) if p.numel() else float("nan")
        g = f"{g_hit / g_all:.4f}" if g_all else "-"
        print(f"{ep if ep else 'all':>5}  {g:>17}  {o_hit / max(1, o_all):13.4f}  {int((c > 0).sum()):18d}  {perp:20.1f}")
    return rc


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
