"""sample_by_score, Triton: the topk_mine tiling with Gumbel keys and a streaming log-sum-exp.

Without replacement: key g = l + G with G = -log(E), E = Exp(1) from Philox(seed; col, row) (two 32-bit words
give E down to ~1e-19, so the Gumbel tail is not cut at 24 bits), and the running top-n of keys is kept
exactly as topk_mine keeps scores; the same pass accumulates (max, sum) of exp(l) per (row, chunk).
With replacement: pass 1 is the same kernel without selection (log-sum-exp only); pass 2 walks the
candidates again with a float64 running CDF and places n sorted uniform targets per row (inverse CDF).
"""
import math

import torch
import triton
import triton.language as tl

from hardneg._backend import triton_interpreting
from hardneg.kernels.mining._tiles import (lse_update, load_query_block, mask_excluded, query_aux, score_tile,
                                            survivor_slots)
from hardneg.kernels.mining.topk_mine import _next_pow2, csr_rows, exclusion_starts, fit_smem, plan, prepare_inputs


@triton.jit
def _logits(s, WEIGHTING: tl.constexpr, inv_temp):
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
def _gumbel_keys(l, seed, rows, cols, BM: tl.constexpr, BN: tl.constexpr):
    """g = l + Gumbel, the Gumbel from Philox(seed; col, row): identical in every kernel that calls it."""
    r0, r1, _r2, _r3 = tl.philox(seed, cols[None, :] + tl.zeros((BM, BN), dtype=tl.int32),
                                 rows[:, None] + tl.zeros((BM, BN), dtype=tl.int32), 0, 0)
    v = r0.to(tl.float32) * 2.3283064365386963e-10 + (r1.to(tl.float32) + 0.5) * 5.421010862427522e-20
    u = 1.0 - v
    e = tl.where(u == 1.0, v, -tl.log(u) * v / tl.where(u == 1.0, 1.0, 1.0 - u))  # -log(1 - v), accurate for small v
    return l - tl.log(e)


@triton.jit
def _key_segmax_kernel(q_ptr, ldq, c_ptr, ldc, B, N, D, chunk, ex_ptr_ptr, ex_idx_ptr, ex_start_ptr, n_chunks,
                       seed, inv_temp, seg_ptr, n_seg,
                       WEIGHTING: tl.constexpr, METRIC: tl.constexpr, HAS_EX: tl.constexpr, SEG: tl.constexpr,
                       BM: tl.constexpr, BN: tl.constexpr, BD: tl.constexpr, BDS: tl.constexpr,
                       UPCAST: tl.constexpr, IEEE: tl.constexpr):
    """Pass 1 (no replacement): per row, the largest Gumbel key of every segment of SEG tiles."""
    pid_m = tl.program_id(0)
    pid_c = tl.program_id(1)
    rows = pid_m * BM + tl.arange(0, BM)
    row_ok = rows < B
    c0 = pid_c * chunk
    c1 = tl.minimum(c0 + chunk, N)
    q = load_query_block(q_ptr, ldq, rows, row_ok, D, BD)
    qaux = query_aux(q, METRIC)
    if HAS_EX:
        ep = tl.load(ex_start_ptr + rows.to(tl.int64) * n_chunks + pid_c, mask=row_ok, other=0)
        ee = tl.load(ex_ptr_ptr + rows + 1, mask=row_ok, other=0)
    lane = tl.arange(0, BN)
    for s0 in range(c0, c1, BN * SEG):
        best = tl.full((BM,), float("-inf"), dtype=tl.float32)
        for t in range(SEG):
            t0 = s0 + t * BN
            cols = t0 + lane
            col_ok = cols < c1
            s = score_tile(q, qaux, q_ptr, ldq, rows, row_ok, c_ptr, ldc, cols, col_ok, D,
                           METRIC, BM, BN, BD, BDS, UPCAST, IEEE)
            if HAS_EX:
                s, ep = mask_excluded(s, cols, t0 + BN, ex_idx_ptr, ep, ee)
            g = _gumbel_keys(_logits(s, WEIGHTING, inv_temp), seed, rows, cols, BM, BN)
            best = tl.maximum(best, tl.max(g, 1))
        tl.store(seg_ptr + rows.to(tl.int64) * n_seg + s0 // (BN * SEG), best, mask=row_ok)


@triton.jit
def _key_filter_kernel(q_ptr, ldq, c_ptr, ldc, B, N, D, chunk, ex_ptr_ptr, ex_idx_ptr, ex_start_ptr, n_chunks,
                       seed, inv_temp, thr_ptr, cnt_ptr, buf_g_ptr, buf_i_ptr, buf_l_ptr, cap, out_m_ptr, out_z_ptr,
                       WEIGHTING: tl.constexpr, METRIC: tl.constexpr, HAS_EX: tl.constexpr,
                       BM: tl.constexpr, BN: tl.constexpr, BD: tl.constexpr, BDS: tl.constexpr,
                       UPCAST: tl.constexpr, IEEE: tl.constexpr):
    """Pass 2: the streaming log-sum-exp, and every (key, id, logit) with key >= the row's bound appended."""
    pid_m = tl.program_id(0)
    pid_c = tl.program_id(1)
    rows = pid_m * BM + tl.arange(0, BM)
    row_ok = rows < B
    c0 = pid_c * chunk
    c1 = tl.minimum(c0 + chunk, N)
    q = load_query_block(q_ptr, ldq, rows, row_ok, D, BD)
    qaux = query_aux(q, METRIC)
    thr = tl.load(thr_ptr + rows, mask=row_ok, other=float("inf"))
    m_run = tl.full((BM,), float("-inf"), dtype=tl.float32)
    z_run = tl.zeros((BM,), dtype=tl.float32)
    if HAS_EX:
        ep = tl.load(ex_start_ptr + rows.to(tl.int64) * n_chunks + pid_c, mask=row_ok, other=0)
        ee = tl.load(ex_ptr_ptr + rows + 1, mask=row_ok, other=0)
    lane = tl.arange(0, BN)
    for t0 in range(c0, c1, BN):
        cols = t0 + lane
        col_ok = cols < c1
        s = score_tile(q, qaux, q_ptr, ldq, rows, row_ok, c_ptr, ldc, cols, col_ok, D,
                       METRIC, BM, BN, BD, BDS, UPCAST, IEEE)
        s = tl.where(row_ok[:, None], s, float("-inf"))
        if HAS_EX:
            s, ep = mask_excluded(s, cols, t0 + BN, ex_idx_ptr, ep, ee)
        l = _logits(s, WEIGHTING, inv_temp)
        m_run, z_run = lse_update(m_run, z_run, l)
        g = _gumbel_keys(l, seed, rows, cols, BM, BN)
        m = (g >= thr[:, None]) & (l > float("-inf"))
        mi = m.to(tl.int32)
        cnt = tl.sum(mi, 1)
        if tl.max(cnt, 0) > 0:
            off, ok = survivor_slots(m, mi, cnt, rows, row_ok, cnt_ptr, cap)
            tl.store(buf_g_ptr + off, g, mask=ok)
            tl.store(buf_l_ptr + off, l, mask=ok)
            tl.store(buf_i_ptr + off, cols[None, :] + tl.zeros((BM, BN), dtype=tl.int32), mask=ok)
    slot_off = rows.to(tl.int64) * n_chunks + pid_c
    tl.store(out_m_ptr + slot_off, m_run, mask=row_ok)
    tl.store(out_z_ptr + slot_off, z_run, mask=row_ok)


@triton.jit
def _sample_kernel(q_ptr, ldq, c_ptr, ldc, B, N, D, chunk,
                   ex_ptr_ptr, ex_idx_ptr, ex_start_ptr, n_chunks,
                   seed, inv_temp,
                   out_g_ptr, out_i_ptr, out_l_ptr, out_m_ptr, out_z_ptr,
                   K: tl.constexpr, KP: tl.constexpr, SELECT: tl.constexpr, WEIGHTING: tl.constexpr,
                   METRIC: tl.constexpr, HAS_EX: tl.constexpr,
                   BM: tl.constexpr, BN: tl.constexpr, BD: tl.constexpr, BDS: tl.constexpr,
                   UPCAST: tl.constexpr, IEEE: tl.constexpr):
    pid_m = tl.program_id(0)
    pid_c = tl.program_id(1)
    rows = pid_m * BM + tl.arange(0, BM)
    row_ok = rows < B
    c0 = pid_c * chunk
    c1 = tl.minimum(c0 + chunk, N)
    q = load_query_block(q_ptr, ldq, rows, row_ok, D, BD)
    qaux = query_aux(q, METRIC)
    kcol = tl.arange(0, KP)
    kept_g = tl.where(kcol[None, :] < K, float("-inf"), float("inf")) + tl.zeros((BM, KP), dtype=tl.float32)
    kept_i = tl.full((BM, KP), -1, dtype=tl.int64)
    kept_l = tl.full((BM, KP), float("-inf"), dtype=tl.float32)
    thr = tl.min(kept_g, 1)
    m_run = tl.full((BM,), float("-inf"), dtype=tl.float32)
    z_run = tl.zeros((BM,), dtype=tl.float32)
    if HAS_EX:
        ep = tl.load(ex_start_ptr + rows.to(tl.int64) * n_chunks + pid_c, mask=row_ok, other=0)
        ee = tl.load(ex_ptr_ptr + rows + 1, mask=row_ok, other=0)
    for t0 in range(c0, c1, BN):
        cols = t0 + tl.arange(0, BN)
        col_ok = cols < c1
        s = score_tile(q, qaux, q_ptr, ldq, rows, row_ok, c_ptr, ldc, cols, col_ok, D,
                       METRIC, BM, BN, BD, BDS, UPCAST, IEEE)
        s = tl.where(row_ok[:, None], s, float("-inf"))
        if HAS_EX:
            s, ep = mask_excluded(s, cols, t0 + BN, ex_idx_ptr, ep, ee)
        l = _logits(s, WEIGHTING, inv_temp)
        m_run, z_run = lse_update(m_run, z_run, l)
        if SELECT:
            g = _gumbel_keys(l, seed, rows, cols, BM, BN)
            surv = g > thr[:, None]
            while tl.max(tl.max(surv.to(tl.int32), 1), 0) > 0:
                gm = tl.where(surv, g, float("-inf"))
                bv = tl.max(gm, 1)
                bj = tl.argmax(gm, 1)
                has = tl.max(surv.to(tl.int32), 1) > 0
                bl = tl.sum(tl.where(tl.arange(0, BN)[None, :] == bj[:, None], l, 0.0), 1)
                wv = tl.min(kept_g, 1)
                slot = tl.argmax((kept_g == wv[:, None]).to(tl.int32), 1)
                put = has[:, None] & (kcol[None, :] == slot[:, None])
                kept_g = tl.where(put, bv[:, None], kept_g)
                kept_i = tl.where(put, (t0 + bj).to(tl.int64)[:, None], kept_i)
                kept_l = tl.where(put, bl[:, None], kept_l)
                g = tl.where(has[:, None] & (tl.arange(0, BN)[None, :] == bj[:, None]), float("-inf"), g)
                thr = tl.min(kept_g, 1)
                surv = g > thr[:, None]
    slot_off = rows.to(tl.int64) * n_chunks + pid_c
    tl.store(out_m_ptr + slot_off, m_run, mask=row_ok)
    tl.store(out_z_ptr + slot_off, z_run, mask=row_ok)
    if SELECT:
        off = slot_off[:, None] * KP + kcol[None, :]
        tl.store(out_g_ptr + off, kept_g, mask=row_ok[:, None])
        tl.store(out_i_ptr + off, kept_i, mask=row_ok[:, None])
        tl.store(out_l_ptr + off, kept_l, mask=row_ok[:, None])


@triton.jit
def _cdf_kernel(q_ptr, ldq, c_ptr, ldc, B, N, D, ex_ptr_ptr, ex_idx_ptr,
                inv_temp, m_ptr, tgt_ptr, perm_ptr, n, out_i_ptr,
                WEIGHTING: tl.constexpr, METRIC: tl.constexpr, HAS_EX: tl.constexpr,
                BM: tl.constexpr, BN: tl.constexpr, BD: tl.constexpr, BDS: tl.constexpr,
                UPCAST: tl.constexpr, IEEE: tl.constexpr):
    """Inverse-CDF placement of n sorted targets per row (in units of sum exp(l - m_row)); float64 CDF."""
    pid_m = tl.program_id(0)
    rows = pid_m * BM + tl.arange(0, BM)
    row_ok = rows < B
    q = load_query_block(q_ptr, ldq, rows, row_ok, D, BD)
    qaux = query_aux(q, METRIC)
    m_row = tl.load(m_ptr + rows, mask=row_ok, other=0.0)
    m_row = tl.where(m_row == float("-inf"), 0.0, m_row)
    tp = tl.zeros((BM,), dtype=tl.int64)
    base = rows.to(tl.int64) * n
    cur = tl.load(tgt_ptr + base + tp, mask=row_ok & (tp < n), other=float("inf"))
    carry = tl.zeros((BM,), dtype=tl.float64)
    last = tl.full((BM,), -1, dtype=tl.int64)
    if HAS_EX:
        ep = tl.load(ex_ptr_ptr + rows, mask=row_ok, other=0)
        ee = tl.load(ex_ptr_ptr + rows + 1, mask=row_ok, other=0)
    for t0 in range(0, N, BN):
        cols = t0 + tl.arange(0, BN)
        col_ok = cols < N
        s = score_tile(q, qaux, q_ptr, ldq, rows, row_ok, c_ptr, ldc, cols, col_ok, D,
                       METRIC, BM, BN, BD, BDS, UPCAST, IEEE)
        if HAS_EX:
            s, ep = mask_excluded(s, cols, t0 + BN, ex_idx_ptr, ep, ee)
        l = _logits(s, WEIGHTING, inv_temp)
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
    from hardneg.reference.mining import logits, scores

    B, n = ids.shape
    safe = ids.clamp_min(0)
    cand = c[safe.reshape(-1)].reshape(B, n, -1).float()
    qq = q.float()
    out = torch.empty(B, n, dtype=torch.float64, device=q.device)
    names = ("dot", "cos", "l2", "l1", "rotate")
    for b in range(0, B, 256):  # small [b, n, d] blocks
        for i in range(min(256, B - b)):
            out[b + i] = scores(qq[b + i : b + i + 1], cand[b + i], names[metric])[0]
    return logits(out, ("softmax", "softplus")[weighting], temperature)


def _lse_rows(out_m, out_z):
    m = out_m.max(dim=1).values
    safe_m = torch.where(torch.isneginf(m), torch.zeros_like(m), m)
    z = (out_z.double() * torch.exp((out_m - safe_m[:, None]).double())).sum(1)
    return safe_m.double() + torch.log(z), z


def _two_pass_no_replacement(q, c, n, metric, weighting, temperature, ex, seed):
    """Exact Gumbel-top-n in two fused passes (segment-max bound, then thresholded append + log-sum-exp),
    the design that made topk_mine fast; rows whose buffer overflows fall back to the insertion kernel."""
    from hardneg.kernels.mining.topk_mine import _chunking, _exclusion_args

    B, d = q.shape
    N = c.shape[0]
    interpret = triton_interpreting()
    p = plan(B, N, d, 2, metric, q.device, interpret, q.element_size())
    if not interpret:
        if metric < 3:
            p.update(BM=max(16, min(64, _next_pow2(B))), BN=64, num_warps=4)
            if metric < 3:
                p["BM"], p["BN"] = fit_smem(p["BM"], p["BN"], p["BD"], q.element_size())
        sms = torch.cuda.get_device_properties(q.device).multi_processor_count
        p["chunks"] = max(1, min(math.ceil(N / (p["BN"] * 8)), math.ceil(4 * sms / math.ceil(B / p["BM"]))))
    kk = min(n, N)
    n_tiles = math.ceil(N / p["BN"])
    SEG = max(1, min(64, n_tiles // max(1, 16 * kk)))
    chunk, _ = _chunking(N, p)
    chunk = math.ceil(chunk / (p["BN"] * SEG)) * p["BN"] * SEG
    n_chunks = math.ceil(N / chunk)
    n_seg = math.ceil(N / (p["BN"] * SEG))
    ex_ptr, ex_idx, ex_start, has_ex = _exclusion_args(ex, B, N, chunk, n_chunks, q.device)
    seed63 = int(seed) & 0x7FFFFFFF_FFFFFFFF
    common = dict(WEIGHTING=weighting, METRIC=metric, HAS_EX=has_ex, BM=p["BM"], BN=p["BN"], BD=p["BD"],
                  BDS=p["BDS"], UPCAST=interpret and q.dtype != torch.float32, IEEE=q.dtype == torch.float32,
                  num_warps=p["num_warps"])
    grid = (math.ceil(B / p["BM"]), n_chunks)
    seg = torch.empty(B, n_seg, dtype=torch.float32, device=q.device)
    _key_segmax_kernel[grid](q, q.stride(0), c, c.stride(0), B, N, d, chunk, ex_ptr, ex_idx, ex_start, n_chunks,
                             seed63, 1.0 / temperature, seg, n_seg, SEG=SEG, **common)
    thr = torch.topk(seg, kk, dim=1).values[:, -1] if n_seg >= kk else torch.full((B,), float("-inf"), device=q.device)
    cap = int(min(N, math.ceil((4 * kk + 64) / 64) * 64))
    cnt = torch.zeros(B, dtype=torch.int32, device=q.device)
    buf_g = torch.empty(B, cap, dtype=torch.float32, device=q.device)
    buf_l = torch.empty(B, cap, dtype=torch.float32, device=q.device)
    buf_i = torch.empty(B, cap, dtype=torch.int32, device=q.device)
    out_m = torch.empty(B, n_chunks, dtype=torch.float32, device=q.device)
    out_z = torch.empty(B, n_chunks, dtype=torch.float32, device=q.device)
    _key_filter_kernel[grid](q, q.stride(0), c, c.stride(0), B, N, d, chunk, ex_ptr, ex_idx, ex_start, n_chunks,
                             seed63, 1.0 / temperature, thr.contiguous(), cnt, buf_g, buf_i, buf_l, cap, out_m, out_z,
                             **common)
    lse, z = _lse_rows(out_m, out_z)
    cnt64 = cnt.to(torch.int64)
    admissible_keys = torch.isfinite(thr)  # a finite bound means >= kk admissible candidates exist
    valid = torch.arange(cap, device=q.device)[None, :] < cnt64.clamp_max(cap)[:, None]
    g = torch.where(valid, buf_g, torch.full_like(buf_g, float("-inf")))
    top = torch.topk(g, min(kk, cap), dim=1)
    ids = torch.gather(buf_i.to(torch.int64), 1, top.indices)
    lg = torch.gather(buf_l, 1, top.indices).double()
    dead = torch.isneginf(top.values)
    ids = torch.where(dead, torch.full_like(ids, -1), ids)
    lp = torch.where(dead, torch.full_like(lg, float("-inf")), lg - lse[:, None]).float()
    bad = (cnt64 > cap) | (admissible_keys & (cnt64 < kk))
    idx = bad.nonzero().flatten()
    if idx.numel():  # exact fallback (massive ties in the keys cannot happen; overflow is the only case)
        sub_ex = csr_rows(ex, idx)
        if _next_pow2(kk) > 1024:  # beyond the insertion kernel's registers: the exact torch reference
            from hardneg.reference.mining import sample_by_score as _ref_sample

            gen = torch.Generator(device=q.device).manual_seed(int(seed) & 0x7FFFFFFF_FFFFFFFF)
            fi, fl = _ref_sample(q[idx], c, n, metric=("dot", "cos", "l2", "l1", "rotate")[metric],
                                 weighting=("softmax", "softplus")[weighting], temperature=temperature,
                                 exclude=sub_ex, generator=gen)
        else:
            fi, fl = _insertion_sample(q[idx], c, n, metric, weighting, temperature, sub_ex, seed)
        ids[idx], lp[idx] = fi[:, :kk], fl[:, :kk]
    if kk < n:
        ids = torch.cat([ids, ids.new_full((B, n - kk), -1)], 1)
        lp = torch.cat([lp, lp.new_full((B, n - kk), float("-inf"))], 1)
    return ids, lp


def sample_by_score_triton(q, c, n, metric, weighting, temperature, ex, replacement, seed):
    q, c = prepare_inputs(q, c)
    if not replacement:  # any n: only the (rare) overflow fallback is register-limited
        return _two_pass_no_replacement(q, c, n, metric, weighting, temperature, ex, seed)
    return _insertion_sample(q, c, n, metric, weighting, temperature, ex, seed, replacement)


def _insertion_sample(q, c, n, metric, weighting, temperature, ex, seed, replacement=False):
    B, d = q.shape
    N = c.shape[0]
    interpret = triton_interpreting()
    kk = min(n, N)
    KP = max(2, _next_pow2(kk)) if not replacement else 2
    if KP > 1024:
        raise ValueError(f"sample_by_score: the triton backend supports min(n, N) <= 1024 without replacement (got {kk})")
    p = plan(B, N, d, KP, metric, q.device, interpret, q.element_size())
    if not interpret and metric < 3:
        p.update(BM=max(16, min(64, _next_pow2(B))), num_warps=4)  # 64 rows: the kept lists stay in registers
        if metric < 3:
            p["BM"], p["BN"] = fit_smem(p["BM"], p["BN"], p["BD"], q.element_size())
        sms = torch.cuda.get_device_properties(q.device).multi_processor_count
        p["chunks"] = max(1, min(math.ceil(N / (p["BN"] * 8)), math.ceil(4 * sms / math.ceil(B / p["BM"]))))
    chunk = math.ceil(math.ceil(N / p["chunks"]) / p["BN"]) * p["BN"]
    n_chunks = math.ceil(N / chunk)
    dev = q.device
    if ex is not None and ex[1].numel():
        ex_ptr, ex_idx = ex[0].contiguous(), ex[1].contiguous()
        ex_start = exclusion_starts(ex, B, N, chunk, n_chunks, dev)
        has_ex = True
    else:
        ex_ptr = ex_idx = ex_start = torch.zeros(1, dtype=torch.int64, device=dev)
        has_ex = False
    out_m = torch.empty(B, n_chunks, dtype=torch.float32, device=dev)
    out_z = torch.empty(B, n_chunks, dtype=torch.float32, device=dev)
    select = not replacement
    shape = (B, n_chunks, KP) if select else (1,)
    out_g = torch.empty(shape, dtype=torch.float32, device=dev)
    out_i = torch.empty(shape, dtype=torch.int64, device=dev)
    out_l = torch.empty(shape, dtype=torch.float32, device=dev)
    seed32 = int(seed) & 0x7FFFFFFF_FFFFFFFF
    common = dict(METRIC=metric, HAS_EX=has_ex, BM=p["BM"], BN=p["BN"], BD=p["BD"], BDS=p["BDS"],
                  UPCAST=interpret and q.dtype != torch.float32, IEEE=q.dtype == torch.float32,
                  num_warps=p["num_warps"])
    grid = (math.ceil(B / p["BM"]), n_chunks)
    _sample_kernel[grid](q, q.stride(0), c, c.stride(0), B, N, d, chunk, ex_ptr, ex_idx, ex_start, n_chunks,
                         seed32, 1.0 / temperature, out_g, out_i, out_l, out_m, out_z,
                         K=kk, KP=KP, SELECT=select, WEIGHTING=weighting, **common)
    lse, z = _lse_rows(out_m, out_z)  # -inf where nothing is admissible
    m = out_m.max(dim=1).values
    if select:
        g = torch.where(torch.isposinf(out_g), torch.full_like(out_g, float("-inf")), out_g).reshape(B, -1)
        top = torch.topk(g, kk, dim=1)
        ids = torch.gather(out_i.reshape(B, -1), 1, top.indices)
        lg = torch.gather(out_l.reshape(B, -1), 1, top.indices).double()
        dead = torch.isneginf(top.values)
        ids = torch.where(dead, torch.full_like(ids, -1), ids)
        lp = (lg - lse[:, None]).float()
        lp = torch.where(dead, torch.full_like(lp, float("-inf")), lp)
        if kk < n:
            ids = torch.cat([ids, ids.new_full((B, n - kk), -1)], 1)
            lp = torch.cat([lp, lp.new_full((B, n - kk), float("-inf"))], 1)
        return ids, lp
    # with replacement: sorted targets u * Z per row, pass 2 places them
    gen = torch.Generator(device="cpu").manual_seed(seed32)
    u = torch.rand(B, n, generator=gen, dtype=torch.float64).to(dev)
    u = u * z[:, None]
    tgt, perm = torch.sort(u, dim=1)
    ids = torch.full((B, n), -1, dtype=torch.int64, device=dev)
    _cdf_kernel[(math.ceil(B / p["BM"]),)](
        q, q.stride(0), c, c.stride(0), B, N, d, ex_ptr, ex[1].contiguous() if has_ex else ex_idx,
        1.0 / temperature, m.contiguous(), tgt.contiguous(), perm.contiguous(), n, ids,
        WEIGHTING=weighting, **common)
    dead = torch.isneginf(lse) | ~(z > 0)
    ids = torch.where(dead[:, None], torch.full_like(ids, -1), ids)
    lg = _gather_logits(q, c, ids, metric, weighting, temperature)
    lp = (lg - lse[:, None]).float()
    lp = torch.where(ids < 0, torch.full_like(lp, float("-inf")), lp)
    return ids, lp
