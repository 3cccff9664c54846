"""Every registered op has its five pieces: reference, CPU kernel, GPU kernel, test file, bench script."""
import os

import pytest

from hardneg import _backend

ROOT = os.path.join(os.path.dirname(__file__), "..")
# ops whose whole implementation is device-agnostic torch on already-materialised data (documented)
TORCH_ONLY = {"sample_from_weights"}


@pytest.mark.parametrize("op", _backend.ops())
def test_op_has_five_pieces(op):
    impls = _backend.registered(op)
    assert "reference" in impls
    assert "cpu" in impls, f"{op}: no C++ CPU kernel registered"
    assert "cuda" in impls or "triton" in impls, f"{op}: no GPU kernel registered"
    assert os.path.exists(os.path.join(ROOT, "tests", "ops", f"test_{op}.py")), f"tests/ops/test_{op}.py missing"
    benches = [os.path.join(ROOT, "bench", f) for f in os.listdir(os.path.join(ROOT, "bench")) if f.endswith(".py")]
    own = os.path.exists(os.path.join(ROOT, "bench", f"{op}.py"))
    family = any(f'"{op}"' in open(b).read() for b in benches)  # a family bench (bench/filtering.py) times it
    assert own or family, f"bench/{op}.py missing (and no family bench names it)"
    cpu_src = [os.path.join(dp, f) for dp, _, fs in os.walk(os.path.join(ROOT, "csrc")) for f in fs]
    stem = "known_set" if op.startswith("known_") else op  # the KnownSet queries share one kernel file
    assert any(f.endswith(f"{stem}_cpu.cpp") for f in cpu_src), f"csrc/*/{stem}_cpu.cpp missing"
    gpu = [os.path.join(dp, f) for base in ("csrc", "kernels") for dp, _, fs in os.walk(os.path.join(ROOT, base)) for f in fs]
    assert any(f.endswith(f"{stem}_cuda.cu") or f.endswith(f"{op}.py") for f in gpu), f"{op}: GPU kernel file missing"
