"""The fused tile pipeline of the mining family, shared by topk_mine and sample_by_score.

A program owns BM query rows and one contiguous chunk of candidates (grid: row blocks x chunks, sized by
``_plan.py``), and walks the chunk in tiles of BN. Every kernel starts with the same prologue
(:func:`program_rows`) and scores each tile the same way (:func:`masked_tile`): dot/cos/l2 tiles are one
``tl.dot`` over the whole (padded) feature dimension, accumulated in float32; l1 and rotate have no matrix form
and reduce BM×BN×BDS broadcasts slice by slice; excluded ids are masked through per-row cursors into the
sorted CSR. Nothing of size B×N is written.

A tile's *keys* are what a kernel selects by: the scores (``KEYS=0``, topk_mine) or Gumbel-perturbed logits
(``KEYS=1``, sample_by_score without replacement: the largest n keys are an exact sequential draw). Three
kernels consume them:

* :func:`segmax_kernel`: each row's largest key per segment of SEG tiles (pass 1 of the two-pass path: the
  k-th largest segment maximum is a lower bound on the row's k-th best key, tight when segments >> k);
* :func:`filter_kernel`: every (key, id, logit) at or above the row's bound, appended to a per-row buffer
  (pass 2), plus the streaming log-sum-exp of the logits (keys only);
* :func:`insertion_kernel`: a running top-k per row (:func:`topk_insert`; exact for any input) and/or the
  log-sum-exp.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import torch
import triton
import triton.language as tl

from hardneg._backend import triton_interpreting
from hardneg._constants import METRICS, code
from hardneg.kernels.mining._plan import Plan, plan_insertion, plan_two_pass

METRIC_DOT = tl.constexpr(code(METRICS, "dot"))
METRIC_COS = tl.constexpr(code(METRICS, "cos"))
METRIC_L2 = tl.constexpr(code(METRICS, "l2"))
METRIC_L1 = tl.constexpr(code(METRICS, "l1"))
METRIC_ROTATE = tl.constexpr(code(METRICS, "rotate"))
METRIC_MLP = tl.constexpr(len(METRICS))  # mlp_topk_mine's decoder score (not a METRICS name); kMlp in C++


# ------------------------------------------------------------------------------------------ device helpers
@triton.jit
def load_query_block(q_ptr, ldq, rows, row_ok, D, BD: tl.constexpr):
    offs_d = tl.arange(0, BD)
    return tl.load(q_ptr + rows[:, None].to(tl.int64) * ldq + offs_d[None, :],
                   mask=row_ok[:, None] & (offs_d[None, :] < D), other=0.0)


@triton.jit
def query_aux(q, METRIC: tl.constexpr):
    """Per-row term for cos (inverse norm) and l2 (squared norm); fp32."""
    qf = q.to(tl.float32)
    sq = tl.sum(qf * qf, 1)
    if METRIC == METRIC_COS:
        return 1.0 / tl.maximum(tl.sqrt(sq), 1e-12)
    else:
        return sq


@triton.jit
def program_rows(q_ptr, ldq, B, N, D, chunk, ex_ptr_ptr, ex_start_ptr, n_chunks,
                 METRIC: tl.constexpr, HAS_EX: tl.constexpr, BM: tl.constexpr, BD: tl.constexpr):
    """The prologue of every mining kernel: this program's query rows and candidate range [c0, c1), the query
    block [BM, BD] with its metric term, and each row's exclusion cursor ``ep`` (index of its first excluded
    id >= c0, from ``ex_start`` [B, n_chunks]) and end ``ee``."""
    pid_c = tl.program_id(1)
    rows = tl.program_id(0) * BM + tl.arange(0, BM)
    row_ok = rows < B
    c0 = pid_c * chunk
    c1 = tl.minimum(c0 + chunk, N)
    q = load_query_block(q_ptr, ldq, rows, row_ok, D, BD)
    qaux = query_aux(q, METRIC)
    if HAS_EX:
        ep = tl.load(ex_start_ptr + rows.to(tl.int64) * n_chunks + pid_c, mask=row_ok, other=0)
        ee = tl.load(ex_ptr_ptr + rows + 1, mask=row_ok, other=0)
    else:
        ep = tl.zeros((BM,), dtype=tl.int64)
        ee = ep
    return rows, row_ok, pid_c, c0, c1, q, qaux, ep, ee


@triton.jit
def score_tile(q, qaux, q_ptr, ldq, rows, row_ok, c_ptr, ldc, w_ptr, cols, col_ok, D,
               METRIC: tl.constexpr, BM: tl.constexpr, BN: tl.constexpr, BD: tl.constexpr, BDS: tl.constexpr,
               UPCAST: tl.constexpr, IEEE: tl.constexpr):
    """Scores [BM, BN] (fp32) of the query block against candidate rows ``cols``; invalid columns -> -inf."""
    cols64 = cols.to(tl.int64)
    if METRIC <= METRIC_L2:
        offs_d = tl.arange(0, BD)
        c = tl.load(c_ptr + cols64[:, None] * ldc + offs_d[None, :],
                    mask=col_ok[:, None] & (offs_d[None, :] < D), other=0.0)
        if UPCAST:  # the interpreter's bf16 dot is wrong: compute in fp32 there
            s = tl.dot(q.to(tl.float32), tl.trans(c.to(tl.float32)))
        else:
            if IEEE:
                # fp32 inputs: three tf32 tensor-core products (~fp32 accuracy); the "ieee" FMA path measured
                # 0.7 TFLOP/s on the H100 (1.46 s for B=4096 N=1M d=128)
                s = tl.dot(q, tl.trans(c), input_precision="tf32x3")
            else:
                s = tl.dot(q, tl.trans(c))
        if METRIC == METRIC_COS:
            cf = c.to(tl.float32)
            cinv = 1.0 / tl.maximum(tl.sqrt(tl.sum(cf * cf, 1)), 1e-12)
            s = s * qaux[:, None] * cinv[None, :]
        elif METRIC == METRIC_L2:
            cf = c.to(tl.float32)
            s = 2.0 * s - qaux[:, None] - tl.sum(cf * cf, 1)[None, :]
    else:
        acc = tl.zeros((BM, BN), dtype=tl.float32)
        offs = tl.arange(0, BDS)
        if METRIC != METRIC_ROTATE:  # l1, and the MLP decoder's sum_k w_k relu(q_k + c_k): one slice at a time
            for d0 in range(0, D, BDS):
                dd = d0 + offs
                qs = tl.load(q_ptr + rows[:, None].to(tl.int64) * ldq + dd[None, :],
                             mask=row_ok[:, None] & (dd[None, :] < D), other=0.0).to(tl.float32)
                cs = tl.load(c_ptr + cols64[:, None] * ldc + dd[None, :],
                             mask=col_ok[:, None] & (dd[None, :] < D), other=0.0).to(tl.float32)
                if METRIC == METRIC_MLP:
                    ws = tl.load(w_ptr + dd, mask=dd < D, other=0.0).to(tl.float32)
                    acc += tl.sum(tl.maximum(qs[:, None, :] + cs[None, :, :], 0.0) * ws[None, None, :], 2)
                else:
                    acc += tl.sum(tl.abs(qs[:, None, :] - cs[None, :, :]), 2)
        else:
            half = D // 2
            for d0 in range(0, half, BDS):
                dd = d0 + offs
                qm = row_ok[:, None] & (dd[None, :] < half)
                cm = col_ok[:, None] & (dd[None, :] < half)
                qbase = q_ptr + rows[:, None].to(tl.int64) * ldq + dd[None, :]
                cbase = c_ptr + cols64[:, None] * ldc + dd[None, :]
                qr = tl.load(qbase, mask=qm, other=0.0).to(tl.float32)
                qi = tl.load(qbase + half, mask=qm, other=0.0).to(tl.float32)
                cr = tl.load(cbase, mask=cm, other=0.0).to(tl.float32)
                ci = tl.load(cbase + half, mask=cm, other=0.0).to(tl.float32)
                dr = qr[:, None, :] - cr[None, :, :]
                di = qi[:, None, :] - ci[None, :, :]
                acc += tl.sum(tl.sqrt(dr * dr + di * di), 2)
        s = acc if METRIC == METRIC_MLP else -acc
    return tl.where(col_ok[None, :], s, float("-inf"))


@triton.jit
def mask_excluded(s, cols, t1, ex_idx_ptr, ep, ee):
    """Set s[r, j] = -inf where cols[j] is the next excluded id of row r; advances the per-row pointers.

    Rows' excluded ids are sorted and unique, and ``ep`` starts at the first id >= the chunk start, so every
    id below the tile's end is consumed exactly once. Usually 0 or 1 iterations per tile.
    """
    nxt = tl.load(ex_idx_ptr + ep, mask=ep < ee, other=2**62)
    while tl.max((nxt < t1).to(tl.int32), 0) > 0:
        hit = nxt < t1
        s = tl.where(hit[:, None] & (cols[None, :].to(tl.int64) == nxt[:, None]), float("-inf"), s)
        ep = ep + hit.to(tl.int64)
        nxt = tl.load(ex_idx_ptr + ep, mask=ep < ee, other=2**62)
    return s, ep


@triton.jit
def masked_tile(q, qaux, q_ptr, ldq, rows, row_ok, c_ptr, ldc, w_ptr, t0, c1, D, ex_idx_ptr, ep, ee,
                METRIC: tl.constexpr, HAS_EX: tl.constexpr, BM: tl.constexpr, BN: tl.constexpr,
                BD: tl.constexpr, BDS: tl.constexpr, UPCAST: tl.constexpr, IEEE: tl.constexpr):
    """One tile: scores [BM, BN] of candidates t0 .. t0+BN-1 with columns >= c1, rows >= B and excluded ids
    at -inf. Returns (scores, cols, advanced exclusion cursors)."""
    cols = t0 + tl.arange(0, BN)
    s = score_tile(q, qaux, q_ptr, ldq, rows, row_ok, c_ptr, ldc, w_ptr, cols, cols < c1, D,
                   METRIC, BM, BN, BD, BDS, UPCAST, IEEE)
    s = tl.where(row_ok[:, None], s, float("-inf"))
    if HAS_EX:
        s, ep = mask_excluded(s, cols, t0 + BN, ex_idx_ptr, ep, ee)
    return s, cols, ep


@triton.jit
def logits(s, WEIGHTING: tl.constexpr, inv_temp):
    """log of the sampling weight: softmax s / T; softplus log(softplus(s)) / T. -inf stays -inf."""
    if WEIGHTING == 0:
        return s * inv_temp
    else:
        # log(softplus(s)) / T, with log(softplus(s)) = s to fp32 precision below -15
        t = tl.exp(-tl.abs(s))
        u = 1.0 + t
        l1p = tl.where(u == 1.0, t, tl.log(u) * t / tl.where(u == 1.0, 1.0, u - 1.0))
        sp = tl.maximum(s, 0.0) + l1p
        v = tl.where(s < -15.0, s, tl.log(tl.maximum(sp, 1e-30)))  # 1e-38 would be typed fp64 (below fp32 normals)
        return tl.where(s == float("-inf"), s, v * inv_temp)


@triton.jit
def gumbel_keys(l, seed, rows, cols, BM: tl.constexpr, BN: tl.constexpr):
    """g = l + Gumbel, the Gumbel from Philox(seed; col, row): identical in every kernel that calls it. Two 32-bit
    words give E = Exp(1) down to ~1e-19, so the Gumbel tail is not cut at 24 bits."""
    r0, r1, _r2, _r3 = tl.philox(seed, cols[None, :] + tl.zeros((BM, BN), dtype=tl.int32),
                                 rows[:, None] + tl.zeros((BM, BN), dtype=tl.int32), 0, 0)
    v = r0.to(tl.float32) * 2.3283064365386963e-10 + (r1.to(tl.float32) + 0.5) * 5.421010862427522e-20
    u = 1.0 - v
    e = tl.where(u == 1.0, v, -tl.log(u) * v / tl.where(u == 1.0, 1.0, 1.0 - u))  # -log(1 - v), accurate for small v
    return l - tl.log(e)


@triton.jit
def tile_keys(s, rows, cols, seed, inv_temp, KEYS: tl.constexpr, WEIGHTING: tl.constexpr, BM: tl.constexpr,
              BN: tl.constexpr):
    """(keys, logits) of a tile: (scores, scores) for KEYS=0; (Gumbel keys, logits) for KEYS=1."""
    if KEYS:
        l = logits(s, WEIGHTING, inv_temp)
        g = gumbel_keys(l, seed, rows, cols, BM, BN)
    else:
        l = s
        g = s
    return g, l


@triton.jit
def topk_insert(key, aux, t0, kept_k, kept_i, kept_a, BN: tl.constexpr, KP: tl.constexpr, WITH_AUX: tl.constexpr):
    """The running top-k: every key of the tile [BM, BN] (ids t0 + lane) that beats its row's worst kept entry
    replaces it, best first, until none does. Kept lists are [BM, KP]; slots >= k hold +inf and are never the
    worst. The worst is the smallest key, then the largest id, and ids increase within a program, so an equal
    key never displaces a kept one: ties go to the smaller id. With WITH_AUX, ``aux`` [BM, BN] rides along."""
    kcol = tl.arange(0, KP)
    lane = tl.arange(0, BN)
    surv = key > tl.min(kept_k, 1)[:, None]
    while tl.max(tl.max(surv.to(tl.int32), 1), 0) > 0:
        km = tl.where(surv, key, float("-inf"))
        bv = tl.max(km, 1)
        bj = tl.argmax(km, 1)  # first maximum: the smallest id among ties
        has = tl.max(surv.to(tl.int32), 1) > 0
        wv = tl.min(kept_k, 1)
        wid = tl.max(tl.where(kept_k == wv[:, None], kept_i, -2), 1)
        slot = tl.argmax(((kept_k == wv[:, None]) & (kept_i == wid[:, None])).to(tl.int32), 1)
        put = has[:, None] & (kcol[None, :] == slot[:, None])
        picked = lane[None, :] == bj[:, None]
        kept_k = tl.where(put, bv[:, None], kept_k)
        kept_i = tl.where(put, (t0 + bj).to(tl.int64)[:, None], kept_i)
        if WITH_AUX:
            kept_a = tl.where(put, tl.sum(tl.where(picked, aux, 0.0), 1)[:, None], kept_a)
        key = tl.where(has[:, None] & picked, float("-inf"), key)
        surv = key > tl.min(kept_k, 1)[:, None]
    return kept_k, kept_i, kept_a


@triton.jit
def lse_update(m_run, z_run, l):
    """Online log-sum-exp over tiles: (m, z) with sum = z * exp(m); l is [BM, BN] with -inf for nothing."""
    tm = tl.max(l, 1)
    m_new = tl.maximum(m_run, tm)
    safe = tl.where(m_new == float("-inf"), 0.0, m_new)
    z_run = z_run * tl.exp(m_run - safe) + tl.sum(tl.exp(l - safe[:, None]), 1)
    return m_new, z_run


@triton.jit
def survivor_slots(m, mi, cnt, rows, row_ok, cnt_ptr, cap):
    """Reserve buffer slots for the elements of a tile that passed a row's bound: one atomic per row, then
    positions by a prefix sum. Returns (offsets into a [B, cap] buffer, store mask); overflow past cap is
    counted but not stored, so the caller can detect it from the counter."""
    base = tl.atomic_add(cnt_ptr + rows, cnt, mask=row_ok & (cnt > 0))
    pos = base[:, None] + tl.cumsum(mi, 1) - 1
    return rows[:, None].to(tl.int64) * cap + pos, m & (pos < cap)


# ------------------------------------------------------------------------------------------ kernels
@triton.jit
def segmax_kernel(q_ptr, ldq, c_ptr, ldc, w_ptr, B, N, D, chunk, ex_ptr_ptr, ex_idx_ptr, ex_start_ptr, n_chunks,
                  seed, inv_temp, seg_ptr, n_seg,
                  KEYS: tl.constexpr, WEIGHTING: tl.constexpr, METRIC: tl.constexpr, HAS_EX: tl.constexpr,
                  SEG: tl.constexpr, BM: tl.constexpr, BN: tl.constexpr, BD: tl.constexpr, BDS: tl.constexpr,
                  UPCAST: tl.constexpr, IEEE: tl.constexpr):
    """Pass 1: per row, the largest key of every segment of SEG tiles ([B, n_seg], -inf if none). Each segment
    max is a distinct candidate, so the k-th largest is a lower bound on the row's k-th best key."""
    rows, row_ok, pid_c, c0, c1, q, qaux, ep, ee = program_rows(q_ptr, ldq, B, N, D, chunk, ex_ptr_ptr,
                                                                ex_start_ptr, n_chunks, METRIC, HAS_EX, BM, BD)
    for s0 in range(c0, c1, BN * SEG):
        best = tl.full((BM,), float("-inf"), dtype=tl.float32)
        for t in range(SEG):
            s, cols, ep = masked_tile(q, qaux, q_ptr, ldq, rows, row_ok, c_ptr, ldc, w_ptr, s0 + t * BN, c1, D, ex_idx_ptr,
                                      ep, ee, METRIC, HAS_EX, BM, BN, BD, BDS, UPCAST, IEEE)
            g, _l = tile_keys(s, rows, cols, seed, inv_temp, KEYS, WEIGHTING, BM, BN)
            best = tl.maximum(best, tl.max(g, 1))
        tl.store(seg_ptr + rows.to(tl.int64) * n_seg + s0 // (BN * SEG), best, mask=row_ok)


@triton.jit
def filter_kernel(q_ptr, ldq, c_ptr, ldc, w_ptr, B, N, D, chunk, ex_ptr_ptr, ex_idx_ptr, ex_start_ptr, n_chunks,
                  seed, inv_temp, thr_ptr, cnt_ptr, buf_k_ptr, buf_i_ptr, buf_l_ptr, cap, out_m_ptr, out_z_ptr,
                  KEYS: tl.constexpr, WEIGHTING: tl.constexpr, METRIC: tl.constexpr, HAS_EX: tl.constexpr,
                  BM: tl.constexpr, BN: tl.constexpr, BD: tl.constexpr, BDS: tl.constexpr,
                  UPCAST: tl.constexpr, IEEE: tl.constexpr):
    """Pass 2: every admissible (key, id[, logit]) with key >= the row's bound appended to its buffer; with
    KEYS, the streaming log-sum-exp of the logits per (row, chunk)."""
    rows, row_ok, pid_c, c0, c1, q, qaux, ep, ee = program_rows(q_ptr, ldq, B, N, D, chunk, ex_ptr_ptr,
                                                                ex_start_ptr, n_chunks, METRIC, HAS_EX, BM, BD)
    thr = tl.load(thr_ptr + rows, mask=row_ok, other=float("inf"))
    m_run = tl.full((BM,), float("-inf"), dtype=tl.float32)
    z_run = tl.zeros((BM,), dtype=tl.float32)
    for t0 in range(c0, c1, BN):
        s, cols, ep = masked_tile(q, qaux, q_ptr, ldq, rows, row_ok, c_ptr, ldc, w_ptr, t0, c1, D, ex_idx_ptr, ep, ee,
                                  METRIC, HAS_EX, BM, BN, BD, BDS, UPCAST, IEEE)
        g, l = tile_keys(s, rows, cols, seed, inv_temp, KEYS, WEIGHTING, BM, BN)
        if KEYS:
            m_run, z_run = lse_update(m_run, z_run, l)
        m = (g >= thr[:, None]) & (l > float("-inf"))
        mi = m.to(tl.int32)
        cnt = tl.sum(mi, 1)
        if tl.max(cnt, 0) > 0:  # rare after the bound: most tiles stop at the compare above
            off, ok = survivor_slots(m, mi, cnt, rows, row_ok, cnt_ptr, cap)
            tl.store(buf_k_ptr + off, g, mask=ok)
            if KEYS:
                tl.store(buf_l_ptr + off, l, mask=ok)
            tl.store(buf_i_ptr + off, cols[None, :] + tl.zeros((BM, BN), dtype=tl.int32), mask=ok)
    if KEYS:
        tl.store(out_m_ptr + rows.to(tl.int64) * n_chunks + pid_c, m_run, mask=row_ok)
        tl.store(out_z_ptr + rows.to(tl.int64) * n_chunks + pid_c, z_run, mask=row_ok)


@triton.jit
def insertion_kernel(q_ptr, ldq, c_ptr, ldc, w_ptr, B, N, D, chunk, ex_ptr_ptr, ex_idx_ptr, ex_start_ptr, n_chunks,
                     seed, inv_temp, out_k_ptr, out_i_ptr, out_l_ptr, out_m_ptr, out_z_ptr,
                     K: tl.constexpr, KP: tl.constexpr, SELECT: tl.constexpr, KEYS: tl.constexpr,
                     WEIGHTING: tl.constexpr, METRIC: tl.constexpr, HAS_EX: tl.constexpr,
                     BM: tl.constexpr, BN: tl.constexpr, BD: tl.constexpr, BDS: tl.constexpr,
                     UPCAST: tl.constexpr, IEEE: tl.constexpr):
    """One pass: with SELECT, the top-K keys per (row, chunk) ([B, n_chunks, KP], with ids and, for KEYS,
    logits); with KEYS, the log-sum-exp of the logits per (row, chunk)."""
    rows, row_ok, pid_c, c0, c1, q, qaux, ep, ee = program_rows(q_ptr, ldq, B, N, D, chunk, ex_ptr_ptr,
                                                                ex_start_ptr, n_chunks, METRIC, HAS_EX, BM, BD)
    kcol = tl.arange(0, KP)
    kept_k = tl.where(kcol[None, :] < K, float("-inf"), float("inf")) + tl.zeros((BM, KP), dtype=tl.float32)
    kept_i = tl.full((BM, KP), -1, dtype=tl.int64)
    kept_l = tl.full((BM, KP), float("-inf"), dtype=tl.float32)
    m_run = tl.full((BM,), float("-inf"), dtype=tl.float32)
    z_run = tl.zeros((BM,), dtype=tl.float32)
    for t0 in range(c0, c1, BN):
        s, cols, ep = masked_tile(q, qaux, q_ptr, ldq, rows, row_ok, c_ptr, ldc, w_ptr, t0, c1, D, ex_idx_ptr, ep, ee,
                                  METRIC, HAS_EX, BM, BN, BD, BDS, UPCAST, IEEE)
        if KEYS:
            l = logits(s, WEIGHTING, inv_temp)
            m_run, z_run = lse_update(m_run, z_run, l)
            if SELECT:
                g = gumbel_keys(l, seed, rows, cols, BM, BN)
                kept_k, kept_i, kept_l = topk_insert(g, l, t0, kept_k, kept_i, kept_l, BN, KP, True)
        else:
            kept_k, kept_i, kept_l = topk_insert(s, s, t0, kept_k, kept_i, kept_l, BN, KP, False)
    slot_off = rows.to(tl.int64) * n_chunks + pid_c
    if KEYS:
        tl.store(out_m_ptr + slot_off, m_run, mask=row_ok)
        tl.store(out_z_ptr + slot_off, z_run, mask=row_ok)
    if SELECT:
        off = slot_off[:, None] * KP + kcol[None, :]
        tl.store(out_k_ptr + off, kept_k, mask=row_ok[:, None])
        tl.store(out_i_ptr + off, kept_i, mask=row_ok[:, None])
        if KEYS:
            tl.store(out_l_ptr + off, kept_l, mask=row_ok[:, None])


# ------------------------------------------------------------------------------------------ host side
def prepare_inputs(q: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """float64 -> float32 (the kernels accumulate in fp32); unit stride along d."""
    if q.dtype == torch.float64:
        q, c = q.float(), c.float()
    if q.stride(1) != 1:
        q = q.contiguous()
    if c.stride(1) != 1:
        c = c.contiguous()
    return q, c


def exclusion_starts(ex, B: int, N: int, chunk: int, n_chunks: int, device) -> torch.Tensor:
    """[B, n_chunks] int64: index into ex indices of each row's first id >= chunk start."""
    indptr, indices = ex
    counts = indptr[1:] - indptr[:-1]
    rows = torch.repeat_interleave(torch.arange(B, device=device), counts)
    keys = rows * (N + 1) + indices
    starts = torch.arange(n_chunks, device=device) * chunk
    probe = torch.arange(B, device=device)[:, None] * (N + 1) + starts[None, :]
    return torch.searchsorted(keys, probe.reshape(-1)).reshape(B, n_chunks).contiguous()


def csr_rows(ex, idx: torch.Tensor):
    """The rows ``idx`` of a CSR pair, as a CSR pair (None stays None)."""
    if ex is None:
        return None
    counts = (ex[0][1:] - ex[0][:-1])[idx]
    ptr = torch.zeros(idx.numel() + 1, dtype=torch.int64, device=idx.device)
    ptr[1:] = counts.cumsum(0)
    take = torch.repeat_interleave(ex[0][:-1][idx], counts) + (
        torch.arange(int(ptr[-1]), device=idx.device) - torch.repeat_interleave(ptr[:-1], counts))
    return ptr, ex[1][take]


def precision(q: torch.Tensor) -> dict:
    """How the tiles multiply: fp32 inputs as tf32x3 (IEEE), low precision upcast in the interpreter."""
    return dict(UPCAST=triton_interpreting() and q.dtype != torch.float32, IEEE=q.dtype == torch.float32)


def _launch_args(q, c, ex, p: Plan, chunk: int, n_chunks: int, metric: int, keys: bool, weighting: int,
                 inv_temp: float, seed: int, weight=None) -> tuple[tuple, dict]:
    """The arguments every mining kernel starts with, and the meta-parameters they share (``weight``: [d], the
    MLP metric's; any valid pointer otherwise)."""
    B, d = q.shape
    N = c.shape[0]
    if ex is not None and ex[1].numel():
        ex_args = (ex[0].contiguous(), ex[1].contiguous(), exclusion_starts(ex, B, N, chunk, n_chunks, q.device))
    else:
        ex_args = (torch.zeros(1, dtype=torch.int64, device=q.device),) * 3
    args = (q, q.stride(0), c, c.stride(0), q if weight is None else weight, B, N, d, chunk, *ex_args, n_chunks, int(seed) & (2**63 - 1), inv_temp)
    meta = dict(KEYS=keys, WEIGHTING=weighting, METRIC=metric, HAS_EX=ex is not None and bool(ex[1].numel()),
                **precision(q), **p.meta())
    return args, meta


class Survivors(NamedTuple):
    """What the two passes leave per row: the bound, how many keys reached it (> cap: overflow) and the first
    ``cap`` of them (key -inf and id -1 beyond the count)."""

    bound: torch.Tensor  # [B] float32, -inf when the row has fewer segments than k
    count: torch.Tensor  # [B] int64
    key: torch.Tensor  # [B, cap] float32
    ids: torch.Tensor  # [B, cap] int64
    logit: torch.Tensor | None  # [B, cap] float32 (keys only)
    chunk_max: torch.Tensor | None  # [B, n_chunks] log-sum-exp parts: sum = chunk_sum * exp(chunk_max) (keys only)
    chunk_sum: torch.Tensor | None
    cap: int


def two_pass(q, c, k: int, metric: int, ex, *, keys: bool = False, weighting: int = 0, inv_temp: float = 1.0,
             seed: int = 0, weight=None) -> Survivors:
    """Segment-max bound, then the thresholded append (module docstring), for the k largest keys per row."""
    B, d = q.shape
    N = c.shape[0]
    p = plan_two_pass(B, N, d, k, metric, q.device, q.element_size())
    args, meta = _launch_args(q, c, ex, p, p.chunk, p.n_chunks, metric, keys, weighting, inv_temp, seed, weight)
    kk = min(k, N)
    n_seg = p.n_seg(N)
    seg = torch.empty(B, n_seg, dtype=torch.float32, device=q.device)
    segmax_kernel[p.grid(B)](*args, seg, n_seg, SEG=p.SEG, **meta)
    # the kk-th largest segment max: a lower bound on the kk-th best admissible key (identical arithmetic in
    # both passes, so no tolerance is needed); with fewer segments than kk, every admissible candidate passes
    if n_seg >= kk:
        thr = torch.topk(seg, kk, dim=1).values[:, -1].contiguous()
    else:
        thr = torch.full((B,), float("-inf"), device=q.device)
    cap = int(min(N, math.ceil((4 * kk + 64) / 64) * 64))
    cnt = torch.zeros(B, dtype=torch.int32, device=q.device)
    buf_k = torch.empty(B, cap, dtype=torch.float32, device=q.device)
    buf_i = torch.empty(B, cap, dtype=torch.int32, device=q.device)
    buf_l = torch.empty(B, cap, dtype=torch.float32, device=q.device) if keys else buf_k
    out_m = torch.empty(B, p.n_chunks, dtype=torch.float32, device=q.device) if keys else thr
    out_z = torch.empty(B, p.n_chunks, dtype=torch.float32, device=q.device) if keys else thr
    filter_kernel[p.grid(B)](*args, thr, cnt, buf_k, buf_i, buf_l, cap, out_m, out_z, **meta)
    count = cnt.to(torch.int64)
    stored = torch.arange(cap, device=q.device)[None, :] < count[:, None]
    return Survivors(thr, count, torch.where(stored, buf_k, torch.full_like(buf_k, float("-inf"))),
                     torch.where(stored, buf_i.to(torch.int64), torch.full((B, cap), -1, dtype=torch.int64,
                                                                            device=q.device)),
                     buf_l if keys else None, out_m if keys else None, out_z if keys else None, cap)


class Kept(NamedTuple):
    """What the insertion pass leaves: per row, the kept (key, id[, logit]) of every chunk, and the
    log-sum-exp parts (keys only)."""

    key: torch.Tensor | None  # [B, n_chunks * KP]; unused slots +inf (select only)
    ids: torch.Tensor | None
    logit: torch.Tensor | None
    chunk_max: torch.Tensor | None
    chunk_sum: torch.Tensor | None
    plan: Plan


def insertion(q, c, k: int, KP: int, metric: int, ex, *, select: bool = True, keys: bool = False,
              weighting: int = 0, inv_temp: float = 1.0, seed: int = 0, weight=None) -> Kept:
    """The running top-k pass (exact for any input; k <= KP <= 1024), and/or the log-sum-exp pass."""
    B, d = q.shape
    N = c.shape[0]
    p = plan_insertion(B, N, d, KP, metric, q.device, q.element_size())
    args, meta = _launch_args(q, c, ex, p, p.chunk, p.n_chunks, metric, keys, weighting, inv_temp, seed, weight)
    dev = q.device
    shape = (B, p.n_chunks, KP) if select else (1,)
    out_k = torch.empty(shape, dtype=torch.float32, device=dev)
    out_i = torch.empty(shape, dtype=torch.int64, device=dev)
    out_l = torch.empty(shape if keys else (1,), dtype=torch.float32, device=dev)
    out_m = torch.empty((B, p.n_chunks) if keys else (1,), dtype=torch.float32, device=dev)
    out_z = torch.empty((B, p.n_chunks) if keys else (1,), dtype=torch.float32, device=dev)
    insertion_kernel[p.grid(B)](*args, out_k, out_i, out_l, out_m, out_z, K=k, KP=KP, SELECT=select, **meta)
    flat = (lambda x: x.reshape(B, -1)) if select else (lambda x: None)
    return Kept(flat(out_k), flat(out_i), flat(out_l) if keys else None, out_m if keys else None,
                out_z if keys else None, p)
