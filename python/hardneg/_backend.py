"""The one op registry and backend resolution.

Every public op takes ``backend=None``. Backend names: ``"reference"`` (plain torch, always available),
``"cpu"`` (C++/OpenMP core), ``"cuda"`` (CUDA C++ in the core) and ``"triton"`` (kernels in
``hardneg.kernels``). ``None`` picks the best available backend for the input's device: on CUDA inputs the
GPU kernels, on CPU inputs the C++ kernel. Falling back to the reference warns once per op. An explicit
backend either runs or raises ``ValueError`` naming the op, the device and what is available.
"""
from __future__ import annotations

import functools
import os
import warnings
from dataclasses import dataclass, field
from typing import Callable

import torch

BACKENDS = ("reference", "cpu", "cuda", "triton")
# automatic choice, best first, per device type
_PREFERENCE = {"cuda": ("triton", "cuda", "reference"), "cpu": ("cpu", "reference")}


@functools.lru_cache(maxsize=None)
def core():
    """The compiled extension module, or None when it is not built."""
    try:
        from hardneg import _core
    except ImportError:  # pragma: no cover - depends on the build
        return None
    return _core


@functools.lru_cache(maxsize=None)
def _core_error() -> str:
    try:
        from hardneg import _core  # noqa: F401
    except ImportError as e:  # pragma: no cover
        return str(e)
    return ""


@functools.lru_cache(maxsize=None)
def cuda_kernels_built() -> bool:
    c = core()
    return bool(c is not None and c.build_info().get("cuda", False))


def triton_interpreting() -> bool:
    return os.environ.get("TRITON_INTERPRET", "0") == "1"


@functools.lru_cache(maxsize=None)
def triton_version() -> str | None:
    try:
        import triton
    except Exception:
        return None
    return triton.__version__


def _availability(backend: str, device: torch.device) -> tuple[bool, str]:
    dev = device.type
    if backend == "reference":
        return True, ""
    if backend == "cpu":
        if core() is None:
            return False, f"the compiled core did not import ({_core_error()})"
        if dev != "cpu":
            return False, "the 'cpu' backend needs CPU tensors"
        return True, ""
    if backend == "cuda":
        if not cuda_kernels_built():
            return False, "hardneg was built without CUDA kernels (no nvcc at build time, or HARDNEG_CUDA=OFF)"
        if dev != "cuda":
            return False, "the 'cuda' backend needs CUDA tensors"
        return True, ""
    if backend == "triton":
        if triton_version() is None:
            return False, "triton is not installed"
        if dev == "cuda":
            return True, ""
        if dev == "cpu" and triton_interpreting():
            return True, ""
        return False, "the 'triton' backend needs CUDA tensors (or TRITON_INTERPRET=1 with CPU tensors)"
    return False, f"unknown backend {backend!r}"


@dataclass
class _Op:
    name: str
    impls: dict[str, Callable] = field(default_factory=dict)


_REGISTRY: dict[str, _Op] = {}
_WARNED: set[str] = set()


def register(op: str, backend: str):
    """Decorator: register ``fn`` as the ``backend`` implementation of ``op``."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}")

    def deco(fn):
        _REGISTRY.setdefault(op, _Op(op)).impls[backend] = fn
        return fn

    return deco


def registered(op: str) -> list[str]:
    return [b for b in BACKENDS if b in _REGISTRY.get(op, _Op(op)).impls]


def ops() -> list[str]:
    return sorted(_REGISTRY)


def available(op: str, device: torch.device | str) -> list[str]:
    device = torch.device(device)
    return [b for b in registered(op) if _availability(b, device)[0]]


def resolve(op: str, backend: str | None, device: torch.device) -> tuple[str, Callable]:
    """Return (backend name, implementation) for ``op`` on ``device``."""
    entry = _REGISTRY[op]
    if backend is not None:
        if not isinstance(backend, str) or backend not in BACKENDS:
            raise ValueError(f"{op}: 'backend' must be None or one of {list(BACKENDS)} (got {backend!r})")
        if backend not in entry.impls:
            raise ValueError(
                f"{op}: backend {backend!r} is not implemented for this op; implemented: {registered(op)}; "
                f"available on {device.type}: {available(op, device)}"
            )
        ok, why = _availability(backend, device)
        if not ok:
            raise ValueError(
                f"{op}: backend {backend!r} is not available for {device.type} inputs ({why}); "
                f"available on {device.type}: {available(op, device)}"
            )
        return backend, entry.impls[backend]
    for b in _PREFERENCE.get(device.type, ("reference",)):
        if b in entry.impls and _availability(b, device)[0]:
            if b == "reference" and op not in _WARNED:
                _WARNED.add(op)
                warnings.warn(
                    f"hardneg.{op}: no compiled backend for {device.type} inputs; falling back to the (slow) "
                    f"pure-torch reference",
                    RuntimeWarning,
                    stacklevel=3,
                )
            return b, entry.impls[b]
    raise ValueError(f"{op}: no backend available for {device.type} inputs")  # pragma: no cover


def num_threads() -> int:
    """Threads the C++ kernels use: HARDNEG_NUM_THREADS, else torch's intra-op thread count."""
    env = os.environ.get("HARDNEG_NUM_THREADS")
    if env:
        return max(1, int(env))
    return torch.get_num_threads()


def device_args(device: torch.device) -> dict:
    """The device keyword arguments of the compiled kernels that run on both devices: ``num_threads`` (CPU),
    ``on_cuda`` and ``stream`` (torch's current CUDA stream, so the caching allocator's ordering holds)."""
    on_cuda = device.type == "cuda"
    stream = torch.cuda.current_stream(device).cuda_stream if on_cuda else 0
    return dict(num_threads=num_threads(), on_cuda=on_cuda, stream=stream)


# os.environ.get encodes its key on every call (~1 us, a streaming lookup's whole budget of Python is a few us);
# CPython's os.environ keeps the encoded mapping it updates in ``_data``, read directly where it exists.
_ENV_DATA = getattr(os.environ, "_data", None)
try:
    _DEBUG_KEY, _DEBUG_ON = os.environ.encodekey("HARDNEG_DEBUG"), os.environ.encodevalue("1")
except (AttributeError, TypeError):  # another os.environ: the plain lookup below
    _ENV_DATA = None


def debug_checks() -> bool:
    """``HARDNEG_DEBUG=1``: every argument check runs eagerly in Python, also where a kernel would do it
    (see :mod:`hardneg._validate`). Read on every call, so setting the variable at run time takes effect."""
    if _ENV_DATA is not None:
        return _ENV_DATA.get(_DEBUG_KEY) == _DEBUG_ON
    return os.environ.get("HARDNEG_DEBUG", "0") == "1"
