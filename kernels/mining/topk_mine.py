"""topk_mine, Triton: fused scores + exclusion + selection, no B×N writes (the tile pipeline of ``_tiles.py``).

The fast path is the two-pass launch with keys = scores: pass 1 writes each row's maximum score per segment of
SEG tiles, whose k-th largest is a lower bound on the row's k-th best score; pass 2 computes the same tiles
(identical arithmetic) and appends the few elements >= that bound to a per-row buffer (atomic per-row
counters), reduced exactly with torch. Rows whose buffer overflows (massive ties) are recomputed by the
insertion kernel (a running top-k per row, exact for any input). Per-(row, chunk) lists are merged with the
full (score desc, id asc) order on the host side.
"""
from __future__ import annotations

import torch

from hardneg._constants import METRICS
from hardneg.kernels.mining._plan import next_pow2
from hardneg.kernels.mining._tiles import csr_rows, insertion, prepare_inputs, two_pass


def merge_chunks(vals: torch.Tensor, ids: torch.Tensor, k: int):
    """vals/ids [B, chunks*KP] -> top-k per row by (value desc, id asc); pads (+inf slots) dropped."""
    vals = torch.where(torch.isposinf(vals), torch.full_like(vals, float("-inf")), vals)
    by_id = torch.argsort(torch.where(ids < 0, torch.iinfo(torch.int64).max, ids), dim=1, stable=True)
    v1 = torch.gather(vals, 1, by_id)
    by_v = torch.argsort(-v1, dim=1, stable=True)
    order = torch.gather(by_id, 1, by_v)[:, :k]
    v = torch.gather(vals, 1, order)
    i = torch.gather(ids, 1, order)
    i = torch.where(torch.isneginf(v), torch.full_like(i, -1), i)
    if v.shape[1] < k:
        pad = k - v.shape[1]
        v = torch.cat([v, v.new_full((v.shape[0], pad), float("-inf"))], 1)
        i = torch.cat([i, i.new_full((i.shape[0], pad), -1)], 1)
    return v, i


def _insertion_topk(q, c, k, metric, ex, *, op="topk_mine", weight=None):
    """Exact running-top-k kernel (any input; slower)."""
    kk = min(k, c.shape[0])
    KP = max(2, next_pow2(kk))
    if KP > 1024:
        raise ValueError(f"{op}: the triton backend supports min(k, N) <= 1024 (got {kk}); use backend='reference'")
    kept = insertion(q, c, kk, KP, metric, ex, weight=weight)
    return merge_chunks(kept.key, kept.ids, k)


def topk_mine_triton(q, c, k, metric, ex):
    q, c = prepare_inputs(q, c)
    return select_topk(q, c, k, metric, ex)


def select_topk(q, c, k, metric, ex, *, op="topk_mine", weight=None):
    """The two-pass selection with its exact fallback, for any metric code of the tile pipeline (``weight``: the
    MLP metric's [d] weights)."""
    B, N = q.shape[0], c.shape[0]
    if N >= 2**31 - 1:
        raise ValueError(f"{op}: the triton backend supports N < 2**31 (got {N})")
    sv = two_pass(q, c, k, metric, ex, weight=weight)
    admissible = torch.full((B,), N, dtype=torch.int64, device=q.device)
    if ex is not None:
        admissible -= ex[0][1:] - ex[0][:-1]
    need = torch.minimum(admissible, torch.full_like(admissible, k))
    bad = (sv.count > sv.cap) | (sv.count < need)  # overflow (massive ties); under-fill cannot happen with a true bound
    out_v, out_i = merge_chunks(sv.key, sv.ids, k)
    idx = bad.nonzero().flatten()
    if idx.numel():  # exact fallback for the rows whose buffer overflowed
        sub_ex = csr_rows(ex, idx)
        if next_pow2(min(k, N)) > 1024:  # beyond the insertion kernel's registers: exact torch on the device
            from hardneg.reference import mining as _ref

            if weight is None:
                fv, fi = _ref.topk_mine(q[idx], c, k, metric=METRICS[metric], exclude=sub_ex)
            else:
                fv, fi = _ref.mlp_topk_mine(q[idx], c, weight, k, exclude=sub_ex)
        else:
            fv, fi = _insertion_topk(q[idx], c, k, metric, sub_ex, op=op, weight=weight)
        out_v[idx] = fv
        out_i[idx] = fi
    return out_v, out_i
