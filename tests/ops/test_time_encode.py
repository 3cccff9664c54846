"""time_encode: every backend against the float64 reference and against PyG's TimeEncoder (Linear(1, τ) then
cos), gradients against torch's autograd of that module, awkward shapes, huge phases, and bad input."""
import pytest
import torch

import hardneg
from conftest import backend_params

BACKENDS = backend_params("time_encode")


def _inputs(M, D, seed, *, bias=True, scale=7.0):
    g = torch.Generator().manual_seed(seed)
    dt = (10 ** (torch.rand(M, generator=g) * scale)).float() * torch.sign(torch.randn(M, generator=g))
    if M > 2:
        dt[:2] = torch.tensor([0.0, 1.0])
    w = (1.0 / 10 ** torch.linspace(0, 9, D)) * (1 + 0.05 * torch.randn(D, generator=g))  # TGAT's frequencies
    b = torch.randn(D, generator=g) if bias else None
    return dt, w, b


def _pyg(dt, w, b):
    """PyG's TimeEncoder: Linear(1, τ) (float32), then cos."""
    return torch.nn.functional.linear(dt.reshape(-1, 1).float(), w.reshape(-1, 1), b).cos().view(*dt.shape, w.numel())


@pytest.mark.parametrize("backend,device", BACKENDS)
@pytest.mark.parametrize("M,D,bias", [(0, 100, True), (1, 1, False), (7, 100, True), (300, 129, True),
                                      (2049, 100, False)])
def test_matches_reference_and_pyg(backend, device, M, D, bias):
    dt, w, b = _inputs(M, D, M * 131 + D)
    out = hardneg.ops.time_encode(dt.to(device), w.to(device), None if b is None else b.to(device), backend=backend)
    assert out.shape == (M, D) and out.dtype == torch.float32 and out.device.type == device
    ref = hardneg.ops.time_encode(dt, w, b, backend="reference")
    torch.testing.assert_close(out.cpu(), ref, atol=2e-7, rtol=0)
    torch.testing.assert_close(out.cpu(), _pyg(dt, w, b), atol=2e-7, rtol=0)  # the same encoding as PyG's


@pytest.mark.parametrize("backend,device", BACKENDS)
def test_gradients_match_autograd_of_the_module(backend, device):
    dt, w, b = _inputs(257, 100, 3)
    g = torch.randn(257, 100, generator=torch.Generator().manual_seed(4))
    grads = []
    for fn in ("ours", "pyg"):
        t = dt.clone().to(device).requires_grad_()
        ww, bb = w[:, None].clone().to(device).requires_grad_(), b.clone().to(device).requires_grad_()
        y = hardneg.ops.time_encode(t, ww, bb, backend=backend) if fn == "ours" else _pyg(t, ww, bb)
        (y * g.to(device)).sum().backward()
        grads.append([x.grad.cpu() for x in (t, ww, bb)])
    for ours, theirs, name in zip(*grads, ("dt", "weight", "bias")):
        assert ours.shape == theirs.shape, name
        torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-3 * float(theirs.abs().max()), msg=name)


@pytest.mark.parametrize("backend,device", BACKENDS)
def test_any_shape_huge_and_non_finite_phases(backend, device):
    # [2, 3] gaps give [2, 3, τ]; phases past 2^35 (and NaN / Inf) take libm's path and agree with torch
    dt = torch.tensor([[0.0, 1e15, -3e12], [float("nan"), float("inf"), 86_400.0]])
    w = torch.tensor([1.0, 0.5, 1e-3, 2.0])
    out = hardneg.ops.time_encode(dt.to(device), w.to(device), backend=backend).cpu()
    assert out.shape == (2, 3, 4)
    ref = hardneg.ops.time_encode(dt, w, backend="reference")
    torch.testing.assert_close(out, ref, atol=2e-7, rtol=0, equal_nan=True)
    assert torch.isnan(out[1, :2]).all() and torch.isfinite(out[0]).all()


def test_cpu_result_independent_of_thread_count(monkeypatch):
    dt, w, b = _inputs(5000, 100, 9)
    one = hardneg.ops.time_encode(dt, w, b, backend="cpu")
    monkeypatch.setenv("HARDNEG_NUM_THREADS", "1")
    assert torch.equal(one, hardneg.ops.time_encode(dt, w, b, backend="cpu"))


def test_float64_and_half_inputs_are_cast_like_the_module():
    dt, w, b = _inputs(50, 16, 5)
    out = hardneg.ops.time_encode(dt.double(), w.double(), b.half())
    torch.testing.assert_close(out, hardneg.ops.time_encode(dt, w, b.half().float()), atol=0, rtol=0)


@pytest.mark.parametrize(
    "kwargs,exc,frag",
    [
        (dict(dt=[1.0, 2.0]), TypeError, "'dt' must be a floating tensor"),
        (dict(dt=torch.tensor([1, 2])), TypeError, "'dt' must be a floating tensor"),
        (dict(weight=[1.0]), TypeError, "'weight' must be a torch.Tensor"),
        (dict(weight=torch.tensor([1, 2, 3, 4])), TypeError, "'weight' must be a"),
        (dict(weight=torch.ones(4, 2)), ValueError, "'weight' must be [τ] or Linear(1, τ).weight"),
        (dict(bias=torch.ones(3)), ValueError, "'bias' must have one entry per frequency (4"),
        (dict(bias=torch.ones(4, 1)), ValueError, "'bias' must be a 1-D"),
        (dict(bias=torch.ones(4, dtype=torch.int64)), TypeError, "'bias' must be a 1-D floating tensor"),
        (dict(dt=torch.ones(3, device="meta")), ValueError, "'dt' is on the meta device"),
        (dict(backend="cuda"), ValueError, "backend 'cuda'"),
    ],
)
def test_bad_input(kwargs, exc, frag):
    args = dict(dt=torch.ones(3), weight=torch.ones(4), bias=None)
    args.update(kwargs)
    with pytest.raises(exc) as e:
        hardneg.ops.time_encode(args.pop("dt"), args.pop("weight"), args.pop("bias"), **args)
    assert frag in str(e.value) and "time_encode" in str(e.value)


def test_core_rejects_bad_values_directly():
    from hardneg import _core

    with pytest.raises(ValueError, match="rows and dim must be >= 0"):
        _core.time_encode_cpu(dt=1, weight=1, bias=0, out_cos=1, out_sin=0, rows=-1, dim=4)
    with pytest.raises(ValueError, match="null dt, weight or out_cos"):
        _core.time_encode_cpu(dt=0, weight=1, bias=0, out_cos=1, out_sin=0, rows=2, dim=4)
