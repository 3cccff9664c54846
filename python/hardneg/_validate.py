"""Argument checks with uniform messages: ``op: 'arg' must be ... (got ...)``.

TypeError for types and dtypes, ValueError for shapes, values, ranges and devices.

Id ranges (:func:`ids`, and the CSR ids of :func:`csr`) are checked on every call, before any kernel runs: on
CPU tensors a reduction; on CUDA tensors eagerly, one device synchronisation per checked tensor (min and max
are read back together), so no kernel ever reads an unchecked id. One hot path moves the check into the
kernel instead: the CPU streaming call of ``temporal_neighbors`` checks node ids and NaN times inside its C++
loop. ``HARDNEG_DEBUG=1`` (:func:`hardneg._backend.debug_checks`) turns that off, so every check runs here, eagerly.
"""
from __future__ import annotations

import math
import numbers

import torch

FLOAT_DTYPES = (torch.float32, torch.float16, torch.bfloat16, torch.float64)
INDEX_DTYPES = (torch.int64, torch.int32)


def describe(x) -> str:
    if isinstance(x, torch.Tensor):
        return f"shape {list(x.shape)}, dtype {x.dtype}, device {x.device}"
    return f"{type(x).__name__} {x!r}"[:200]


def tensor(op: str, name: str, x, *, ndim: int | None = None, what: str = "", dtypes=None, kind: str = "") -> torch.Tensor:
    """Check that ``x`` is a tensor with ``ndim`` dims and one of ``dtypes``."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{op}: '{name}' must be a torch.Tensor{(' ' + what) if what else ''} (got {describe(x)})")
    if dtypes is not None and x.dtype not in dtypes:
        raise TypeError(
            f"{op}: '{name}' must be a {ndim}-D {kind or 'tensor'}{(' ' + what) if what else ''} with dtype in "
            f"{[str(d) for d in dtypes]} (got {describe(x)})"
        )
    if ndim is not None and x.dim() != ndim:
        raise ValueError(f"{op}: '{name}' must be a {ndim}-D {kind or 'tensor'}{(' ' + what) if what else ''} (got {describe(x)})")
    if x.device.type == "meta":
        raise ValueError(f"{op}: '{name}' is on the meta device, which holds no data; pass a CPU or CUDA tensor "
                         f"(got {describe(x)})")
    return x


def as_tensor(op: str, name: str, x, what: str) -> torch.Tensor:
    """``x`` as a tensor (lists and arrays converted); TypeError naming ``what`` it must be otherwise."""
    if isinstance(x, torch.Tensor):
        return x
    try:
        return torch.as_tensor(x)
    except (TypeError, ValueError, RuntimeError):
        raise TypeError(f"{op}: '{name}' must be {what} (got {describe(x)})") from None


def floating(op: str, name: str, x, ndim: int, what: str) -> torch.Tensor:
    if isinstance(x, torch.Tensor) and not (x.is_floating_point()):
        raise TypeError(f"{op}: '{name}' must be a {ndim}-D floating tensor {what} (got {describe(x)})")
    return tensor(op, name, x, ndim=ndim, what=what, dtypes=FLOAT_DTYPES, kind="floating tensor")


def finite(op: str, name: str, x: torch.Tensor) -> None:
    """Raise if x has NaN/Inf. One streaming reduction (any NaN/Inf makes the sum non-finite), no B×d
    temporaries; only when the sum itself is non-finite (NaN/Inf, or overflow) is x checked exactly, in chunks.
    (``torch.isfinite(x).all()`` on a 1M x 64 float tensor peaks at ~430 MiB of temporaries.)"""
    if torch.compiler.is_compiling() or not x.numel():  # compiled: the ops' eager implementations check
        return
    if bool(torch.isfinite(x.sum())):  # (a dtype= argument would materialise an upcast copy)
        return
    flat = x.reshape(x.shape[0], -1) if x.dim() else x.reshape(1, 1)
    bad = 0
    step = max(1, (1 << 22) // max(1, flat.shape[1]))
    for i in range(0, flat.shape[0], step):
        bad += int((~torch.isfinite(flat[i : i + step])).sum())
    if bad:
        raise ValueError(f"{op}: '{name}' must be finite (got {bad} NaN/Inf values in {describe(x)})")


def ids(op: str, name: str, x: torch.Tensor, n, *, device: torch.device | None = None, what="ids") -> torch.Tensor:
    """The one id range check: ``x`` (an integer tensor) as int64, every value in [0, n) (``n=None``: >= 0).

    ``device``: where ``x`` must be (else ValueError). ``what`` names the ids in the message
    (``'src' node ids must be in [0, 4) (got min 0, max 9)``). A 2-D ``x`` may have one bound per column:
    ``n`` (and ``what``) a sequence, and the message names the column (``'keys[:, 1]' relation ids ...``).
    One reduction and, on CUDA, one synchronisation (module docstring).
    """
    if device is not None and x.device != device:
        raise ValueError(f"{op}: '{name}' must be on {device} like the other inputs (got {x.device})")
    x = x.to(torch.int64)
    if torch.compiler.is_compiling() or not x.numel():  # compiled: the ops' eager implementations check
        return x
    if isinstance(n, (list, tuple)):
        lo, hi = torch.stack([x.amin(0), x.amax(0)]).tolist()
        whats = what if isinstance(what, (list, tuple)) else [what] * len(n)
        for j, (a, b, bound, w) in enumerate(zip(lo, hi, n, whats)):
            _in_range(op, f"{name}[:, {j}]", w, bound, a, b)
    else:
        lo, hi = torch.stack(torch.aminmax(x)).tolist()
        _in_range(op, name, what, n, lo, hi)
    return x


def _in_range(op: str, name: str, what: str, n: int | None, lo: int, hi: int) -> None:
    if lo < 0 or (n is not None and hi >= n):
        bound = f"in [0, {n})" if n is not None else ">= 0"
        raise ValueError(f"{op}: '{name}' {what} must be {bound} (got min {lo}, max {hi})")


def same_device(op: str, names: tuple[str, ...], *xs: torch.Tensor) -> None:
    devs = {x.device for x in xs}
    if len(devs) > 1:
        got = ", ".join(f"'{n}' on {x.device}" for n, x in zip(names, xs))
        raise ValueError(f"{op}: tensors must be on the same device (got {got})")


def integer(op: str, name: str, v, *, minimum: int | None = None) -> int:
    if isinstance(v, bool) or not isinstance(v, (numbers.Integral,)) and not (
        isinstance(v, torch.Tensor) and v.dim() == 0 and not v.is_floating_point()
    ):
        raise TypeError(f"{op}: '{name}' must be an int (got {describe(v)})")
    v = int(v)
    if minimum is not None and v < minimum:
        raise ValueError(f"{op}: '{name}' must be >= {minimum} (got {v})")
    return v


def boolean(op: str, name: str, v) -> bool:
    """A bool (numpy / torch bools too); TypeError otherwise (a string "false" would be truthy)."""
    if isinstance(v, bool) or type(v).__name__ == "bool_" or (isinstance(v, torch.Tensor) and v.dtype == torch.bool
                                                              and v.dim() == 0):
        return bool(v)
    raise TypeError(f"{op}: '{name}' must be a bool (got {describe(v)})")


def positive_float(op: str, name: str, v) -> float:
    if isinstance(v, bool) or not isinstance(v, numbers.Real):
        raise TypeError(f"{op}: '{name}' must be a float (got {describe(v)})")
    v = float(v)
    if not math.isfinite(v) or v <= 0:
        raise ValueError(f"{op}: '{name}' must be finite and > 0 (got {v})")
    return v


def choice(op: str, name: str, v, options) -> str:
    if not isinstance(v, str):
        raise TypeError(f"{op}: '{name}' must be a str, one of {list(options)} (got {describe(v)})")
    if v not in options:
        raise ValueError(f"{op}: '{name}' must be one of {list(options)} (got {v!r})")
    return v


def generator(op: str, g) -> None:
    from hardneg._random import SeedStream

    if g is not None and not isinstance(g, (torch.Generator, SeedStream)):
        raise TypeError(f"{op}: 'generator' must be a torch.Generator or None (got {describe(g)})")


def csr(op: str, name: str, value, rows: int, num_ids: int, device: torch.device):
    """Validate a CSR pair ``(indptr [rows+1], indices)`` and normalise it: ids sorted and unique per row.

    Returns ``(indptr int64, indices int64)`` on ``device``.
    """
    indptr, indices = csr_structure(op, name, value, rows, device)
    indices = ids(op, name, indices, num_ids)
    return normalize_csr(indptr, indices, rows, num_ids)


def csr_structure(op: str, name: str, value, rows: int, device: torch.device):
    """The structure of a CSR pair ``(indptr [rows+1], indices)``: integer tensors on ``device``, indptr from 0 to
    len(indices) and non-decreasing. Returns ``(indptr int64, indices)``; the ids are not range-checked here."""
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise TypeError(f"{op}: '{name}' must be a CSR pair (indptr, indices) of int64 tensors (got {describe(value)})")
    indptr, indices = value
    tensor(op, f"{name}[0] (indptr)", indptr, ndim=1, dtypes=INDEX_DTYPES, kind="integer tensor")
    tensor(op, f"{name}[1] (indices)", indices, ndim=1, dtypes=INDEX_DTYPES, kind="integer tensor")
    if indptr.device != device or indices.device != device:
        raise ValueError(
            f"{op}: '{name}' must be on {device} like the other inputs (got indptr on {indptr.device}, "
            f"indices on {indices.device})"
        )
    if indptr.numel() != rows + 1:
        raise ValueError(f"{op}: '{name}' indptr must have {rows + 1} entries (rows + 1) (got {indptr.numel()})")
    indptr = indptr.to(torch.int64)
    first, last = indptr[[0, -1]].tolist()
    if first != 0 or last != indices.numel():
        raise ValueError(
            f"{op}: '{name}' indptr must start at 0 and end at len(indices)={indices.numel()} "
            f"(got indptr[0]={first}, indptr[-1]={last})"
        )
    if rows and bool((indptr[1:] < indptr[:-1]).any()):
        raise ValueError(f"{op}: '{name}' indptr must be non-decreasing")
    return indptr, indices


def normalize_csr(indptr: torch.Tensor, indices: torch.Tensor, rows: int, num_ids: int):
    """Sort ids within each row and drop duplicates (one vectorised pass; none when no row holds two ids)."""
    if indices.numel() == 0:
        return indptr, indices
    counts = indptr[1:] - indptr[:-1]
    if (indices.numel() <= rows and not torch.compiler.is_compiling()
            and not bool((counts > 1).any())):  # at most one id a row: sorted and unique already
        return indptr, indices
    key_space("csr", "(row, id) keys", rows, max(num_ids, 1))
    row = torch.repeat_interleave(torch.arange(rows, device=indices.device), counts)
    key = torch.unique(row * max(num_ids, 1) + indices)  # sorted, unique
    new_row = torch.div(key, max(num_ids, 1), rounding_mode="floor")
    new_idx = key - new_row * max(num_ids, 1)
    new_ptr = torch.zeros(rows + 1, dtype=torch.int64, device=indices.device)
    new_ptr[1:] = torch.cumsum(torch.bincount(new_row, minlength=rows), 0)
    return new_ptr, new_idx


INT64_MAX = (1 << 63) - 1


def real(op: str, name: str, v, *, minimum: float | None = None, maximum: float | None = None,
         strict: bool = False) -> float:
    """A finite float (margins, temperatures, rates): TypeError for a non-number, ValueError for NaN/Inf or a
    value outside [minimum, maximum] (``strict``: the open interval)."""
    if isinstance(v, bool) or not isinstance(v, numbers.Real):
        raise TypeError(f"{op}: '{name}' must be a float (got {describe(v)})")
    v = float(v)
    lo_bad = minimum is not None and (v <= minimum if strict else v < minimum)
    hi_bad = maximum is not None and (v >= maximum if strict else v > maximum)
    if not math.isfinite(v) or lo_bad or hi_bad:
        lo = "-inf" if minimum is None else minimum
        hi = "inf" if maximum is None else maximum
        rng = f"({lo}, {hi})" if strict else f"[{lo}, {hi}]"
        raise ValueError(f"{op}: '{name}' must be finite and in {rng} (got {v})")
    return v


def time_window(op: str, window, time_dtype: torch.dtype):
    """``window`` of a temporal query: None, or a number >= 0 in the graph's time kind. int64 graphs take an
    int (an integral float too), kept exact and saturated at the int64 maximum (no window arithmetic can
    overflow: the kernels treat ``t - window`` below the int64 range as unbounded); ``inf`` means no window."""
    if window is None:
        return None
    if isinstance(window, bool) or not isinstance(window, numbers.Real):
        raise TypeError(f"{op}: 'window' must be a number >= 0 or None (got {describe(window)})")
    if isinstance(window, float) and math.isnan(window) or window < 0:
        raise ValueError(f"{op}: 'window' must be >= 0 (got {window})")
    if time_dtype == torch.int64:
        if isinstance(window, float) and math.isinf(window):
            return None
        if not isinstance(window, numbers.Integral) and not float(window).is_integer():
            raise TypeError(f"{op}: the graph has int64 times; 'window' must be an integer (got {window!r})")
        return min(int(window), INT64_MAX)
    return float(window)


def _memory_bytes(device: torch.device) -> int:
    if device.type == "cuda":
        return torch.cuda.get_device_properties(device).total_memory
    import os

    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - non-POSIX
        return 1 << 46


def alloc(op: str, what: str, shape, bytes_per_element: int, device) -> None:
    """ValueError, before anything is allocated, when an output of ``shape`` could not fit in the memory of
    ``device`` (so an oversized ``k`` or ``n`` never reaches the allocator), naming the size it would need."""
    numel = 1
    for s in shape:
        numel *= int(s)
    need = numel * bytes_per_element
    have = _memory_bytes(torch.device(device))
    if need > have:
        raise ValueError(f"{op}: {what} {list(shape)} would need {need / 2**30:.1f} GiB, more than the "
                         f"{have / 2**30:.1f} GiB of memory on {device}")


_F32_MAX = float(torch.finfo(torch.float32).max)


def score_range(op: str, q: torch.Tensor, c: torch.Tensor, metric: str) -> None:
    """ValueError when ``q`` or ``c`` holds NaN/Inf (the :func:`finite` error for 'query' / 'candidates') or a float32
    score of ``q`` against ``c`` could overflow (scores are accumulated in float32; an overflowed score would
    read as -inf, the mark of an excluded candidate). A bound from the largest magnitudes (one min/max
    reduction per tensor, which also finds NaN/Inf: they propagate to the min or max): |q.c| <= d max|q| max|c|,
    |q - c|^2 <= d (max|q| + max|c|)^2 (also bounds the |q|^2 + |c|^2 of the expanded form), |q - c|_1 <= d (...).
    float64 inputs beyond float32's range fail here too instead of being downcast to inf."""
    if torch.compiler.is_compiling():  # compiled: the ops' eager implementations check
        return
    mq, mc = magnitude(op, "query", q), magnitude(op, "candidates", c)
    if q.numel() and c.numel():
        score_bound(op, q.shape[1], mq, mc, metric)


def magnitude(op: str, name: str, x: torch.Tensor) -> float:
    """The largest |entry| of ``x`` (0 when empty), from one min/max reduction; the :func:`finite` error when ``x``
    holds NaN/Inf. A caller that keeps a table (ENS's candidates) checks it once and reuses the bound."""
    m = max(abs(v) for v in torch.stack(torch.aminmax(x)).double().tolist()) if x.numel() else 0.0
    if not math.isfinite(m):
        finite(op, name, x)  # raises, counting the NaN/Inf values
    return m


def score_bound(op: str, d: int, mq: float, mc: float, metric: str) -> None:
    """The float32 overflow check of :func:`score_range` from the two magnitudes (``d`` features)."""
    if metric == "cos":
        bound = d * max(mq, mc) ** 2  # each vector's squared norm is accumulated in float32
    elif metric == "dot":
        bound = d * mq * mc
    elif metric == "l2":
        bound = d * (mq + mc) ** 2
    else:  # l1, rotate
        bound = d * (mq + mc) * 2
    if not bound <= _F32_MAX:
        raise ValueError(f"{op}: scores could overflow float32 with metric {metric!r}: 'query' has entries up to "
                         f"{mq:.3g} and 'candidates' up to {mc:.3g} in magnitude (d={d}); rescale the inputs "
                         f"(the largest |score| must stay below {_F32_MAX:.3g})")


def key_space(op: str, what: str, *sizes: int) -> None:
    """ValueError when keys built by multiplying ids of these ranges (``a * n_b + b``...) could overflow int64,
    checked before the keys are formed (Python ints do not overflow)."""
    total = 1
    for n in sizes:
        total *= max(int(n), 1)
    if total > INT64_MAX:
        raise ValueError(f"{op}: {what} over ranges {list(sizes)} would overflow int64 (product {total} > "
                         f"{INT64_MAX})")
