"""Launch plans of the mining kernels: tile sizes, warps, shared-memory fitting, candidate chunking, grid.

Two kinds of launch, used by both ops:

* ``two_pass`` (:func:`plan_two_pass`): the segment-max bound, then the thresholded append (the fast path of
  ``topk_mine`` and of ``sample_by_score`` without replacement). Chunks hold whole segments of SEG tiles.
* ``insertion`` (:func:`plan_insertion`): one pass with a running top-k per row (exact for any input: the
  overflow fallback, and ``sample_by_score``'s log-sum-exp pass with replacement).

A program owns BM query rows and one chunk of candidates; the grid is (row blocks, chunks), with about four
programs per SM. Under ``TRITON_INTERPRET=1`` the interpreter pays per op per program, so it gets the fewest,
largest programs and one chunk.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass

import torch

from hardneg._backend import triton_interpreting
from hardneg._constants import METRICS, code

METRIC_L1 = code(METRICS, "l1")  # l1 and rotate (the codes from here up) have no matrix form

SMEM_BUDGET = 160 * 1024  # bytes of shared memory for the operand tiles (H100: 227 KiB per block, minus headroom)


def next_pow2(x: int) -> int:
    return 1 << max(0, (int(x) - 1).bit_length())


def fit_smem(BM: int, BN: int, BD: int, esize: int) -> tuple[int, int]:
    """Halve BM, then BN, until the double-buffered [BM, BD] and [BN, BD] tiles fit ``SMEM_BUDGET``."""
    while 2 * (BM + BN) * BD * esize > SMEM_BUDGET and (BM > 16 or BN > 16):
        if BM >= BN and BM > 16:
            BM //= 2
        else:
            BN //= 2
    return BM, BN


@dataclass(frozen=True)
class Plan:
    BM: int  # query rows per program
    BN: int  # candidates per tile
    BD: int  # padded feature dim (one tl.dot over it)
    BDS: int  # feature slice of the l1 / rotate broadcasts
    num_warps: int
    chunk: int  # candidates per program (a multiple of BN * SEG)
    n_chunks: int
    SEG: int = 1  # tiles per segment (two-pass)

    def grid(self, B: int) -> tuple[int, int]:
        return (math.ceil(B / self.BM), self.n_chunks)

    def n_seg(self, N: int) -> int:
        return math.ceil(N / (self.BN * self.SEG))

    def meta(self) -> dict:
        """The tile meta-parameters every mining kernel takes."""
        return dict(BM=self.BM, BN=self.BN, BD=self.BD, BDS=self.BDS, num_warps=self.num_warps)


def _tiles_override():
    v = os.environ.get("HARDNEG_TRITON_TILES")  # "BM,BN,warps" for tuning runs
    return tuple(int(x) for x in v.split(",")) if v else None


def _base(B: int, N: int, d: int, kp: int, metric: int, esize: int) -> dict:
    """The general tiles: l1 / rotate small (their BM*BN*BDS broadcast lives in registers); matmul metrics
    sized by the kept-list width kp and fitted into shared memory."""
    BD = max(16, next_pow2(d))
    if triton_interpreting():
        return dict(BM=max(16, min(64, next_pow2(B))), BN=max(16, min(256, next_pow2(N))), BD=BD,
                    BDS=min(BD, 64), num_warps=4)
    if metric >= METRIC_L1:
        return dict(BM=max(16, min(32, next_pow2(B))), BN=32, BD=BD, BDS=8, num_warps=4)
    BM = 128 if kp <= 64 and B >= 128 else (64 if kp <= 256 else 16)
    BM, BN = fit_smem(BM, 128 if BD <= 128 else 64, BD, esize)
    return dict(BM=max(16, min(BM, next_pow2(B))), BN=BN, BD=BD, BDS=16, num_warps=8)


def _chunks(B: int, N: int, t: dict, device) -> int:
    """About four programs per SM, at least 8 tiles per chunk; one chunk in the interpreter."""
    if triton_interpreting():
        return 1
    sms = torch.cuda.get_device_properties(device).multi_processor_count
    return max(1, min(math.ceil(N / (t["BN"] * 8)), math.ceil(4 * sms / math.ceil(B / t["BM"]))))


def _plan(B: int, N: int, t: dict, device, seg: int) -> Plan:
    chunk = math.ceil(math.ceil(N / _chunks(B, N, t, device)) / t["BN"]) * t["BN"]
    chunk = math.ceil(chunk / (t["BN"] * seg)) * t["BN"] * seg  # chunks hold whole segments
    return Plan(chunk=chunk, n_chunks=math.ceil(N / chunk), SEG=seg, **t)


def plan_two_pass(B: int, N: int, d: int, k: int, metric: int, device, esize: int) -> Plan:
    """Segment-max bound + thresholded append. 64x64 tiles, 4 warps for the matmul metrics: measured 21 ms vs
    38 ms (64x128) and 29 ms (128x128x8 warps) on the H100, B=4096 N=1M d=128 bf16 (bench/RESULTS.md).
    SEG: >= 16 segments per kept result, so the bound is tight."""
    t = _base(B, N, d, 2, metric, esize)
    if not triton_interpreting():
        ov = _tiles_override()
        if ov:
            t.update(BM=ov[0], BN=ov[1], num_warps=ov[2])
        elif metric < METRIC_L1:
            t.update(BM=max(16, min(64, next_pow2(B))), BN=64, num_warps=4)
        if metric < METRIC_L1:
            t["BM"], t["BN"] = fit_smem(t["BM"], t["BN"], t["BD"], esize)
    seg = max(1, min(64, math.ceil(N / t["BN"]) // max(1, 16 * min(k, N))))
    return _plan(B, N, t, device, seg)


def plan_insertion(B: int, N: int, d: int, kp: int, metric: int, device, esize: int) -> Plan:
    """Running top-kp per row: 64 rows per program for the matmul metrics, so the kept lists stay in registers."""
    t = _base(B, N, d, kp, metric, esize)
    if not triton_interpreting() and metric < METRIC_L1:
        t.update(BM=max(16, min(64, next_pow2(B))), num_warps=4)
        t["BM"], t["BN"] = fit_smem(t["BM"], t["BN"], t["BD"], esize)
    return _plan(B, N, t, device, 1)
