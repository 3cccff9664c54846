"""Every registered op has its five pieces: reference, CPU kernel, GPU kernel, test file, bench script.

Adding an op ``<op>`` to a family ``<family>`` (mining, filtering, temporal) touches exactly these files:

1. ``python/hardneg/reference/<family>.py``: the pure-torch reference (exact, float64 where it matters).
2. ``csrc/<family>/<op>_cpu.cpp`` (+ its declaration in the family header): the C++/OpenMP kernel.
3. One GPU kernel: ``csrc/<family>/<op>_cuda.cu`` (+ its entry in ``csrc/cuda_api.h``), or Triton in
   ``kernels/<family>/<op>.py`` built from ``kernels/<family>/_tiles.py`` and ``_plan.py``.
4. ``csrc/<family>/bindings.cpp``: one ``m.def`` in ``register_<family>``, every argument a ``py::arg``,
   CPU/CUDA through ``run_on_device`` (``csrc/bindings.h``). A new .cpp/.cu also goes into ``CMakeLists.txt``
   (``hardneg_core`` sources; ``*_cuda.cu`` files are globbed). A new family adds ``register_<family>`` to
   ``csrc/bindings.h`` and ``csrc/bindings.cpp``.
5. ``python/hardneg/ops/<family>.py``: the public function (validate once with ``hardneg._validate``, names from
   ``hardneg._constants``, seeds from ``hardneg._random``), one ``@register(op, backend)`` per backend, keyword
   calls into ``_core``; exported from ``python/hardneg/ops/__init__.py``.
6. ``tests/ops/test_<op>.py``: every backend against the reference, each documented error.
7. ``bench/<op>.py`` (or a family bench naming the op), on ``bench/_harness.py``.
"""
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
    bindings = [open(f).read() for f in cpu_src
                if os.path.basename(f) == "bindings.cpp" and os.path.dirname(os.path.dirname(f)).endswith("csrc")]
    assert any(f'"{op}' in b for b in bindings), f"{op}: no m.def in any csrc/<family>/bindings.cpp"
    stem = "known_set" if op.startswith("known_") else op  # the KnownSet queries share one kernel file
    assert any(f.endswith(f"{stem}_cpu.cpp") for f in cpu_src), f"csrc/*/{stem}_cpu.cpp missing"
    gpu = [os.path.join(dp, f) for base in ("csrc", "kernels") for dp, _, fs in os.walk(os.path.join(ROOT, base)) for f in fs]
    assert any(f.endswith(f"{stem}_cuda.cu") or f.endswith(f"{op}.py") for f in gpu), f"{op}: GPU kernel file missing"
