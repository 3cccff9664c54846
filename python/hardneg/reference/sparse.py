"""Reference of the sparse family: CSR @ dense as a gather, a multiply and an ``index_add`` over the entries."""
from __future__ import annotations

import torch


def spmm(indptr: torch.Tensor, indices: torch.Tensor, values: torch.Tensor, x: torch.Tensor, rows: int) -> torch.Tensor:
    """``out[r] = Σ_{p in row r} values[p] · x[indices[p]]``, [rows, D] in x's dtype."""
    row = torch.repeat_interleave(torch.arange(rows, device=x.device), indptr.diff())
    out = x.new_zeros(rows, x.shape[1])
    return out.index_add_(0, row, values[:, None].to(x.dtype) * x[indices])
