"""Sparse family: ``spmm``, a CSR matrix times a dense matrix, the propagation step of LightGCN-style and GCN-style
encoders (``A_hat @ X``), differentiable with respect to X.

On this project's CPU box torch's own CSR product (``torch.sparse.mm``) spends most of its time outside the
product: it fills the output with zeros, converts the index arrays for MKL on every call and adds the result
into the zero-filled buffer. The kernels here write each output row once from its entries in CSR order: one row
per OpenMP work item (C++, an AVX2+FMA path for float32 with D >= 64) or per CUDA warp. ``bench/spmm.py``
measures them against ``torch.sparse.mm`` and PyG's ``LGConv`` (bench/RESULTS.md, "spmm").

Backward: ``∂L/∂X = Aᵀ (∂L/∂out)``. With ``symmetric=True`` (a symmetric normalised adjacency, as LightGCN's and
GCN's) the backward is the same product with A; otherwise Aᵀ is built once per backward call (a sort of the
entries by column, O(nnz log nnz)). A's values are constants: an ``adj`` that requires grad is a ValueError.
"""
from __future__ import annotations

import torch

from hardneg import _validate as V
from hardneg._backend import core, device_args, register, resolve
from hardneg.reference import sparse as _ref

__all__ = ["spmm"]

_FLOATS = (torch.float32, torch.float64)


def spmm(adj: torch.Tensor, x: torch.Tensor, *, symmetric: bool = False, backend: str | None = None) -> torch.Tensor:
    """``adj @ x`` for a sparse CSR ``adj`` [N, M] and a dense ``x`` [M, D] (module docstring).

    Args:
        adj: ``torch.sparse_csr`` tensor [N, M] with float32 / float64 values (x's dtype) on x's device; its
            entries are summed as stored (duplicate column indices in a row add up).
        x: dense [M, D] float32 or float64; may require grad.
        symmetric: promise that ``adj`` equals its transpose, so the backward reuses it (not checked: a
            non-symmetric ``adj`` with ``symmetric=True`` gives ``adj @ g`` as the gradient).
        backend: None (automatic), ``"reference"``, ``"cpu"`` or ``"cuda"``.

    Returns:
        [N, D] in x's dtype, on x's device.

    Raises:
        TypeError: ``adj`` not a sparse CSR tensor, ``x`` not a floating tensor, ``symmetric`` not a bool.
        ValueError: ``x`` not 2-D, ``adj`` not [N, M] with M = x's rows, values of another dtype than x,
            tensors on different devices, column indices out of range, an ``adj`` that requires grad.

    Example:
        >>> import torch, hardneg
        >>> adj = torch.tensor([[0.0, 2.0], [1.0, 0.0]]).to_sparse_csr()
        >>> hardneg.ops.spmm(adj, torch.tensor([[1.0, 10.0], [3.0, 30.0]])).tolist()
        [[6.0, 60.0], [1.0, 10.0]]
    """
    op = "spmm"
    if not isinstance(adj, torch.Tensor) or adj.layout != torch.sparse_csr:
        raise TypeError(f"{op}: 'adj' must be a torch.sparse_csr tensor (got {V.describe(adj)}); build one with "
                        f"torch.sparse_csr_tensor(...) or dense.to_sparse_csr()")
    if not isinstance(symmetric, bool):
        raise TypeError(f"{op}: 'symmetric' must be a bool (got {V.describe(symmetric)})")
    x = V.tensor(op, "x", x, ndim=2, what="[M, D]", dtypes=_FLOATS, kind="floating tensor")
    if adj.dim() != 2 or adj.shape[1] != x.shape[0]:
        raise ValueError(f"{op}: 'adj' must be [N, M] with M = x.shape[0] = {x.shape[0]} (got {tuple(adj.shape)})")
    if adj.dtype != x.dtype:
        raise ValueError(f"{op}: 'adj' values must have x's dtype {x.dtype} (got {adj.dtype})")
    if adj.device != x.device:
        raise ValueError(f"{op}: 'adj' and 'x' must be on one device (got {adj.device} and {x.device})")
    if adj.requires_grad:
        raise ValueError(f"{op}: 'adj' requires grad, but its values are constants here (only x gets a gradient); "
                         f"pass adj.detach()")
    indptr, indices = adj.crow_indices().long().contiguous(), adj.col_indices().long().contiguous()
    values = adj.values()
    if indptr.numel() != adj.shape[0] + 1 or values.numel() != indices.numel():
        raise ValueError(f"{op}: 'adj' is not a valid CSR matrix ({indptr.numel()} row pointers for {adj.shape[0]} "
                         f"rows, {indices.numel()} column indices, {values.numel()} values)")
    name, fn = resolve(op, backend, x.device)
    if name != "cpu":  # the C++ CPU kernel checks the CSR itself before any read; the others are checked here
        _check_csr(op, indptr, indices, x.shape[0])
    csr = (indptr, indices, values.contiguous(), adj.shape[0])
    if torch.is_grad_enabled() and x.requires_grad:
        return _SpMM.apply(x, csr, symmetric, fn)
    return fn(*csr[:3], x.contiguous(), csr[3])


def _check_csr(op, indptr, indices, cols):
    if int(indptr[0]) != 0 or int(indptr[-1]) != indices.numel() or bool((indptr.diff() < 0).any()):
        raise ValueError(f"{op}: 'adj' row pointers must start at 0, never decrease and end at the number of "
                         f"entries ({indices.numel()})")
    if indices.numel():
        lo, hi = int(indices.min()), int(indices.max())
        if lo < 0 or hi >= cols:
            raise ValueError(f"{op}: 'adj' column indices must be in [0, {cols}) (got {lo if lo < 0 else hi})")


def backward_csr(indptr, indices, values, rows: int, cols: int, symmetric: bool):
    """The CSR that the backward multiplies by: the matrix itself when ``symmetric``, else its transpose."""
    return (indptr, indices, values) if symmetric else transpose_csr(indptr, indices, values, rows, cols)


def transpose_csr(indptr, indices, values, rows: int, cols: int):
    """(indptr, indices, values) of the [cols, rows] transpose of a CSR matrix (entries in row order per column)."""
    row = torch.repeat_interleave(torch.arange(rows, device=indptr.device), indptr.diff())
    order = torch.argsort(indices, stable=True)
    t_ptr = torch.zeros(cols + 1, dtype=torch.int64, device=indptr.device)
    torch.cumsum(torch.bincount(indices, minlength=cols), 0, out=t_ptr[1:])
    return t_ptr, row[order].contiguous(), values[order].contiguous()


class _SpMM(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, csr, symmetric, fn):
        ctx.csr, ctx.symmetric, ctx.fn, ctx.cols = csr, symmetric, fn, x.shape[0]
        return fn(*csr[:3], x.contiguous(), csr[3])

    @staticmethod
    def backward(ctx, grad):
        indptr, indices, values, rows = ctx.csr
        t = backward_csr(indptr, indices, values, rows, ctx.cols, ctx.symmetric)
        return ctx.fn(*t, grad.contiguous(), ctx.cols), None, None, None


@register("spmm", "reference")
def _spmm_ref(indptr, indices, values, x, rows):
    return _ref.spmm(indptr, indices, values, x, rows)


def _spmm_core(indptr, indices, values, x, rows):
    out = torch.empty(rows, x.shape[1], dtype=x.dtype, device=x.device)
    if out.numel():
        core().spmm(indptr=indptr.data_ptr(), indices=indices.data_ptr(), values=values.data_ptr(),
                    x=x.data_ptr(), out=out.data_ptr(), rows=rows, cols=x.shape[0], dim=x.shape[1],
                    nnz=indices.numel(), f64=x.dtype == torch.float64, **device_args(x.device))
    return out


register("spmm", "cpu")(_spmm_core)
register("spmm", "cuda")(_spmm_core)
