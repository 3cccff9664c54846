"""spmm: every backend against the reference on random CSR matrices (awkward widths around the 64-wide AVX2
block, empty rows, empty matrices, duplicate entries, hubs), float32 and float64, gradients (symmetric and not),
the baseline ISA against the AVX2 path, and every documented error."""
import os
import textwrap

import pytest
import torch

import hardneg
from hardneg.ops import spmm
from hardneg.reference.sparse import spmm as ref_spmm

from conftest import backend_params, run_isa_builds

BACKENDS = backend_params("spmm")


def random_csr(n, m, nnz, seed=0, dtype=torch.float32, device="cpu", empty_rows=0.2, hub=False):
    """A CSR [n, m] with ``nnz`` entries (duplicates possible), about ``empty_rows`` of the rows empty."""
    g = torch.Generator().manual_seed(seed)
    live = torch.rand(n, generator=g) >= empty_rows
    rows_pool = torch.nonzero(live).flatten()
    if rows_pool.numel() == 0 or m == 0:
        nnz = 0
        rows = torch.zeros(0, dtype=torch.int64)
    else:
        rows = rows_pool[torch.randint(0, rows_pool.numel(), (nnz,), generator=g)]
        if hub:
            rows[: nnz // 2] = rows_pool[0]
    cols = torch.randint(0, max(m, 1), (nnz,), generator=g)
    vals = torch.randn(nnz, generator=g, dtype=torch.float64).to(dtype)
    order = torch.argsort(rows, stable=True)
    rows, cols, vals = rows[order], cols[order], vals[order]
    indptr = torch.zeros(n + 1, dtype=torch.int64)
    torch.cumsum(torch.bincount(rows, minlength=n), 0, out=indptr[1:])
    return torch.sparse_csr_tensor(indptr, cols, vals, (n, m)).to(device)


def dense_ref(adj, x):
    return ref_spmm(adj.crow_indices(), adj.col_indices(), adj.values(), x, adj.shape[0])


@pytest.mark.parametrize("backend,device", BACKENDS)
@pytest.mark.parametrize("dim", [1, 7, 8, 63, 64, 65, 130])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_matches_reference(backend, device, dim, dtype):
    for seed, (n, m, nnz, hub) in enumerate([(50, 40, 300, False), (7, 300, 900, True), (200, 3, 50, False)]):
        adj = random_csr(n, m, nnz, seed=seed, dtype=dtype, device=device, hub=hub)
        x = torch.randn(m, dim, dtype=dtype, generator=torch.Generator().manual_seed(seed + 10)).to(device)
        got = spmm(adj, x, backend=backend)
        assert got.shape == (n, dim) and got.dtype == dtype and got.device.type == device
        want = torch.sparse.mm(adj.cpu().to(torch.float64), x.cpu().to(torch.float64))
        tol = 1e-4 if dtype == torch.float32 else 1e-10
        torch.testing.assert_close(got.cpu().to(torch.float64), want, atol=tol, rtol=tol)
        assert torch.allclose(got.cpu(), dense_ref(adj.cpu(), x.cpu()), atol=tol, rtol=tol)


@pytest.mark.parametrize("backend,device", BACKENDS)
def test_empty_shapes(backend, device):
    for n, m, dim in [(0, 5, 4), (5, 0, 4), (5, 5, 0), (0, 0, 0)]:
        adj = random_csr(n, m, 0, device=device)
        x = torch.randn(m, dim, device=device)
        got = spmm(adj, x, backend=backend)
        assert got.shape == (n, dim)
        assert bool((got == 0).all())  # rows without entries are exact zeros
    adj = random_csr(30, 20, 60, empty_rows=0.5, device=device)
    got = spmm(adj, torch.randn(20, 64, device=device), backend=backend)
    empty = adj.crow_indices().diff() == 0
    assert bool(empty.any()) and bool((got[empty] == 0).all())


@pytest.mark.parametrize("backend,device", BACKENDS)
@pytest.mark.parametrize("symmetric", [False, True])
def test_gradient(backend, device, symmetric):
    adj = random_csr(12, 12, 40, seed=3, dtype=torch.float64, device=device)
    if symmetric:
        d = adj.to_dense()
        adj = (d + d.T).to_sparse_csr()
    x = torch.randn(12, 5, dtype=torch.float64, device=device, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x: spmm(adj, x, symmetric=symmetric, backend=backend), (x,))
    # a rectangular matrix: the backward builds the transpose
    rect = random_csr(9, 14, 30, seed=4, dtype=torch.float64, device=device)
    y = torch.randn(14, 3, dtype=torch.float64, device=device, requires_grad=True)
    g = torch.randn(9, 3, dtype=torch.float64, device=device)
    (spmm(rect, y, backend=backend) * g).sum().backward()
    torch.testing.assert_close(y.grad, rect.to_dense().T @ g)


def test_symmetric_backward_equals_transpose_backward():
    d = random_csr(40, 40, 200, seed=5).to_dense()
    adj = (d + d.T).to_sparse_csr()
    x = torch.randn(40, 70, requires_grad=True)
    g = torch.randn(40, 70)
    grads = []
    for sym in (True, False):
        x.grad = None
        (spmm(adj, x, symmetric=sym) * g).sum().backward()
        grads.append(x.grad.clone())
    torch.testing.assert_close(grads[0], grads[1], atol=1e-5, rtol=1e-5)


def test_no_grad_and_int32_indices():
    adj = random_csr(20, 30, 80, seed=6)
    adj32 = torch.sparse_csr_tensor(adj.crow_indices().int(), adj.col_indices().int(), adj.values(), adj.shape)
    x = torch.randn(30, 16, requires_grad=True)
    with torch.no_grad():
        out = spmm(adj32, x)
    assert not out.requires_grad
    torch.testing.assert_close(out, dense_ref(adj, x.detach()), atol=1e-5, rtol=1e-5)


def test_custom_op_matches_public_function():
    adj = random_csr(25, 25, 90, seed=7, dtype=torch.float64)
    x = torch.randn(25, 6, dtype=torch.float64)
    got = torch.ops.hardneg.spmm(adj.crow_indices(), adj.col_indices(), adj.values(), x, 25)
    assert torch.equal(got, spmm(adj, x))
    parts = tuple(t.clone() for t in (adj.crow_indices(), adj.col_indices(), adj.values()))  # not views of adj
    torch.library.opcheck(torch.ops.hardneg.spmm.default, (*parts, x.requires_grad_(), 25))
    torch.library.opcheck(torch.ops.hardneg.spmm.default, (*parts, x, 25, True))


def test_bad_input():
    adj = random_csr(4, 5, 8)
    x = torch.randn(5, 3)
    with pytest.raises(TypeError, match="'adj' must be a torch.sparse_csr tensor"):
        spmm(adj.to_dense(), x)
    with pytest.raises(TypeError, match="'adj' must be a torch.sparse_csr tensor"):
        spmm(adj.to_sparse_coo(), x)
    with pytest.raises(TypeError, match="'x'"):
        spmm(adj, torch.ones(5, 3, dtype=torch.int64))
    with pytest.raises(TypeError, match="'symmetric' must be a bool"):
        spmm(adj, x, symmetric=1)
    with pytest.raises(ValueError, match=r"'x'.*\[M, D\]"):
        spmm(adj, torch.randn(5))
    with pytest.raises(ValueError, match=r"M = x.shape\[0\] = 6 \(got \(4, 5\)\)"):
        spmm(adj, torch.randn(6, 3))
    with pytest.raises(ValueError, match="must have x's dtype torch.float64"):
        spmm(adj, x.double())
    with pytest.raises(ValueError, match="requires grad"):
        spmm(adj.clone().requires_grad_(), x)
    with pytest.raises(ValueError, match="'backend'"):
        spmm(adj, x, backend="tpu")
    # column ids past x's rows (torch does not check CSR invariants on construction by default)
    bad = torch.sparse_csr_tensor(torch.tensor([0, 1, 2]), torch.tensor([0, 9]), torch.ones(2), (2, 5),
                                  check_invariants=False)
    for backend in ("reference", "cpu"):
        with pytest.raises(ValueError, match=r"column indices must be in \[0, 5\) \(got 9\)"):
            spmm(bad, x, backend=backend)
    neg = torch.sparse_csr_tensor(torch.tensor([0, 1, 2]), torch.tensor([0, -1]), torch.ones(2), (2, 5),
                                  check_invariants=False)
    for backend in ("reference", "cpu"):
        with pytest.raises(ValueError, match=r"\(got -1\)"):
            spmm(neg, x, backend=backend)
    # row pointers that decrease, or do not end at the number of entries
    for ptr in ([0, 2, 1, 2], [0, 1, 1, 1], [1, 1, 2, 2]):
        m = torch.sparse_csr_tensor(torch.tensor(ptr), torch.tensor([0, 1]), torch.ones(2), (3, 5),
                                    check_invariants=False)
        for backend in ("reference", "cpu"):
            with pytest.raises(ValueError, match="row pointers must"):
                spmm(m, x, backend=backend)


def test_generic_isa_matches_the_reference():
    """HARDNEG_ISA=generic forces the portable loop (read once per process: a subprocess); both paths agree with
    the reference for widths inside, at and past the AVX2 block."""
    script = textwrap.dedent("""
        import sys, torch, hardneg
        sys.path[:0] = %r
        from test_spmm import random_csr, dense_ref
        for dim in (5, 64, 100, 128):
            adj = random_csr(300, 200, 4000, seed=dim, hub=True)
            x = torch.randn(200, dim, generator=torch.Generator().manual_seed(dim))
            got = hardneg.ops.spmm(adj, x, backend="cpu")
            assert torch.allclose(got, dense_ref(adj, x), atol=1e-4, rtol=1e-4), dim
        print("isa ok", hardneg._backend.core().build_info()["cpu_isa"])
    """ % [os.path.dirname(__file__), os.path.dirname(os.path.dirname(__file__))])
    run_isa_builds(script)
