"""Temporal family: neighbour lookup strictly before an explicit time (TGN / TGAT / ENS).

Kernels read a :class:`hardneg.TemporalGraph` only through :meth:`~hardneg.TemporalGraph.kernel_view`.
"""
from __future__ import annotations

import torch

from hardneg import _validate as V
from hardneg._backend import core, debug_checks, device_args, register, resolve
from hardneg._constants import STRATEGIES, code
from hardneg._random import seed_from
from hardneg.reference import temporal as _ref
from hardneg.temporal import TemporalGraph, check_queries

__all__ = ["temporal_neighbors"]


def temporal_neighbors(graph: TemporalGraph, nodes: torch.Tensor, times: torch.Tensor, k: int, *,
                       strategy: str = "recent", inclusive: bool = False, window: float | None = None,
                       generator: torch.Generator | None = None, backend: str | None = None
                       ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """See :meth:`hardneg.TemporalGraph.neighbors`.

    Node ids and NaN times are checked on every call: on CUDA eagerly (one synchronisation each); on the CPU
    streaming path (int64 nodes, times in the graph's dtype, ``"recent"``, no window) inside the C++ kernel,
    with the same exception types and messages; ``HARDNEG_DEBUG=1`` checks them here instead.

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
    if not isinstance(graph, TemporalGraph):
        raise TypeError(f"{op}: 'graph' must be a hardneg.TemporalGraph (got {V.describe(graph)})")
    if _fast_cpu(graph, nodes, times, k, strategy, window, generator, backend):
        # streaming-size CPU calls: ~10 us of Python instead of ~150 us; ids and NaN are checked in C++
        return _tn_core(graph, nodes, times, k, strategy, bool(inclusive), None, None, checked_in_core=True)
    k = V.integer(op, "k", k, minimum=1)
    strategy = V.choice(op, "strategy", strategy, STRATEGIES)
    V.generator(op, generator)
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


def _fast_cpu(graph, nodes, times, k, strategy, window, generator, backend) -> bool:
    """The common streaming call (CPU, int64 nodes, times already in the graph's dtype, recent, no window):
    only cheap attribute checks here; node range and NaN are checked by the C++ kernel. Off under
    HARDNEG_DEBUG=1."""
    return not (backend not in (None, "cpu") or window is not None or strategy != "recent"
                or not (generator is None or isinstance(generator, torch.Generator))  # unused by "recent"
                or type(k) is not int or k < 1 or k > 1 << 16 or graph.device.type != "cpu" or graph.num_levels == 0
                or not isinstance(nodes, torch.Tensor) or not isinstance(times, torch.Tensor)
                or nodes.dtype != torch.int64 or times.dtype != graph.time_dtype or nodes.dim() != 1
                or times.dim() != 1 or nodes.numel() != times.numel() or nodes.device.type != "cpu"
                or times.device.type != "cpu" or not nodes.is_contiguous() or not times.is_contiguous()
                or core() is None or debug_checks())


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
