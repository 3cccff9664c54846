"""mlp_topk_mine, Triton: the MLP decoder's scores ``w·relu(q + c)`` fused with exclusion and top-k selection, no
[B, N, d] hidden layer and no B×N writes: the tile pipeline of ``_tiles.py`` with the MLP metric (a slice of d at
a time, ``METRIC_MLP``), through the same two-pass launch and exact fallback as :mod:`.topk_mine`."""
from __future__ import annotations

import torch

from hardneg.kernels.mining._tiles import METRIC_MLP, prepare_inputs
from hardneg.kernels.mining.topk_mine import select_topk


def mlp_topk_mine_triton(q: torch.Tensor, c: torch.Tensor, w: torch.Tensor, k: int, ex):
    """(scores float32 [B, k], ids int64 [B, k]) of the decoder's top k per query (ties to the smaller id)."""
    q, c = prepare_inputs(q, c)
    w = w.to(torch.float32).contiguous()
    return select_topk(q, c, k, METRIC_MLP.value, ex, op="mlp_topk_mine", weight=w)
