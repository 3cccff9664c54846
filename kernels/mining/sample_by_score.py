"""sample_by_score, Triton: the topk_mine tile pipeline (``_tiles.py``) with Gumbel keys and a streaming
log-sum-exp.

Without replacement: key g = l + G with G = -log(E), E = Exp(1) from Philox(seed; col, row), and the n largest
keys per row are an exact sequential draw; the two-pass launch keeps them (the insertion kernel recomputes rows
whose buffer overflows) and the same pass accumulates (max, sum) of exp(l) per (row, chunk).
With replacement: the insertion kernel without selection gives the log-sum-exp; :func:`_cdf_kernel` then walks
the candidates again with a float64 running CDF and places n sorted uniform targets per row (inverse CDF).
"""
from __future__ import annotations

import math

import torch
import triton
import triton.language as tl

from hardneg._constants import METRICS, WEIGHTINGS
from hardneg.kernels.mining._plan import next_pow2
from hardneg.kernels.mining._tiles import (csr_rows, insertion, logits, masked_tile, precision, prepare_inputs,
                                            program_rows, two_pass)


@triton.jit
def _cdf_kernel(q_ptr, ldq, c_ptr, ldc, B, N, D, ex_ptr_ptr, ex_idx_ptr,
                inv_temp, m_ptr, tgt_ptr, perm_ptr, n, out_i_ptr,
                WEIGHTING: tl.constexpr, METRIC: tl.constexpr, HAS_EX: tl.constexpr,
                BM: tl.constexpr, BN: tl.constexpr, BD: tl.constexpr, BDS: tl.constexpr,
                UPCAST: tl.constexpr, IEEE: tl.constexpr):
    """Inverse-CDF placement of n sorted targets per row (in units of sum exp(l - m_row)); float64 CDF. Grid:
    row blocks only (one chunk: all N candidates), so the exclusion cursors start at indptr[row]."""
    rows, row_ok, _pid_c, c0, c1, q, qaux, ep, ee = program_rows(q_ptr, ldq, B, N, D, N, ex_ptr_ptr, ex_ptr_ptr, 1,
                                                                 METRIC, HAS_EX, BM, BD)
    m_row = tl.load(m_ptr + rows, mask=row_ok, other=0.0)
    m_row = tl.where(m_row == float("-inf"), 0.0, m_row)
    tp = tl.zeros((BM,), dtype=tl.int64)
    base = rows.to(tl.int64) * n
    cur = tl.load(tgt_ptr + base + tp, mask=row_ok & (tp < n), other=float("inf"))
    carry = tl.zeros((BM,), dtype=tl.float64)
    last = tl.full((BM,), -1, dtype=tl.int64)
    for t0 in range(c0, c1, BN):
        s, cols, ep = masked_tile(q, qaux, q_ptr, ldq, rows, row_ok, c_ptr, ldc, q_ptr, t0, c1,  # (no weights)
                                  D, ex_idx_ptr, ep, ee,
                                  METRIC, HAS_EX, BM, BN, BD, BDS, UPCAST, IEEE)
        l = logits(s, WEIGHTING, inv_temp)
        w = tl.where(l == float("-inf"), 0.0, tl.exp(l - m_row[:, None])).to(tl.float64)
        last = tl.maximum(last, tl.max(tl.where(w > 0, cols[None, :].to(tl.int64), -1), 1))
        cs = tl.cumsum(w, 1) + carry[:, None]
        total = carry + tl.sum(w, 1)
        hit = cur < total
        while tl.max(hit.to(tl.int32), 0) > 0:
            pos = tl.sum((cs < cur[:, None]).to(tl.int32), 1)
            pos = tl.minimum(pos, BN - 1)
            dst = tl.load(perm_ptr + base + tp, mask=hit & row_ok, other=0)
            tl.store(out_i_ptr + base + dst, (t0 + pos).to(tl.int64), mask=hit & row_ok)
            tp = tp + hit.to(tl.int64)
            cur = tl.load(tgt_ptr + base + tp, mask=row_ok & (tp < n), other=float("inf"))
            hit = cur < total
        carry = total
    # targets left over by rounding at the very top of the CDF go to the last admissible candidate
    while tl.max((row_ok & (tp < n)).to(tl.int32), 0) > 0:
        left = row_ok & (tp < n)
        dst = tl.load(perm_ptr + base + tp, mask=left, other=0)
        tl.store(out_i_ptr + base + dst, last, mask=left)
        tp = tp + left.to(tl.int64)


def _gather_logits(q, c, ids, metric, weighting, temperature):
    """float64 logits of the drawn ids (from the float32 rows the kernels read)."""
    from hardneg.reference.mining import logits as ref_logits, pair_scores

    return ref_logits(pair_scores(q.float(), c.float(), ids, METRICS[metric]), WEIGHTINGS[weighting], temperature)


def _lse_rows(out_m, out_z):
    m = out_m.max(dim=1).values
    safe_m = torch.where(torch.isneginf(m), torch.zeros_like(m), m)
    z = (out_z.double() * torch.exp((out_m - safe_m[:, None]).double())).sum(1)
    return safe_m.double() + torch.log(z), z


def _top_draws(key, ids, logit, kk, lse):
    """The kk largest keys per row as (ids, log_prob): padding -1 / -inf where a key is -inf."""
    top = torch.topk(key, kk, dim=1)
    out = torch.gather(ids, 1, top.indices)
    lg = torch.gather(logit, 1, top.indices).double()
    dead = torch.isneginf(top.values)
    return (torch.where(dead, torch.full_like(out, -1), out),
            torch.where(dead, torch.full_like(lg, float("-inf")), lg - lse[:, None]).float())


def _pad(ids, lp, n):
    kk = ids.shape[1]
    if kk < n:
        ids = torch.cat([ids, ids.new_full((ids.shape[0], n - kk), -1)], 1)
        lp = torch.cat([lp, lp.new_full((lp.shape[0], n - kk), float("-inf"))], 1)
    return ids, lp


def _two_pass_no_replacement(q, c, n, metric, weighting, temperature, ex, seed):
    """Exact Gumbel-top-n in two fused passes (segment-max bound, then thresholded append + log-sum-exp), the
    design that made topk_mine fast; rows whose buffer overflows fall back to the insertion kernel."""
    N = c.shape[0]
    kk = min(n, N)
    sv = two_pass(q, c, kk, metric, ex, keys=True, weighting=weighting, inv_temp=1.0 / temperature, seed=seed)
    lse, _z = _lse_rows(sv.chunk_max, sv.chunk_sum)
    ids, lp = _top_draws(sv.key, sv.ids, sv.logit, min(kk, sv.cap), lse)
    # a finite bound means >= kk admissible candidates exist; overflow is the only other case
    bad = (sv.count > sv.cap) | (torch.isfinite(sv.bound) & (sv.count < kk))
    idx = bad.nonzero().flatten()
    if idx.numel():  # exact fallback (massive ties in the keys cannot happen; overflow is the only case)
        sub_ex = csr_rows(ex, idx)
        if next_pow2(kk) > 1024:  # beyond the insertion kernel's registers: the exact torch reference
            from hardneg.reference.mining import sample_by_score as _ref_sample

            gen = torch.Generator(device=q.device).manual_seed(int(seed) & (2**63 - 1))
            fi, fl = _ref_sample(q[idx], c, n, metric=METRICS[metric], weighting=WEIGHTINGS[weighting],
                                 temperature=temperature, exclude=sub_ex, generator=gen)
        else:
            fi, fl = _insertion_sample(q[idx], c, n, metric, weighting, temperature, sub_ex, seed)
        ids[idx], lp[idx] = fi[:, :kk], fl[:, :kk]
    return _pad(ids, lp, n)


def sample_by_score_triton(q, c, n, metric, weighting, temperature, ex, replacement, seed):
    q, c = prepare_inputs(q, c)
    if not replacement:  # any n: only the (rare) overflow fallback is register-limited
        return _two_pass_no_replacement(q, c, n, metric, weighting, temperature, ex, seed)
    return _insertion_sample(q, c, n, metric, weighting, temperature, ex, seed, replacement)


def _insertion_sample(q, c, n, metric, weighting, temperature, ex, seed, replacement=False):
    B, d = q.shape
    N = c.shape[0]
    kk = min(n, N)
    KP = max(2, next_pow2(kk)) if not replacement else 2
    if KP > 1024:
        raise ValueError(f"sample_by_score: the triton backend supports min(n, N) <= 1024 without replacement (got {kk})")
    kept = insertion(q, c, kk, KP, metric, ex, select=not replacement, keys=True, weighting=weighting,
                     inv_temp=1.0 / temperature, seed=seed)
    lse, z = _lse_rows(kept.chunk_max, kept.chunk_sum)  # -inf where nothing is admissible
    if not replacement:
        key = torch.where(torch.isposinf(kept.key), torch.full_like(kept.key, float("-inf")), kept.key)
        return _pad(*_top_draws(key, kept.ids, kept.logit, kk, lse), n)
    # with replacement: sorted targets u * Z per row, pass 2 places them
    dev = q.device
    p = kept.plan
    u = torch.rand(B, n, generator=torch.Generator(device="cpu").manual_seed(int(seed) & (2**63 - 1)),
                   dtype=torch.float64).to(dev)
    tgt, perm = torch.sort(u * z[:, None], dim=1)
    ids = torch.full((B, n), -1, dtype=torch.int64, device=dev)
    has_ex = ex is not None and bool(ex[1].numel())
    ex_ptr, ex_idx = (ex[0].contiguous(), ex[1].contiguous()) if has_ex else (torch.zeros(1, dtype=torch.int64,
                                                                                         device=dev),) * 2
    _cdf_kernel[(math.ceil(B / p.BM),)](
        q, q.stride(0), c, c.stride(0), B, N, d, ex_ptr, ex_idx, 1.0 / temperature,
        kept.chunk_max.max(dim=1).values.contiguous(), tgt.contiguous(), perm.contiguous(), n, ids,
        WEIGHTING=weighting, METRIC=metric, HAS_EX=has_ex, **precision(q), **p.meta())
    dead = torch.isneginf(lse) | ~(z > 0)
    ids = torch.where(dead[:, None], torch.full_like(ids, -1), ids)
    lp = (_gather_logits(q, c, ids, metric, weighting, temperature) - lse[:, None]).float()
    return ids, torch.where(ids < 0, torch.full_like(lp, float("-inf")), lp)
