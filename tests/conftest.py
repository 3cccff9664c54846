import os

try:
    import torch

    _gpu = torch.cuda.is_available()
except ImportError:  # pragma: no cover
    _gpu = False
if not _gpu:
    # Triton kernels run on CPU tensors through the interpreter; must be set before triton is imported.
    os.environ.setdefault("TRITON_INTERPRET", "1")

import tempfile  # noqa: E402

import pytest  # noqa: E402

# CLI runs without --output save into $HARDNEG_RUNS; keep them out of the checkout
os.environ.setdefault("HARDNEG_RUNS", os.path.join(tempfile.mkdtemp(prefix="hardneg-test-runs-"), "runs"))

import hardneg.ops  # noqa: E402,F401  (registers every op)
from hardneg import _backend  # noqa: E402

SHARED = os.path.join(os.path.dirname(__file__), "..", "..", "shared")


def devices():
    out = ["cpu"]
    if _gpu:
        out.append("cuda")
    return out


def backend_params(op):
    """(backend, device) pairs for every backend of ``op``, skipped with a reason when unavailable."""
    params = []
    for backend in _backend.registered(op):
        for dev in ("cpu", "cuda"):
            if backend in ("cpu",) and dev == "cuda":
                continue
            if backend in ("cuda",) and dev == "cpu":
                continue
            if backend == "reference" and dev == "cuda" and not _gpu:
                continue
            ok, why = _backend._availability(backend, torch.device(dev)) if (dev == "cpu" or _gpu) else (False, "no CUDA device")
            marks = [] if ok else [pytest.mark.skip(reason=f"{backend} on {dev}: {why}")]
            if dev == "cuda":
                marks.append(pytest.mark.gpu)
            params.append(pytest.param(backend, dev, id=f"{backend}-{dev}", marks=marks))
    return params


def shared_path(*parts):
    p = os.path.join(SHARED, *parts)
    if not os.path.exists(p):
        pytest.skip(f"shared data not found at {os.path.abspath(p)} (../shared is absent)")
    return p


def run_isa_builds(script: str) -> None:
    """Run ``script`` (Python that prints ``isa ok <build>`` at its end) in a subprocess with ``HARDNEG_ISA=generic``
    (the baseline CPU build; read once per process) and once with the default build; both must pass."""
    import subprocess
    import sys

    for isa in ("generic", None):
        env = dict(os.environ)
        env.pop("HARDNEG_ISA", None)
        if isa:
            env["HARDNEG_ISA"] = isa
        out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
        assert out.returncode == 0 and "isa ok" in out.stdout, out.stderr[-3000:]
        if isa:
            assert "isa ok generic" in out.stdout
