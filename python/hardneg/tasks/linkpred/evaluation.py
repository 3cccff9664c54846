"""Static link-prediction metrics against the fixed negatives of a :class:`~hardneg.tasks.linkpred.data.LinkSplit`.

Shapes: ``m`` positives of a part, ``H`` shared Hits negatives, ``k`` MRR negatives per positive.

* **AUC** and **AP** of the ``m`` positives against the ``m`` fixed 1:1 negatives (GAE's protocol). AUC is the
  Mann-Whitney statistic with tied scores counting one half; AP is scikit-learn's ``average_precision_score``
  (a step function over the distinct score thresholds, so tied scores enter together).
* **Hits@K** (OGB ``ogbl-collab`` / ``ogbl-ddi`` style): a positive is a hit when its score is *strictly*
  greater than the K-th highest score among the ``H`` shared negatives (a tie is a miss); when ``H < K`` every
  positive is a hit, as in OGB's evaluator.
* **MRR** (OGB ``ogbl-citation2`` style): each positive (u, v) is ranked against its own ``k`` negatives
  (u, w); rank = 1 + #(s_w > s_v) + ½·#(s_w = s_v) (OGB's mean of the optimistic and pessimistic ranks).
  Negative slots holding -1 (a u adjacent to every node) are left out of that row.

Every score comes from one ``score_pairs(pairs [P, 2]) -> [P]`` callable, evaluated in chunks.
"""
from __future__ import annotations

import torch

from ... import _validate as V

HITS_KS = (20, 50, 100)


def _scores(op, name, x):
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        raise TypeError(f"{op}: '{name}' must be a floating tensor (got {V.describe(x)})")
    return x.detach().double().cpu()


def auc(pos: torch.Tensor, neg: torch.Tensor) -> float:
    """Area under the ROC curve of ``pos`` [m] (label 1) against ``neg`` [m'] (label 0); ties count ½."""
    p, n = _scores("auc", "pos", pos).flatten(), _scores("auc", "neg", neg).flatten()
    if p.numel() == 0 or n.numel() == 0:
        return float("nan")
    allv = torch.cat([p, n])
    order = allv.argsort()
    sorted_v = allv[order]
    # mid-ranks (1-based) of tied groups
    _, inv, counts = torch.unique_consecutive(sorted_v, return_inverse=True, return_counts=True)
    ends = counts.cumsum(0).double()
    mid = ends - (counts.double() - 1) / 2
    ranks = torch.empty_like(allv)
    ranks[order] = mid[inv]
    r_pos = ranks[: p.numel()].sum()
    return float((r_pos - p.numel() * (p.numel() + 1) / 2) / (p.numel() * n.numel()))


def average_precision(pos: torch.Tensor, neg: torch.Tensor) -> float:
    """Average precision of ``pos`` (label 1) among ``pos`` ∪ ``neg``: Σ (R_i − R_{i−1}) P_i over the distinct
    score thresholds, highest first (scikit-learn's definition)."""
    p, n = _scores("average_precision", "pos", pos).flatten(), _scores("average_precision", "neg", neg).flatten()
    if p.numel() == 0:
        return float("nan")
    s = torch.cat([p, n])
    y = torch.cat([torch.ones(p.numel()), torch.zeros(n.numel())]).double()
    order = s.argsort(descending=True, stable=True)
    s, y = s[order], y[order]
    _, counts = torch.unique_consecutive(s, return_counts=True)
    last = counts.cumsum(0) - 1  # index of each threshold group's last element
    tp = y.cumsum(0)[last]
    fp = (1 - y).cumsum(0)[last]
    precision = tp / (tp + fp)
    recall = tp / p.numel()
    prev = torch.cat([torch.zeros(1, dtype=recall.dtype), recall[:-1]])
    return float(((recall - prev) * precision).sum())


def hits_at_k(pos: torch.Tensor, neg: torch.Tensor, k: int) -> float:
    """OGB Hits@K: the fraction of ``pos`` [m] strictly above the K-th highest of the shared ``neg`` [H]."""
    k = V.integer("hits_at_k", "k", k, minimum=1)
    p, n = _scores("hits_at_k", "pos", pos).flatten(), _scores("hits_at_k", "neg", neg).flatten()
    if p.numel() == 0:
        return float("nan")
    if n.numel() < k:
        return 1.0
    kth = n.topk(k).values[-1]
    return float((p > kth).double().mean())


def mrr(pos: torch.Tensor, neg: torch.Tensor, valid: torch.Tensor | None = None) -> float:
    """Mean reciprocal rank of ``pos`` [m] against its row of ``neg`` [m, k] (``valid`` [m, k] masks slots out);
    ties count ½."""
    p, n = _scores("mrr", "pos", pos).flatten(), _scores("mrr", "neg", neg)
    if n.dim() != 2 or n.shape[0] != p.numel():
        raise ValueError(f"mrr: 'neg' must be [m, k] with m = len(pos) = {p.numel()} (got {V.describe(neg)})")
    if p.numel() == 0:
        return float("nan")
    v = torch.ones_like(n, dtype=torch.bool) if valid is None else valid.cpu()
    better = ((n > p[:, None]) & v).sum(1).double()
    equal = ((n == p[:, None]) & v).sum(1).double()
    return float((1.0 / (1.0 + better + 0.5 * equal)).mean())


@torch.no_grad()
def score_in_chunks(score_pairs, pairs: torch.Tensor, chunk: int) -> torch.Tensor:
    """``score_pairs`` over ``pairs`` [P, 2] in chunks of ``chunk`` rows -> float [P] on the CPU."""
    if pairs.shape[0] == 0:
        return torch.zeros(0)
    return torch.cat([score_pairs(pairs[s : s + chunk]).detach().float().cpu()
                      for s in range(0, pairs.shape[0], chunk)])


@torch.no_grad()
def evaluate(score_pairs, split, part: str, *, chunk: int = 65536, ks=HITS_KS) -> dict:
    """All metrics of ``part`` (``"valid"`` or ``"test"``) of ``split``:
    ``{"auc", "ap", "hits@20", "hits@50", "hits@100", "mrr", "count", "hits_negatives", "mrr_negatives"}``."""
    V.choice("evaluate", "part", part, ("valid", "test"))
    pos_pairs = getattr(split, part)
    neg_pairs = getattr(split, f"{part}_neg")
    hits_neg = getattr(split, f"hits_{part}_neg")
    mrr_neg = getattr(split, f"{part}_mrr_neg")
    m, k = mrr_neg.shape if mrr_neg.dim() == 2 else (0, 0)
    mrr_valid = mrr_neg >= 0
    mrr_pairs = torch.stack([pos_pairs[:, 0, None].expand(-1, k), mrr_neg.clamp_min(0)], -1).reshape(-1, 2)
    sc = score_in_chunks(score_pairs, torch.cat([pos_pairs, neg_pairs, hits_neg, mrr_pairs]), chunk)
    a, b, c = pos_pairs.shape[0], neg_pairs.shape[0], hits_neg.shape[0]
    pos, neg, hn, mn = sc[:a], sc[a : a + b], sc[a + b : a + b + c], sc[a + b + c :].view(m, k)
    out = {"auc": auc(pos, neg), "ap": average_precision(pos, neg)}
    for kk in ks:
        out[f"hits@{kk}"] = hits_at_k(pos, hn, kk)
    out["mrr"] = mrr(pos, mn, mrr_valid) if k else float("nan")
    out.update(count=a, hits_negatives=c, mrr_negatives=k)
    return out
