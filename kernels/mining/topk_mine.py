"""topk_mine, Triton: fused scores + exclusion + selection, no B×N writes. Two kernels:

* ``_segmax_kernel`` + ``_filter_kernel`` (the fast path, two passes of the same fused tiles). Pass 1 writes
  each row's maximum score per segment of SEG tiles; the k-th largest segment maximum is a lower bound on the
  row's k-th best score (k distinct candidates reach it) and nearly tight when segments >> k. Pass 2 computes
  the same tiles (identical arithmetic) and appends the few elements >= that bound to a per-row buffer
  (atomic per-row counters), reduced exactly with torch. Rows whose buffer overflows (massive ties) are
  recomputed by
* ``_topk_kernel`` (exact for any input): the same tiles with a running top-k per row: rows with an element
  beating their current k-th best enter an insertion loop (max/argmax of the tile, replace the worst kept).
Per-(row, chunk) lists are merged with the full (score desc, id asc) order on the host side.
"""
import math

import torch
import triton
import triton.language as tl

from hardneg._backend import triton_interpreting
from hardneg.kernels.mining._tiles import load_query_block, mask_excluded, query_aux, score_tile, survivor_slots


@triton.jit
def _topk_kernel(q_ptr, ldq, c_ptr, ldc, B, N, D, chunk,
                 ex_ptr_ptr, ex_idx_ptr, ex_start_ptr, n_chunks,
                 out_v_ptr, out_i_ptr,
                 K: tl.constexpr, KP: tl.constexpr, METRIC: tl.constexpr, HAS_EX: tl.constexpr,
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
    # kept entries; slots >= K are +inf so they are never the worst
    kept_v = tl.where(kcol[None, :] < K, float("-inf"), float("inf")) + tl.zeros((BM, KP), dtype=tl.float32)
    kept_i = tl.full((BM, KP), -1, dtype=tl.int64)
    thr = tl.min(kept_v, 1)
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
        # within a program ids increase, so an equal score never beats a kept one: strict '>' is exact
        surv = s > thr[:, None]
        while tl.max(tl.max(surv.to(tl.int32), 1), 0) > 0:
            sm = tl.where(surv, s, float("-inf"))
            bv = tl.max(sm, 1)
            bj = tl.argmax(sm, 1)  # first maximum: the smallest id among ties
            has = tl.max(surv.to(tl.int32), 1) > 0
            # worst kept: smallest value, then largest id; a unique slot via the first match
            wv = tl.min(kept_v, 1)
            wid = tl.max(tl.where(kept_v == wv[:, None], kept_i, -2), 1)
            is_w = (kept_v == wv[:, None]) & (kept_i == wid[:, None])
            slot = tl.argmax(is_w.to(tl.int32), 1)
            put = has[:, None] & (kcol[None, :] == slot[:, None])
            kept_v = tl.where(put, bv[:, None], kept_v)
            kept_i = tl.where(put, (t0 + bj).to(tl.int64)[:, None], kept_i)
            s = tl.where(has[:, None] & (tl.arange(0, BN)[None, :] == bj[:, None]), float("-inf"), s)
            thr = tl.min(kept_v, 1)
            surv = s > thr[:, None]
    out_off = (rows.to(tl.int64) * n_chunks + pid_c)[:, None] * KP + kcol[None, :]
    tl.store(out_v_ptr + out_off, kept_v, mask=row_ok[:, None])
    tl.store(out_i_ptr + out_off, kept_i, mask=row_ok[:, None])


@triton.jit
def _filter_kernel(q_ptr, ldq, c_ptr, ldc, B, N, D, chunk,
                   ex_ptr_ptr, ex_idx_ptr, ex_start_ptr, n_chunks,
                   thr_ptr, cnt_ptr, buf_v_ptr, buf_i_ptr, cap,
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
    thr = tl.load(thr_ptr + rows, mask=row_ok, other=float("inf"))
    if HAS_EX:
        ep = tl.load(ex_start_ptr + rows.to(tl.int64) * n_chunks + pid_c, mask=row_ok, other=0)
        ee = tl.load(ex_ptr_ptr + rows + 1, mask=row_ok, other=0)
    lane = tl.arange(0, BN)
    for t0 in range(c0, c1, BN):
        cols = t0 + lane
        col_ok = cols < c1
        s = score_tile(q, qaux, q_ptr, ldq, rows, row_ok, c_ptr, ldc, cols, col_ok, D,
                       METRIC, BM, BN, BD, BDS, UPCAST, IEEE)
        if HAS_EX:
            s, ep = mask_excluded(s, cols, t0 + BN, ex_idx_ptr, ep, ee)
        m = (s >= thr[:, None]) & (s > float("-inf"))
        mi = m.to(tl.int32)
        cnt = tl.sum(mi, 1)
        if tl.max(cnt, 0) > 0:  # rare after the threshold: most tiles stop at the compare above
            off, ok = survivor_slots(m, mi, cnt, rows, row_ok, cnt_ptr, cap)
            tl.store(buf_v_ptr + off, s, mask=ok)
            tl.store(buf_i_ptr + off, cols[None, :] + tl.zeros((BM, BN), dtype=tl.int32), mask=ok)


@triton.jit
def _segmax_kernel(q_ptr, ldq, c_ptr, ldc, B, N, D, chunk,
                   ex_ptr_ptr, ex_idx_ptr, ex_start_ptr, n_chunks,
                   seg_ptr, n_seg,
                   METRIC: tl.constexpr, HAS_EX: tl.constexpr, SEG: tl.constexpr,
                   BM: tl.constexpr, BN: tl.constexpr, BD: tl.constexpr, BDS: tl.constexpr,
                   UPCAST: tl.constexpr, IEEE: tl.constexpr):
    """Pass 1: the maximum admissible score of every segment of SEG tiles, per row ([B, n_seg], -inf if none).
    Each segment max is a distinct candidate, so the k-th largest segment max is a lower bound on the row's
    k-th best score, and a tight one when segments >> k."""
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
            best = tl.maximum(best, tl.max(s, 1))
        tl.store(seg_ptr + rows.to(tl.int64) * n_seg + s0 // (BN * SEG), best, mask=row_ok)


def _next_pow2(x: int) -> int:
    return 1 << max(0, (int(x) - 1).bit_length())


SMEM_BUDGET = 160 * 1024  # bytes of shared memory for the operand tiles (H100: 227 KiB per block, minus headroom)


def fit_smem(BM: int, BN: int, BD: int, esize: int) -> tuple[int, int]:
    """Halve BM, then BN, until the double-buffered [BM, BD] and [BN, BD] tiles fit ``SMEM_BUDGET``."""
    while 2 * (BM + BN) * BD * esize > SMEM_BUDGET and (BM > 16 or BN > 16):
        if BM >= BN and BM > 16:
            BM //= 2
        else:
            BN //= 2
    return BM, BN


def plan(B: int, N: int, d: int, kp: int, metric: int, device: torch.device, interpret: bool, esize: int = 4):
    """Tile sizes, warps and chunking for one call. The query tile [BM, BD] and the candidate tile [BN, BD] stay in
    shared memory (double-buffered), so for wide rows (d > 128) BM and then BN shrink until they fit."""
    BD = max(16, _next_pow2(d))
    if interpret:
        # the interpreter pays per op per program: the fewest, largest programs
        BM = max(16, min(64, _next_pow2(B)))
        BN = max(16, min(256, _next_pow2(N)))
        return dict(BM=BM, BN=BN, BD=BD, BDS=min(BD, 64), num_warps=4, chunks=1)
    if metric >= 3:  # l1 / rotate: BM*BN*BDS broadcast in registers
        BM, BN, BDS, warps = 32, 32, 8, 4
    else:
        BM = 128 if kp <= 64 and B >= 128 else (64 if kp <= 256 else 16)
        BN = 128 if BD <= 128 else 64
        BDS, warps = 16, 8
    if metric < 3:
        BM, BN = fit_smem(BM, BN, BD, esize)
    BM = max(16, min(BM, _next_pow2(B)))
    row_blocks = math.ceil(B / BM)
    sms = torch.cuda.get_device_properties(device).multi_processor_count
    want = 4 * sms
    chunks = max(1, min(math.ceil(N / (BN * 8)), math.ceil(want / row_blocks)))
    return dict(BM=BM, BN=BN, BD=BD, BDS=BDS, num_warps=warps, chunks=chunks)


def exclusion_starts(ex, B: int, N: int, chunk: int, n_chunks: int, device):
    """[B, n_chunks] int64: index into ex indices of each row's first id >= chunk start."""
    indptr, indices = ex
    counts = indptr[1:] - indptr[:-1]
    rows = torch.repeat_interleave(torch.arange(B, device=device), counts)
    keys = rows * (N + 1) + indices
    starts = torch.arange(n_chunks, device=device) * chunk
    probe = torch.arange(B, device=device)[:, None] * (N + 1) + starts[None, :]
    return torch.searchsorted(keys, probe.reshape(-1)).reshape(B, n_chunks).contiguous()


def csr_rows(ex, idx):
    """The rows ``idx`` of a CSR pair, as a CSR pair (None stays None)."""
    if ex is None:
        return None
    counts = (ex[0][1:] - ex[0][:-1])[idx]
    ptr = torch.zeros(idx.numel() + 1, dtype=torch.int64, device=idx.device)
    ptr[1:] = counts.cumsum(0)
    take = torch.repeat_interleave(ex[0][:-1][idx], counts) + (
        torch.arange(int(ptr[-1]), device=idx.device) - torch.repeat_interleave(ptr[:-1], counts))
    return ptr, ex[1][take]


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


def prepare_inputs(q, c):
    if q.dtype == torch.float64:
        q, c = q.float(), c.float()
    if q.stride(1) != 1:
        q = q.contiguous()
    if c.stride(1) != 1:
        c = c.contiguous()
    return q, c


def _tiles_override():
    import os

    v = os.environ.get("HARDNEG_TRITON_TILES")  # "BM,BN,warps" for tuning runs
    return tuple(int(x) for x in v.split(",")) if v else None


def _exclusion_args(ex, B, N, chunk, n_chunks, device):
    if ex is not None and ex[1].numel():
        return ex[0].contiguous(), ex[1].contiguous(), exclusion_starts(ex, B, N, chunk, n_chunks, device), True
    z = torch.zeros(1, dtype=torch.int64, device=device)
    return z, z, z, False


def _chunking(N, p):
    chunk = math.ceil(N / p["chunks"])
    chunk = math.ceil(chunk / p["BN"]) * p["BN"]
    return chunk, math.ceil(N / chunk)


def _insertion_topk(q, c, k, metric, ex):
    """Exact running-top-k kernel (any input; slower)."""
    B, d = q.shape
    N = c.shape[0]
    interpret = triton_interpreting()
    kk = min(k, N)
    KP = max(2, _next_pow2(kk))
    if KP > 1024:
        raise ValueError(f"topk_mine: the triton backend supports min(k, N) <= 1024 (got {kk}); use backend='reference'")
    p = plan(B, N, d, KP, metric, q.device, interpret, q.element_size())
    if not interpret and metric < 3:
        p.update(BM=max(16, min(64, _next_pow2(B))), num_warps=4)  # 64 rows: kept lists stay in registers
        if metric < 3:
            p["BM"], p["BN"] = fit_smem(p["BM"], p["BN"], p["BD"], q.element_size())
    chunk, n_chunks = _chunking(N, p)
    out_v = torch.empty(B, n_chunks, KP, dtype=torch.float32, device=q.device)
    out_i = torch.empty(B, n_chunks, KP, dtype=torch.int64, device=q.device)
    ex_ptr, ex_idx, ex_start, has_ex = _exclusion_args(ex, B, N, chunk, n_chunks, q.device)
    grid = (math.ceil(B / p["BM"]), n_chunks)
    _topk_kernel[grid](
        q, q.stride(0), c, c.stride(0), B, N, d, chunk, ex_ptr, ex_idx, ex_start, n_chunks, out_v, out_i,
        K=kk, KP=KP, METRIC=metric, HAS_EX=has_ex, BM=p["BM"], BN=p["BN"], BD=p["BD"], BDS=p["BDS"],
        UPCAST=interpret and q.dtype != torch.float32, IEEE=q.dtype == torch.float32,
        num_warps=p["num_warps"],
    )
    return merge_chunks(out_v.reshape(B, -1), out_i.reshape(B, -1), k)


def topk_mine_triton(q, c, k, metric, ex):
    q, c = prepare_inputs(q, c)
    B, d = q.shape
    N = c.shape[0]
    if N >= 2**31 - 1:
        raise ValueError(f"topk_mine: the triton backend supports N < 2**31 (got {N})")
    interpret = triton_interpreting()
    p = plan(B, N, d, 2, metric, q.device, interpret, q.element_size())
    ov = _tiles_override()
    if ov and not interpret:
        p.update(BM=ov[0], BN=ov[1], num_warps=ov[2])
    elif not interpret and metric < 3:
        # 64x64 tiles, 4 warps: measured 21 ms vs 38 ms (64x128) and 29 ms (128x128x8 warps) on the H100,
        # B=4096 N=1M d=128 bf16 (bench/RESULTS.md)
        p.update(BM=max(16, min(64, _next_pow2(B))), BN=64, num_warps=4)
    if not interpret and metric < 3:
        p["BM"], p["BN"] = fit_smem(p["BM"], p["BN"], p["BD"], q.element_size())
    if not interpret:
        row_blocks = math.ceil(B / p["BM"])
        sms = torch.cuda.get_device_properties(q.device).multi_processor_count
        p["chunks"] = max(1, min(math.ceil(N / (p["BN"] * 8)), math.ceil(4 * sms / row_blocks)))
    kk = min(k, N)
    # segments of SEG tiles: aim for >= 16k segments per row so the bound is tight
    n_tiles = math.ceil(N / p["BN"])
    SEG = max(1, min(64, n_tiles // max(1, 16 * kk)))
    chunk, n_chunks = _chunking(N, p)
    chunk = math.ceil(chunk / (p["BN"] * SEG)) * p["BN"] * SEG  # chunks hold whole segments
    n_chunks = math.ceil(N / chunk)
    n_seg = math.ceil(N / (p["BN"] * SEG))
    ex_ptr, ex_idx, ex_start, has_ex = _exclusion_args(ex, B, N, chunk, n_chunks, q.device)
    common = dict(METRIC=metric, HAS_EX=has_ex, BM=p["BM"], BN=p["BN"], BD=p["BD"], BDS=p["BDS"],
                  UPCAST=interpret and q.dtype != torch.float32, IEEE=q.dtype == torch.float32,
                  num_warps=p["num_warps"])
    grid = (math.ceil(B / p["BM"]), n_chunks)
    segmax = torch.empty(B, n_seg, dtype=torch.float32, device=q.device)
    _segmax_kernel[grid](q, q.stride(0), c, c.stride(0), B, N, d, chunk, ex_ptr, ex_idx, ex_start, n_chunks,
                         segmax, n_seg, SEG=SEG, **common)
    # the kk-th largest segment max: a lower bound on the kk-th best admissible score (identical arithmetic in
    # both passes, so no tolerance is needed); with fewer segments than kk, every admissible candidate passes
    if n_seg >= kk:
        thr = torch.topk(segmax, kk, dim=1).values[:, -1]
    else:
        thr = torch.full((B,), float("-inf"), device=q.device)
    cap = int(min(N, math.ceil((4 * kk + 64) / 64) * 64))
    cnt = torch.zeros(B, dtype=torch.int32, device=q.device)
    buf_v = torch.empty(B, cap, dtype=torch.float32, device=q.device)
    buf_i = torch.empty(B, cap, dtype=torch.int32, device=q.device)
    _filter_kernel[grid](
        q, q.stride(0), c, c.stride(0), B, N, d, chunk, ex_ptr, ex_idx, ex_start, n_chunks,
        thr.contiguous(), cnt, buf_v, buf_i, cap, **common)
    cnt64 = cnt.to(torch.int64)
    admissible = torch.full((B,), N, dtype=torch.int64, device=q.device)
    if ex is not None:
        admissible -= ex[0][1:] - ex[0][:-1]
    need = torch.minimum(admissible, torch.full_like(admissible, k))
    bad = (cnt64 > cap) | (cnt64 < need)  # overflow (massive ties); under-fill cannot happen with a true bound
    valid = torch.arange(cap, device=q.device)[None, :] < cnt64[:, None]
    vals = torch.where(valid, buf_v, torch.full_like(buf_v, float("-inf")))
    ids = torch.where(valid, buf_i.to(torch.int64), torch.full((B, cap), -1, dtype=torch.int64, device=q.device))
    out_v, out_i = merge_chunks(vals, ids, k)
    idx = bad.nonzero().flatten()
    if idx.numel():  # exact fallback for the rows whose buffer overflowed
        sub_ex = csr_rows(ex, idx)
        if _next_pow2(min(k, N)) > 1024:  # beyond the insertion kernel's registers: exact torch on the device
            from hardneg.reference.mining import topk_mine as _ref_topk

            fv, fi = _ref_topk(q[idx], c, k, metric=("dot", "cos", "l2", "l1", "rotate")[metric], exclude=sub_ex)
        else:
            fv, fi = _insertion_topk(q[idx], c, k, metric, sub_ex)
        out_v[idx] = fv
        out_i[idx] = fi
    return out_v, out_i
