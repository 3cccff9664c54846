"""Dispatch: explicit backends succeed or raise naming op/device/available; None picks the best; the
reference fallback warns once per op; show_config prints the build."""
import io
import warnings

import pytest
import torch

import hardneg
from hardneg import _backend


def test_auto_picks_cpu_kernel_on_cpu():
    name, _ = _backend.resolve("topk_mine", None, torch.device("cpu"))
    assert name == "cpu"


def test_explicit_unavailable_backend_names_op_device_and_available():
    with pytest.raises(ValueError) as e:
        _backend.resolve("topk_mine", "cuda", torch.device("cpu"))
    msg = str(e.value)
    assert "topk_mine" in msg and "cpu" in msg and "available" in msg and "reference" in msg


def test_triton_on_cpu_needs_interpreter(monkeypatch):
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    with pytest.raises(ValueError, match="TRITON_INTERPRET"):
        _backend.resolve("topk_mine", "triton", torch.device("cpu"))


def test_fallback_to_reference_warns_once(monkeypatch):
    monkeypatch.setattr(_backend, "core", lambda: None)
    monkeypatch.setattr(_backend, "_WARNED", set())
    q, c = torch.randn(2, 3), torch.randn(5, 3)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        hardneg.ops.topk_mine(q, c, 2)
        hardneg.ops.topk_mine(q, c, 2)
    msgs = [str(x.message) for x in w if issubclass(x.category, RuntimeWarning)]
    assert len(msgs) == 1 and "falling back" in msgs[0] and "topk_mine" in msgs[0]


def test_show_config_lists_ops_and_build():
    buf = io.StringIO()
    hardneg.show_config(file=buf)
    out = buf.getvalue()
    assert "topk_mine" in out and "sample_by_score" in out and "OpenMP" in out and "CUDA kernels" in out
    cfg = hardneg.config()
    assert cfg["core"]["omp_max_threads"] >= 1


def test_core_compiled_with_dispatch():
    info = _backend.core().build_info()
    assert info["cpu_isa"] in ("avx2", "generic")
