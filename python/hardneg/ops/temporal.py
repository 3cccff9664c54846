"""Temporal family: neighbour lookup strictly before an explicit time (TGN / TGAT / ENS).

Kernels read a :class:`hardneg.TemporalGraph` only through :meth:`~hardneg.TemporalGraph.kernel_view`.
"""
from __future__ import annotations

import torch

from hardneg import _validate as V
from hardneg._backend import core, debug_checks, device_args, register, resolve
from hardneg._constants import STRATEGIES, code
from hardneg._random import as_generator, compile_seed, seed_from
from hardneg.reference import temporal as _ref
from hardneg.temporal import TemporalGraph, check_queries

__all__ = ["temporal_neighbors", "temporal_assemble", "time_encode"]


def temporal_neighbors(graph: TemporalGraph, nodes: torch.Tensor, times: torch.Tensor, k: int, *,
                       strategy: str = "recent", inclusive: bool = False, window: float | None = None,
                       generator: torch.Generator | None = None, backend: str | None = None
                       ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """See :meth:`hardneg.TemporalGraph.neighbors`.

    Node ids and NaN times are checked on every call: on CUDA eagerly (one synchronisation each); on the CPU
    fast path (int64 nodes, times in the graph's dtype, no window, no generator or a ``torch.Generator``) inside
    the C++ kernel, with the same exception types and messages; ``HARDNEG_DEBUG=1`` checks them here instead.

    The CPU streaming path (below 4,096 queries) keeps a cursor per (level, node) with the graph state: each
    search starts where that node's previous one ended and gallops from there, so a replay in time order (a
    TGN / TGAT training loop) reads one or two entries per level instead of binary-searching the node's whole
    history. Any query order gives the same answers; graphs with more than 2^24 (level, node) pairs search
    without a cursor (it costs 4 bytes per pair).

    Raises:
        TypeError: not a TemporalGraph, non-integer nodes, float times for an int64-time graph, bad generator.
        ValueError: node ids out of range, NaN times, k <= 0, mismatched lengths, negative or NaN window,
            unknown strategy, device mismatch.

    Example:
        >>> import torch, hardneg
        >>> g = hardneg.TemporalGraph(torch.tensor([0, 0, 1]), torch.tensor([1, 2, 2]), torch.tensor([1, 2, 3]))
        >>> nbrs, eids, times, valid = hardneg.ops.temporal_neighbors(g, torch.tensor([2]), torch.tensor([4]), 2)
        >>> nbrs.tolist(), times.tolist()
        ([[1, 0]], [[3, 2]])
    """
    op = "temporal_neighbors"
    if torch.compiler.is_compiling():  # traced: the custom op (it runs this function, checks and all)
        from hardneg.ops import _library

        seed = compile_seed(op, generator) if generator is not None or strategy == "uniform" else 0
        return _library.temporal_neighbors(graph.handle, nodes, times, k, strategy, inclusive, window, seed, backend)
    if not isinstance(graph, TemporalGraph):
        raise TypeError(f"{op}: 'graph' must be a hardneg.TemporalGraph (got {V.describe(graph)})")
    view = _fast_cpu(graph, nodes, times, k, strategy, window, generator, backend)
    if view is not None:
        # the common CPU call: a few us of Python instead of ~150 us; ids and NaN are checked in C++
        if nodes.numel() < _STREAMING:
            return _tn_stream(view, graph.time_dtype, nodes, times, k, strategy, bool(inclusive), generator)
        return _tn_core(graph, nodes, times, k, strategy, bool(inclusive), None, generator, checked_in_core=True)
    k = V.integer(op, "k", k, minimum=1)
    strategy = V.choice(op, "strategy", strategy, STRATEGIES)
    V.generator(op, generator)
    generator = as_generator(generator)  # a SeedStream: the generator of its next sub-seed
    nodes, times = check_queries(op, graph, nodes, times)
    window = V.time_window(op, window, graph.time_dtype)
    V.alloc(op, "the outputs", (nodes.numel(), k), 25, graph.device)
    name, fn = resolve(op, backend, graph.device)
    B = nodes.numel()
    dev = graph.device
    if B == 0 or graph.num_levels == 0:
        pad_t = torch.iinfo(torch.int64).min if graph.time_dtype == torch.int64 else float("-inf")
        return (torch.full((B, k), -1, dtype=torch.int64, device=dev), torch.full((B, k), -1, dtype=torch.int64, device=dev),
                torch.full((B, k), pad_t, dtype=graph.time_dtype, device=dev), torch.zeros(B, k, dtype=torch.bool, device=dev))
    return fn(graph, nodes, times, k, strategy, bool(inclusive), window, generator)


_STREAMING = 4096  # below this many queries a CPU call runs on one thread through the streaming entry


def _fast_cpu(graph, nodes, times, k, strategy, window, generator, backend):
    """The graph's kernel view for the common call (a CPU graph with the core built, int64 nodes, times already
    in the graph's dtype, recent or uniform, no window, no generator or a torch.Generator), else None: only cheap
    attribute checks here (is_cpu rather than device.type: meta tensors are not CPU tensors either); node range
    and NaN are checked by the C++ kernel. Off under HARDNEG_DEBUG=1."""
    if ((strategy != "recent" and strategy != "uniform") or window is not None or backend not in (None, "cpu")
            or not (generator is None or isinstance(generator, torch.Generator))
            or type(k) is not int or not 0 < k <= 1 << 16
            or not isinstance(nodes, torch.Tensor) or not isinstance(times, torch.Tensor)
            or not nodes.is_cpu or not times.is_cpu or nodes.dtype != torch.int64
            or times.dtype != graph.time_dtype or nodes.dim() != 1 or times.dim() != 1
            or nodes.numel() != times.numel() or not nodes.is_contiguous() or not times.is_contiguous()
            or debug_checks()):
        return None
    view = graph.kernel_view()
    return None if view.streaming is None else view  # None: not a CPU graph, no levels or no core


def _tn_stream(view, time_dtype, nodes, times, k, strategy, inclusive, generator):
    """A streaming-size CPU call through the core's ``TemporalLevels.lookup``. ``view`` (the graph's kernel view)
    stays referenced until the call returns: its TemporalLevels holds raw pointers into the view's levels, and an
    append on another thread would otherwise free them. One allocation per output: a view of a shared block
    (``unbind``) costs more than an allocation. Uniform draws take one seed from ``generator``, as the threaded
    kernel does, and give its answer."""
    B = nodes.numel()
    uniform = strategy == "uniform"
    seed = seed_from(generator) if uniform else 0
    nbrs = torch.empty(B, k, dtype=torch.int64)
    eids = torch.empty(B, k, dtype=torch.int64)
    tts = torch.empty(B, k, dtype=time_dtype)
    valid = torch.empty(B, k, dtype=torch.bool)
    view.streaming.lookup(nodes=nodes.data_ptr(), times=times.data_ptr(), num_queries=B, k=k, strategy=int(uniform),
                          inclusive=inclusive, seed=seed, out_nbr=nbrs.data_ptr(), out_eid=eids.data_ptr(),
                          out_time=tts.data_ptr(), out_valid=valid.data_ptr())
    return nbrs, eids, tts, valid


@register("temporal_neighbors", "reference")
def _tn_ref(graph, nodes, times, k, strategy, inclusive, window, generator):
    return _ref.neighbors(graph, nodes, times, k, strategy, inclusive, window, generator)


def _tn_core(graph, nodes, times, k, strategy, inclusive, window, generator, checked_in_core=False):
    B = nodes.numel()
    dev = graph.device
    if graph.time_dtype == torch.int64:  # one allocation for the three int64 outputs
        buf = torch.empty(3, B, k, dtype=torch.int64, device=dev)
        nbrs, eids, tts = buf[0], buf[1], buf[2]
    else:
        buf = torch.empty(2, B, k, dtype=torch.int64, device=dev)
        nbrs, eids = buf[0], buf[1]
        tts = torch.empty(B, k, dtype=graph.time_dtype, device=dev)
    valid = torch.empty(B, k, dtype=torch.bool, device=dev)
    view = graph.kernel_view()
    core().temporal_neighbors(
        **view.core_args(), nodes=nodes.data_ptr(), times=times.data_ptr(), num_queries=B, k=k,
        strategy=code(STRATEGIES, strategy), inclusive=inclusive, has_window=window is not None,
        window=float(window) if window is not None else 0.0,
        int_window=window if window is not None and graph.time_dtype == torch.int64 else 0,
        seed=seed_from(generator) if strategy == "uniform" else 0, out_nbr=nbrs.data_ptr(), out_eid=eids.data_ptr(),
        out_time=tts.data_ptr(), out_valid=valid.data_ptr(), **device_args(dev),
        check_num_nodes=view.num_nodes if checked_in_core else 0)
    return nbrs, eids, tts, valid


register("temporal_neighbors", "cpu")(_tn_core)
register("temporal_neighbors", "cuda")(_tn_core)


# ---------------------------------------------------------------------------------------------- assemble
def temporal_assemble(graph: TemporalGraph, nodes: torch.Tensor, times: torch.Tensor, k: int, *,
                      event_times: torch.Tensor | None = None, features: torch.Tensor | None = None,
                      edge_ids: bool = True, strategy: str = "recent", generator: torch.Generator | None = None,
                      backend: str | None = None):
    """A temporal GNN layer's inputs for a batch of queries in one call: the k neighbours strictly before each
    query time (as :func:`temporal_neighbors`, recent or uniform), each neighbour's time delta to the query's
    event time and, optionally, the neighbour events' feature rows.

    Args:
        graph: a :class:`hardneg.TemporalGraph`.
        nodes: [B] int64 node ids. times: [B] query times, in the graph's time dtype (strict: events at or
            after a query's time are never returned).
        k: neighbours per query, >= 1.
        event_times: [B] times the deltas are measured from (default: ``times``), the graph's time dtype.
        features: optional [E, F] float32 rows indexed by edge id (every edge id of the graph must be a row).
        edge_ids: False skips the edge-id output (returned as None) when neither features nor ``"uniform"``
            need it: 13 instead of 21 bytes written per entry.
        strategy: ``"recent"`` or ``"uniform"`` (same draws as :func:`temporal_neighbors` for a generator).
        generator: ``torch.Generator`` for ``"uniform"``.
        backend: None, ``"reference"``, ``"cpu"`` or ``"cuda"``.

    Returns:
        ``(nbrs [B, k] int64, edge_ids [B, k] int64 or None, dt [B, k] float32, valid [B, k] bool,
        feats [B, k, F] float32 or None)``; ``dt`` = float32(event_time − neighbour time), computed in float64;
        padding: -1, -1,
        0, False, zeros.

    Raises:
        TypeError: not a TemporalGraph, non-integer nodes, times of another dtype than the graph's, features
            that are not float32, a bad generator.
        ValueError: node ids out of range, NaN times, k <= 0, lengths that differ, an unknown strategy,
            features that are not [E, F] with a row for every edge id, device mismatch.

    Example:
        >>> import torch, hardneg
        >>> g = hardneg.TemporalGraph(torch.tensor([0, 0, 1]), torch.tensor([1, 2, 2]), torch.tensor([1, 2, 3]))
        >>> nbrs, eids, dt, valid, _ = hardneg.ops.temporal_assemble(g, torch.tensor([0, 2]), torch.tensor([3, 3]), 2)
        >>> nbrs.tolist(), dt.tolist()
        ([[2, 1], [0, -1]], [[1.0, 2.0], [1.0, 0.0]])
    """
    op = "temporal_assemble"
    if torch.compiler.is_compiling():
        from hardneg.ops import _library

        seed = compile_seed(op, generator) if generator is not None or strategy == "uniform" else 0
        nbrs, eids, dt, valid, feats = _library.temporal_assemble(graph.handle, nodes, times, k, event_times, features,
                                                                  strategy, seed, backend)
        return nbrs, eids if edge_ids else None, dt, valid, feats if features is not None else None
    if not isinstance(graph, TemporalGraph):
        raise TypeError(f"{op}: 'graph' must be a hardneg.TemporalGraph (got {V.describe(graph)})")
    if not isinstance(edge_ids, bool):
        raise TypeError(f"{op}: 'edge_ids' must be a bool (got {V.describe(edge_ids)})")
    want_ids = edge_ids or features is not None or strategy == "uniform"
    view = _fast_assemble(graph, nodes, times, k, event_times, features, strategy, generator, backend)
    if view is not None:
        if nodes.numel() < _STREAMING:
            return _ta_stream(view, nodes, times, k, event_times, strategy, generator, edge_ids)
        out = _ta_core(graph, nodes, times, k, event_times, features, strategy, generator, want_ids,
                       checked_in_core=True)
        return out if edge_ids else (out[0], None, *out[2:])
    k = V.integer(op, "k", k, minimum=1)
    strategy = V.choice(op, "strategy", strategy, STRATEGIES)
    V.generator(op, generator)
    generator = as_generator(generator)  # a SeedStream: the generator of its next sub-seed
    nodes, times = check_queries(op, graph, nodes, times)
    if event_times is not None:
        event_times = V.tensor(op, "event_times", event_times, ndim=1)
        if event_times.numel() != nodes.numel() or event_times.device != graph.device:
            raise ValueError(f"{op}: 'event_times' must be [{nodes.numel()}] on {graph.device} "
                             f"(got {V.describe(event_times)})")
        if event_times.dtype != graph.time_dtype:
            raise TypeError(f"{op}: 'event_times' must have the graph's time dtype {graph.time_dtype} "
                            f"(got {event_times.dtype})")
        event_times = event_times.contiguous()
    if features is not None:
        features = _check_features(op, graph, features)
    name, fn = resolve(op, backend, graph.device)
    B = nodes.numel()
    if B == 0 or graph.num_levels == 0:
        dev = graph.device
        F = None if features is None else features.shape[1]
        pad = torch.full((2, B, k), -1, dtype=torch.int64, device=dev)
        out = (pad[0], pad[1], torch.zeros(B, k, device=dev), torch.zeros(B, k, dtype=torch.bool, device=dev),
               None if F is None else torch.zeros(B, k, F, device=dev))
    else:
        out = fn(graph, nodes, times, k, event_times, features, strategy, generator, want_ids)
    return out if edge_ids else (out[0], None, *out[2:])


def _check_features(op, graph, features):
    if not isinstance(features, torch.Tensor) or features.dtype != torch.float32:
        raise TypeError(f"{op}: 'features' must be a float32 tensor [E, F] (got {V.describe(features)})")
    if features.dim() != 2 or features.device != graph.device:
        raise ValueError(f"{op}: 'features' must be [E, F] on {graph.device} (got {V.describe(features)})")
    rows = graph.kernel_view().num_edge_ids
    if features.shape[0] < rows:
        raise ValueError(f"{op}: 'features' must have a row for every edge id of the graph (0..{rows - 1}; "
                         f"got {features.shape[0]} rows)")
    return features.contiguous()


def _fast_assemble(graph, nodes, times, k, event_times, features, strategy, generator, backend):
    """The graph's kernel view for the streaming call (CPU, int64 nodes, int64 times, recent or uniform, no
    features, no generator or a torch.Generator), else None: cheap attribute checks only; node ids are checked by
    the C++ kernel (float-time graphs take the checked path for NaN). Off under HARDNEG_DEBUG=1."""
    if (backend not in (None, "cpu") or (strategy != "recent" and strategy != "uniform") or type(k) is not int
            or not 0 < k <= 1 << 16
            or not (generator is None or isinstance(generator, torch.Generator)) or features is not None
            or not isinstance(nodes, torch.Tensor) or not isinstance(times, torch.Tensor)
            or graph.time_dtype != torch.int64 or not nodes.is_cpu or not times.is_cpu
            or nodes.dtype != torch.int64 or times.dtype != torch.int64 or nodes.dim() != 1 or times.dim() != 1
            or nodes.numel() != times.numel() or not nodes.is_contiguous() or not times.is_contiguous()
            or (event_times is not None and not (isinstance(event_times, torch.Tensor) and event_times.is_cpu
                                                 and event_times.dtype == torch.int64 and event_times.dim() == 1
                                                 and event_times.numel() == nodes.numel()
                                                 and event_times.is_contiguous()))
            or debug_checks()):
        return None
    view = graph.kernel_view()
    return None if view.streaming is None else view  # None: not a CPU graph, no levels or no core


def _ta_stream(view, nodes, times, k, event_times, strategy, generator, edge_ids):
    """A streaming-size CPU call through the core's ``TemporalLevels.assemble`` (no features); ``view`` is
    referenced until the call returns (see :func:`_tn_stream`). One allocation per output: a view of a shared
    block costs as much as an allocation. Uniform draws need the edge-id row (their scratch), returned only
    when ``edge_ids``."""
    B = nodes.numel()
    uniform = strategy == "uniform"
    seed = seed_from(generator) if uniform else 0
    nbrs = torch.empty(B, k, dtype=torch.int64)
    eids = torch.empty(B, k, dtype=torch.int64) if edge_ids or uniform else None
    dt = torch.empty(B, k, dtype=torch.float32)
    valid = torch.empty(B, k, dtype=torch.bool)
    view.streaming.assemble(
        nodes=nodes.data_ptr(), times=times.data_ptr(),
        event_times=0 if event_times is None else event_times.data_ptr(), num_queries=B, k=k,
        strategy=int(uniform), seed=seed, out_nbr=nbrs.data_ptr(), out_eid=0 if eids is None else eids.data_ptr(),
        out_dt=dt.data_ptr(), out_valid=valid.data_ptr())
    return nbrs, eids if edge_ids else None, dt, valid, None


@register("temporal_assemble", "reference")
def _ta_ref(graph, nodes, times, k, event_times, features, strategy, generator, want_ids):
    return _ref.assemble(graph, nodes, times, k, event_times, features, strategy, generator)


def _ta_core(graph, nodes, times, k, event_times, features, strategy, generator, want_ids, checked_in_core=False):
    B, dev = nodes.numel(), graph.device
    ids = torch.empty(1 + want_ids, B, k, dtype=torch.int64, device=dev)  # one allocation for nbrs and edge ids
    dt = torch.empty(B, k, dtype=torch.float32, device=dev)
    valid = torch.empty(B, k, dtype=torch.bool, device=dev)
    feats = None if features is None else torch.empty(B, k, features.shape[1], dtype=torch.float32, device=dev)
    view = graph.kernel_view()
    core().temporal_assemble(
        **view.core_args(), nodes=nodes.data_ptr(), times=times.data_ptr(),
        event_times=0 if event_times is None else event_times.data_ptr(), num_queries=B, k=k,
        strategy=code(STRATEGIES, strategy),
        seed=seed_from(generator) if strategy == "uniform" else 0,
        features=0 if features is None else features.data_ptr(),
        num_features=0 if features is None else features.shape[1], out_nbr=ids[0].data_ptr(),
        out_eid=ids[1].data_ptr() if want_ids else 0, out_dt=dt.data_ptr(), out_valid=valid.data_ptr(),
        out_feat=0 if feats is None else feats.data_ptr(), **device_args(dev),
        check_num_nodes=view.num_nodes if checked_in_core else 0)
    return ids[0], ids[1] if want_ids else None, dt, valid, feats


register("temporal_assemble", "cpu")(_ta_core)
register("temporal_assemble", "cuda")(_ta_core)


# --------------------------------------------------------------------------------------------------------------


def time_encode(dt: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None, *,
                backend: str | None = None) -> torch.Tensor:
    """The cosine time encoding of TGAT / TGN (PyG's ``TimeEncoder``): ``cos(dt·w + b)`` for every time gap and
    every one of τ frequencies, differentiable with respect to ``dt``, ``weight`` and ``bias``.

    The phase is formed in float32 exactly as ``torch.nn.Linear(1, τ)`` forms it (the product rounded, then the
    sum rounded), so the result is PyG's encoding to within an ulp of cos. The kernels then reduce that phase
    exactly (in float64) and take cos and sin together in one pass; the sin is kept for the backward. Time gaps
    of months at TGAT's w = 1 make phases of 10⁷, where torch's float32 ``cos`` (and its ``sin`` in the backward)
    takes its slow path: ``bench/time_encode.py`` measures the fused op against PyG's module.

    Args:
        dt: time gaps, any shape, floating (cast to float32, the dtype the encoder's Linear takes).
        weight: the frequencies w, [τ] or ``Linear(1, τ).weight`` [τ, 1], floating; may require grad.
        bias: the phases b, [τ], or None; may require grad.
        backend: None (best for the device), ``"reference"``, ``"cpu"`` or ``"triton"``.

    Returns:
        float32 [*dt.shape, τ].

    Raises:
        TypeError: non-tensor or non-floating ``dt``, ``weight`` or ``bias``.
        ValueError: ``weight`` not [τ] or [τ, 1], ``bias`` not [τ], inputs on different devices, an unknown or
            unavailable backend.

    Example:
        >>> import torch, hardneg
        >>> w = 1.0 / 10 ** torch.linspace(0, 9, 8)
        >>> hardneg.ops.time_encode(torch.tensor([0.0, 3600.0]), w).shape
        torch.Size([2, 8])
    """
    op = "time_encode"
    if torch.compiler.is_compiling():  # traced: the custom op (it runs this function, checks and all)
        from hardneg.ops import _library

        return _library.time_encode(dt, weight, bias, backend)
    if not isinstance(dt, torch.Tensor) or not dt.is_floating_point():
        raise TypeError(f"{op}: 'dt' must be a floating tensor of time gaps (got {V.describe(dt)})")
    V.tensor(op, "dt", dt)
    w = V.tensor(op, "weight", weight, dtypes=V.FLOAT_DTYPES, kind="floating tensor", what="of frequencies [τ]")
    if not (w.dim() == 1 or (w.dim() == 2 and w.shape[1] == 1)):
        raise ValueError(f"{op}: 'weight' must be [τ] or Linear(1, τ).weight [τ, 1] (got {V.describe(w)})")
    w = w.reshape(-1)
    names, xs = ("dt", "weight"), (dt, w)
    if bias is not None:
        bias = V.tensor(op, "bias", bias, ndim=1, dtypes=V.FLOAT_DTYPES, kind="floating tensor",
                        what="of phases [τ]")
        if bias.shape[0] != w.shape[0]:
            raise ValueError(f"{op}: 'bias' must have one entry per frequency ({w.shape[0]}; got {V.describe(bias)})")
        names, xs = names + ("bias",), xs + (bias,)
    V.same_device(op, names, *xs)
    _, fn = resolve(op, backend, dt.device)
    shape = dt.shape
    out = _TimeEncode.apply(dt.reshape(-1).to(torch.float32), w.to(torch.float32),
                            None if bias is None else bias.to(torch.float32), fn)
    return out.view(*shape, w.shape[0])


class _TimeEncode(torch.autograd.Function):
    """cos(p), p = fl(fl(dt·w) + b); the backward's −sin(p) comes from the forward's kernel pass."""

    @staticmethod
    def forward(ctx, dt, w, b, fn):
        need = any(ctx.needs_input_grad[:3])
        cos, sin = fn(dt.contiguous(), w.contiguous(), None if b is None else b.contiguous(), need)
        ctx.save_for_backward(dt, w, sin)
        ctx.has_bias = b is not None
        return cos

    @staticmethod
    def backward(ctx, grad):
        dt, w, sin = ctx.saved_tensors
        needs = ctx.needs_input_grad
        return (*time_encode_backward(grad, sin, dt, w, needs[0], needs[1], ctx.has_bias and needs[2]), None)


def time_encode_backward(grad, sin, dt, w, need_dt: bool, need_w: bool, need_b: bool):
    """``Linear(1, τ)``'s backward through ``cos``: ``(∂dt [M], ∂w [τ], ∂b [τ])`` (None where not needed) from the
    upstream ``grad`` [M, τ] and ``sin`` [M, τ] of the phases, for float32 ``dt`` [M] and ``w`` [τ] (the eager
    op's backward and the custom op's)."""
    gp = -(grad * sin)  # ∂L/∂p
    return (gp @ w if need_dt else None, gp.t() @ dt if need_w else None, gp.sum(0) if need_b else None)


@register("time_encode", "reference")
def _te_ref(dt, w, b, with_sin):
    return _ref.time_encode(dt, w, b, with_sin)


@register("time_encode", "cpu")
def _te_cpu(dt, w, b, with_sin):
    M, D = dt.shape[0], w.shape[0]
    cos = torch.empty(M, D, dtype=torch.float32)
    sin = torch.empty(M, D, dtype=torch.float32) if with_sin else None
    core().time_encode_cpu(dt=dt.data_ptr(), weight=w.data_ptr(), bias=0 if b is None else b.data_ptr(),
                           out_cos=cos.data_ptr(), out_sin=0 if sin is None else sin.data_ptr(), rows=M, dim=D,
                           num_threads=device_args(dt.device)["num_threads"])
    return cos, sin


@register("time_encode", "triton")
def _te_triton(dt, w, b, with_sin):
    from hardneg.kernels.temporal.time_encode import time_encode_triton

    return time_encode_triton(dt, w, b, with_sin)
