"""Shared Triton pieces of the mining family: one score tile, exclusion masking, streaming log-sum-exp.

A program owns BM query rows and one contiguous chunk of candidates, and walks the chunk in tiles of BN.
dot/cos/l2 tiles are one ``tl.dot`` over the whole (padded) feature dimension, accumulated in float32; l1 and
rotate have no matrix form and reduce BM×BN×BDS broadcasts slice by slice. Nothing of size B×N is written.
"""
import triton
import triton.language as tl

METRIC_DOT = tl.constexpr(0)
METRIC_COS = tl.constexpr(1)
METRIC_L2 = tl.constexpr(2)
METRIC_L1 = tl.constexpr(3)
METRIC_ROTATE = tl.constexpr(4)


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
def score_tile(q, qaux, q_ptr, ldq, rows, row_ok, c_ptr, ldc, cols, col_ok, D,
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
        if METRIC == METRIC_L1:
            for d0 in range(0, D, BDS):
                dd = d0 + offs
                qs = tl.load(q_ptr + rows[:, None].to(tl.int64) * ldq + dd[None, :],
                             mask=row_ok[:, None] & (dd[None, :] < D), other=0.0).to(tl.float32)
                cs = tl.load(c_ptr + cols64[:, None] * ldc + dd[None, :],
                             mask=col_ok[:, None] & (dd[None, :] < D), other=0.0).to(tl.float32)
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
        s = -acc
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
