"""Temporal link-prediction metrics: AP / AUC with one negative per event (DyGLib), and ranking metrics (TGB).

* :func:`average_precision` and :func:`roc_auc` are exact and follow scikit-learn's definitions
  (``average_precision_score``: Σ (Rₙ − Rₙ₋₁) Pₙ over distinct thresholds; ``roc_auc_score``: ties count 1/2).
  DyGLib reports the mean over evaluation batches of the per-batch value; :class:`BatchedAPAUC` keeps that
  ("ap", "auc") and the value over all events at once ("ap_global", "auc_global").
* :func:`rank_counts` ranks each event's true destination among all destination candidates by the model's
  own decoder score, tile by tile (memory O(B·tile·d); never an [events × nodes] matrix, nor even [B × N]):
  two passes over the candidate tiles, the first reading each row's true score from its own tile (so the true
  score is computed exactly as every competitor's: ties are exact), the second counting strictly better and
  equal competitors. Ties count as the mean of the optimistic and pessimistic ranks (TGB, PyKEEN's
  "realistic"). Recall@k is the expected hit under uniformly random tie-breaking,
  ``clamp((k − opt + 1) / (pes − opt + 1), 0, 1)``, which is 1 / 0 without ties.
"""
from __future__ import annotations

import torch

from ... import _validate as V


def _check_scores(op, y_true, y_score):
    y_true = V.tensor(op, "y_true", y_true, ndim=1)
    y_score = V.tensor(op, "y_score", y_score, ndim=1)
    if y_true.numel() != y_score.numel():
        raise ValueError(f"{op}: 'y_true' and 'y_score' must have the same length (got {y_true.numel()} and "
                         f"{y_score.numel()})")
    return y_true.double(), y_score.double()


def average_precision(y_true, y_score) -> float:
    """Average precision (scikit-learn's ``average_precision_score``); NaN without a positive."""
    y, s = _check_scores("average_precision", y_true, y_score)
    if not bool((y > 0).any()):
        return float("nan")
    order = torch.argsort(s, descending=True, stable=True)
    s, y = s[order], y[order]
    ends = torch.cat([torch.nonzero(s[1:] != s[:-1]).flatten(), torch.tensor([s.numel() - 1])])
    tps = torch.cumsum(y, 0)[ends]
    precision = tps / (ends + 1).double()
    recall = tps / tps[-1]
    return float((torch.diff(recall, prepend=recall.new_zeros(1)) * precision).sum())


def roc_auc(y_true, y_score) -> float:
    """Area under the ROC curve (ties count 1/2); NaN unless both classes occur."""
    y, s = _check_scores("roc_auc", y_true, y_score)
    P = float((y > 0).sum())
    Nn = y.numel() - P
    if P == 0 or Nn == 0:
        return float("nan")
    _, inv, counts = torch.unique(s, return_inverse=True, return_counts=True)
    cum = torch.cumsum(counts, 0).double()
    rank = (cum - (counts.double() - 1) / 2)[inv]  # average 1-based ranks of ties
    return float(((rank * (y > 0)).sum() - P * (P + 1) / 2) / (P * Nn))


class BatchedAPAUC:
    """AP and AUC of positive vs negative scores, per evaluation batch (averaged, as DyGLib reports) and over
    all batches at once (global)."""

    def __init__(self):
        self.ap, self.auc, self.pos, self.neg = [], [], [], []

    def add(self, pos: torch.Tensor, neg: torch.Tensor) -> None:
        pos, neg = pos.detach().double().cpu().flatten(), neg.detach().double().cpu().flatten()
        if not pos.numel():
            return
        y = torch.cat([torch.ones_like(pos), torch.zeros_like(neg)])
        s = torch.cat([pos, neg])
        self.ap.append(average_precision(y, s))
        self.auc.append(roc_auc(y, s))
        self.pos.append(pos)
        self.neg.append(neg)

    def result(self) -> dict:
        if not self.pos:
            nan = float("nan")
            return {"ap": nan, "auc": nan, "ap_global": nan, "auc_global": nan, "count": 0}
        pos, neg = torch.cat(self.pos), torch.cat(self.neg)
        y = torch.cat([torch.ones_like(pos), torch.zeros_like(neg)])
        s = torch.cat([pos, neg])
        return {"ap": sum(self.ap) / len(self.ap), "auc": sum(self.auc) / len(self.auc),
                "ap_global": average_precision(y, s), "auc_global": roc_auc(y, s), "count": int(pos.numel())}


def _tile_mask(exclude, rows_lo, lo, hi, B, device):
    """bool [B, hi-lo]: True at the excluded (row, candidate) pairs falling in candidates [lo, hi)."""
    m = torch.zeros(B, hi - lo, dtype=torch.bool, device=device)
    if exclude is None:
        return m
    ptr, idx = exclude
    if idx.numel():
        row = torch.repeat_interleave(torch.arange(B, device=device), ptr.diff())
        inside = (idx >= lo) & (idx < hi)
        m[row[inside], idx[inside] - lo] = True
    return m


def offset_scores(s, combine, queries, candidates, offsets, pos, lo, hi):
    """Overwrite in the tile scores ``s`` [b, hi-lo] the (row, candidate) pairs of ``offsets`` inside the tile
    (candidates lo..hi-1) with ``combine(queries[row], candidates[col] + delta)``; ``pos`` [B]: each row's row
    in ``s`` (-1: absent). Returns ``s``."""
    if offsets is None:
        return s
    row, col, delta = offsets
    at = (col >= lo) & (col < hi) & (pos[row] >= 0)
    if bool(at.any()):
        r, c = row[at], col[at]
        v = combine(queries[r][:, None, :], (candidates[c] + delta[at])[:, None, :]).float()[:, 0]
        s[pos[r], c - lo] = v
    return s


@torch.no_grad()
def rank_counts(combine, queries: torch.Tensor, candidates: torch.Tensor, target: torch.Tensor, *,
                exclude=None, offsets=None, tile: int = 256):
    """For each row b, among the candidates other than ``target[b]`` and the excluded ones, how many score
    strictly higher than the target and how many exactly as high, where score(b, c) =
    ``combine(queries[b], candidates[c])``.

    Args:
        combine: ``combine(q [B, 1, d], c [1, T, d]) -> [B, T]`` (e.g. :meth:`LinkDecoder.combine`).
        queries: [B, d]; candidates: [N, d]; target: [B] int64 row indices into candidates.
        exclude: optional CSR ``(indptr [B+1], indices)`` of candidate rows that never count (other true
            destinations of the same query).
        offsets: optional sparse per-pair terms ``(row [E], col [E], delta [E, d])``: score(row, col) is then
            ``combine(queries[row], candidates[col] + delta)`` (a decoder's pair term that is 0 elsewhere,
            :meth:`TemporalModel.pair_entries`); a pair listed twice must carry the same delta.
        tile: candidates per tile.

    Returns:
        ``(greater [B], equal [B])`` int64.
    """
    op = "rank_counts"
    B, N = queries.shape[0], candidates.shape[0]
    target = V.tensor(op, "target", target, ndim=1, dtypes=V.INDEX_DTYPES, kind="integer tensor")
    if target.numel() != B:
        raise ValueError(f"{op}: 'target' must have one entry per query ({B}; got {target.numel()})")
    target = V.ids(op, "target", target, N, what="rows")
    tile = V.integer(op, "tile", tile, minimum=1)
    dev = queries.device
    if offsets is not None:
        if not isinstance(offsets, (tuple, list)) or len(offsets) != 3:
            raise TypeError(f"{op}: 'offsets' must be a tuple (row, col, delta) (got {V.describe(offsets)})")
        row = V.tensor(op, "offsets row", offsets[0], dtypes=V.INDEX_DTYPES, kind="integer tensor")
        col = V.tensor(op, "offsets col", offsets[1], dtypes=V.INDEX_DTYPES, kind="integer tensor")
        delta = V.tensor(op, "offsets delta", offsets[2])
        if delta.dtype != candidates.dtype or delta.device != candidates.device:
            raise ValueError(f"{op}: 'offsets' delta must have the candidates' dtype and device ({candidates.dtype} "
                             f"on {candidates.device}; got {delta.dtype} on {delta.device})")
        if not (row.dim() == col.dim() == 1 and delta.dim() == 2 and row.numel() == col.numel() == delta.shape[0]
                and delta.shape[1] == candidates.shape[1]):
            raise ValueError(f"{op}: 'offsets' must be (row [E], col [E], delta [E, {candidates.shape[1]}]) (got "
                             f"{tuple(row.shape)}, {tuple(col.shape)}, {tuple(delta.shape)})")
        V.ids(op, "offsets row", row, B, what="rows")
        V.ids(op, "offsets col", col, N, what="candidate rows")
        offsets = (row.long(), col.long(), delta)
    q = queries[:, None, :]
    true = torch.empty(B, dtype=torch.float32, device=dev)
    rows = torch.arange(B, device=dev)
    for lo in range(0, N, tile):  # pass 1: each row's true score, from its own tile
        hi = min(N, lo + tile)
        inside = (target >= lo) & (target < hi)
        if bool(inside.any()):
            s = combine(q[inside], candidates[None, lo:hi]).float()
            pos = torch.where(inside, torch.cumsum(inside, 0) - 1, -1)
            s = offset_scores(s, combine, queries, candidates, offsets, pos, lo, hi)
            true[inside] = s[torch.arange(s.shape[0], device=dev), target[inside] - lo]
    greater = torch.zeros(B, dtype=torch.int64, device=dev)
    equal = torch.zeros(B, dtype=torch.int64, device=dev)
    for lo in range(0, N, tile):  # pass 2: count the competitors
        hi = min(N, lo + tile)
        s = offset_scores(combine(q, candidates[None, lo:hi]).float(), combine, queries, candidates, offsets, rows,
                           lo, hi)
        skip = _tile_mask(exclude, rows, lo, hi, B, dev)
        inside = (target >= lo) & (target < hi)
        skip[rows[inside], target[inside] - lo] = True
        greater += ((s > true[:, None]) & ~skip).sum(1)
        equal += ((s == true[:, None]) & ~skip).sum(1)
    return greater, equal


def rank_metrics(greater: torch.Tensor, equal: torch.Tensor, ks=(10, 20)) -> dict:
    """MRR (realistic ranks: the mean of optimistic 1 + greater and pessimistic 1 + greater + equal) and
    Recall@k (expected under random tie-breaking) from :func:`rank_counts`."""
    if greater.numel() == 0:
        return {"mrr": float("nan"), **{f"recall@{k}": float("nan") for k in ks}, "count": 0}
    opt = 1.0 + greater.double()
    pes = opt + equal.double()
    out = {"mrr": float((2.0 / (opt + pes)).mean())}
    for k in ks:
        out[f"recall@{k}"] = float(((k - opt + 1) / (pes - opt + 1)).clamp(0, 1).mean())
    out["count"] = int(greater.numel())
    return out


def group_exclusion(src: torch.Tensor, t: torch.Tensor, dst: torch.Tensor):
    """CSR over the events: for each event, the destinations of the *other* events with the same source and
    time (other true answers of the same query), as ``(indptr [B+1], dst ids)``."""
    B = src.numel()
    if B == 0:
        return torch.zeros(1, dtype=torch.int64), torch.zeros(0, dtype=torch.int64)
    _, grp = torch.unique(torch.stack([src, torch.unique(t, return_inverse=True)[1]], 1), dim=0, return_inverse=True)
    order = torch.argsort(grp, stable=True)
    size = torch.bincount(grp)
    start = torch.cumsum(size, 0) - size
    cnt = size[grp]  # members of each event's group, itself included
    row = torch.repeat_interleave(torch.arange(B), cnt)
    at = torch.arange(int(cnt.sum())) - torch.repeat_interleave(torch.cumsum(cnt, 0) - cnt, cnt)
    member = order[start[grp[row]] + at]
    keep = (member != row) & (dst[member] != dst[row])
    row, member = row[keep], member[keep]
    ptr = torch.zeros(B + 1, dtype=torch.int64)
    ptr[1:] = torch.cumsum(torch.bincount(row, minlength=B), 0)
    return ptr, dst[member]
