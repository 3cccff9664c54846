"""time_encode, Triton: the cosine time encoding cos(fl(fl(dt·w) + b)) (and its sin for the backward) over a
[rows, τ] grid of tiles. The float32 phase is formed as ``torch.nn.Linear(1, τ)`` forms it (a product rounded
from float64, where it is exact, then a float32 sum); cos and sin are taken in float64, whose argument reduction
is exact for a float32 phase, and rounded to float32.
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl


@triton.jit
def _time_encode_kernel(dt_ptr, w_ptr, b_ptr, cos_ptr, sin_ptr, M, D, HAS_BIAS: tl.constexpr,
                        WITH_SIN: tl.constexpr, BM: tl.constexpr, BD: tl.constexpr):
    rows = tl.program_id(0) * BM + tl.arange(0, BM)
    cols = tl.program_id(1) * BD + tl.arange(0, BD)
    rm, cm = rows < M, cols < D
    dt = tl.load(dt_ptr + rows, mask=rm, other=0.0).to(tl.float64)
    w = tl.load(w_ptr + cols, mask=cm, other=0.0).to(tl.float64)
    p = (dt[:, None] * w[None, :]).to(tl.float32)
    if HAS_BIAS:
        p = p + tl.load(b_ptr + cols, mask=cm, other=0.0)[None, :]
    p64 = p.to(tl.float64)
    off = rows[:, None].to(tl.int64) * D + cols[None, :]
    mask = rm[:, None] & cm[None, :]
    tl.store(cos_ptr + off, tl.cos(p64).to(tl.float32), mask=mask)
    if WITH_SIN:
        tl.store(sin_ptr + off, tl.sin(p64).to(tl.float32), mask=mask)


def time_encode_triton(dt: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None, with_sin: bool):
    """(cos, sin or None), float32 [M, τ], for contiguous float32 dt [M], w [τ], b [τ] or None."""
    M, D = dt.shape[0], w.shape[0]
    cos = torch.empty(M, D, dtype=torch.float32, device=dt.device)
    sin = torch.empty(M, D, dtype=torch.float32, device=dt.device) if with_sin else None
    if M == 0 or D == 0:
        return cos, sin
    BM, BD = 32, min(128, triton.next_power_of_2(D))
    grid = (triton.cdiv(M, BM), triton.cdiv(D, BD))
    _time_encode_kernel[grid](dt, w, dt if b is None else b, cos, cos if sin is None else sin, M, D,
                              HAS_BIAS=b is not None, WITH_SIN=with_sin, BM=BM, BD=BD)
    return cos, sin
