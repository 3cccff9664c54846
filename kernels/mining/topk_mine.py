"""topk_mine, Triton: one fused kernel; scores, exclusion mask and a running top-k per row, no B×N writes.

Grid: (row blocks of BM, candidate chunks). Each program walks its chunk in tiles of BN: one ``tl.dot`` (fp32
accumulation) per tile, excluded ids set to -inf, then a threshold test against the row's current k-th best.
Only rows with a survivor enter the insertion loop (one survivor per row per iteration: max/argmax of the
tile, replace the worst kept entry), so after the first tiles a tile costs one compare and one reduction.
Per-(row, chunk) lists are merged on the host side with torch (B × chunks × k values).
"""
import math

import torch
import triton
import triton.language as tl

from hardneg._backend import triton_interpreting
from hardneg.kernels.mining._tiles import load_query_block, mask_excluded, query_aux, score_tile


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


def _next_pow2(x: int) -> int:
    return 1 << max(0, (int(x) - 1).bit_length())


def plan(B: int, N: int, d: int, kp: int, metric: int, device: torch.device, interpret: bool):
    """Tile sizes, warps and chunking for one call."""
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


def topk_mine_triton(q, c, k, metric, ex):
    q, c = prepare_inputs(q, c)
    B, d = q.shape
    N = c.shape[0]
    interpret = triton_interpreting()
    kk = min(k, N)
    KP = max(2, _next_pow2(kk))
    if KP > 1024:
        raise ValueError(f"topk_mine: the triton backend supports min(k, N) <= 1024 (got {kk}); use backend='reference'")
    p = plan(B, N, d, KP, metric, q.device, interpret)
    chunk = math.ceil(N / p["chunks"])
    chunk = math.ceil(chunk / p["BN"]) * p["BN"]
    n_chunks = math.ceil(N / chunk)
    out_v = torch.empty(B, n_chunks, KP, dtype=torch.float32, device=q.device)
    out_i = torch.empty(B, n_chunks, KP, dtype=torch.int64, device=q.device)
    if ex is not None and ex[1].numel():
        ex_ptr, ex_idx = ex[0].contiguous(), ex[1].contiguous()
        ex_start = exclusion_starts(ex, B, N, chunk, n_chunks, q.device)
        has_ex = True
    else:
        ex_ptr = ex_idx = ex_start = torch.zeros(1, dtype=torch.int64, device=q.device)
        has_ex = False
    grid = (math.ceil(B / p["BM"]), n_chunks)
    _topk_kernel[grid](
        q, q.stride(0), c, c.stride(0), B, N, d, chunk, ex_ptr, ex_idx, ex_start, n_chunks, out_v, out_i,
        K=kk, KP=KP, METRIC=metric, HAS_EX=has_ex, BM=p["BM"], BN=p["BN"], BD=p["BD"], BDS=p["BDS"],
        UPCAST=interpret and q.dtype != torch.float32, IEEE=q.dtype == torch.float32,
        num_warps=p["num_warps"],
    )
    return merge_chunks(out_v.reshape(B, -1), out_i.reshape(B, -1), k)
