"""Temporal family: neighbour lookup strictly before an explicit time (TGN / TGAT / ENS)."""
from __future__ import annotations

import torch

from hardneg import _validate as V
from hardneg._backend import core, num_threads, register, resolve
from hardneg.ops.mining import _seed_from
from hardneg.reference import temporal as _ref
from hardneg.temporal import STRATEGIES, TemporalGraph

__all__ = ["temporal_neighbors"]


def temporal_neighbors(graph, nodes, times, k, *, strategy="recent", inclusive=False, window=None, generator=None,
                       backend=None):
    """See :meth:`hardneg.TemporalGraph.neighbors`.

    Raises:
        TypeError: not a TemporalGraph, non-integer nodes, float times for an int64-time graph, bad generator.
        ValueError: node ids out of range, NaN times, k <= 0, mismatched lengths, negative or NaN window,
            unknown strategy, device mismatch.
    """
    op = "temporal_neighbors"
    if not isinstance(graph, TemporalGraph):
        raise TypeError(f"{op}: 'graph' must be a hardneg.TemporalGraph (got {V.describe(graph)})")
    fast = _fast_cpu(graph, nodes, times, k, strategy, window, generator, backend)
    if fast is not None:  # streaming-size CPU calls: ~10 us of Python instead of ~150 us
        return _tn_core(graph, nodes, times, k, strategy, bool(inclusive), None, None, checked_in_core=True)
    k = V.integer(op, "k", k, minimum=1)
    strategy = V.choice(op, "strategy", strategy, STRATEGIES)
    V.generator(op, generator)
    nodes, times = graph._check_queries(op, nodes, times)
    if window is not None:
        if isinstance(window, bool) or not isinstance(window, (int, float)):
            raise TypeError(f"{op}: 'window' must be a number or None (got {V.describe(window)})")
        if not window >= 0:
            raise ValueError(f"{op}: 'window' must be >= 0 (got {window})")
        if graph.time_dtype == torch.int64 and float(window) != int(window):
            raise TypeError(f"{op}: the graph has int64 times; 'window' must be an integer (got {window})")
    name, fn = resolve(op, backend, graph.device)
    B = nodes.numel()
    dev = graph.device
    if B == 0 or graph.num_levels == 0:
        pad_t = torch.iinfo(torch.int64).min if graph.time_dtype == torch.int64 else float("-inf")
        return (torch.full((B, k), -1, dtype=torch.int64, device=dev), torch.full((B, k), -1, dtype=torch.int64, device=dev),
                torch.full((B, k), pad_t, dtype=graph.time_dtype, device=dev), torch.zeros(B, k, dtype=torch.bool, device=dev))
    return fn(graph, nodes, times, k, strategy, bool(inclusive), window, generator)


def _fast_cpu(graph, nodes, times, k, strategy, window, generator, backend):
    """The common streaming call (CPU, int64 nodes, times already in the graph's dtype, recent, no window):
    only cheap attribute checks here; node range and NaN are checked by the C++ kernel."""
    if (backend not in (None, "cpu") or window is not None or strategy != "recent"
            or not (generator is None or isinstance(generator, torch.Generator))  # unused by "recent"
            or type(k) is not int or k < 1 or graph.device.type != "cpu" or graph.num_levels == 0
            or not isinstance(nodes, torch.Tensor) or not isinstance(times, torch.Tensor)
            or nodes.dtype != torch.int64 or times.dtype != graph.time_dtype or nodes.dim() != 1
            or times.dim() != 1 or nodes.numel() != times.numel() or nodes.device.type != "cpu"
            or times.device.type != "cpu" or not nodes.is_contiguous() or not times.is_contiguous()
            or core() is None):
        return None
    return True


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
    table = graph.levels_table()
    seed = _seed_from(generator, dev) if strategy == "uniform" else 0
    stream = torch.cuda.current_stream(dev).cuda_stream if dev.type == "cuda" else 0
    core().temporal_neighbors(table.data_ptr(), graph.num_levels, nodes.data_ptr(), times.data_ptr(), B, k,
                              STRATEGIES.index(strategy), inclusive, window is not None,
                              float(window) if window is not None else 0.0, seed, graph.time_dtype == torch.int64,
                              nbrs.data_ptr(), eids.data_ptr(), tts.data_ptr(), valid.data_ptr(), num_threads(),
                              dev.type == "cuda", stream, graph.num_nodes if checked_in_core else 0)
    return nbrs, eids, tts, valid


register("temporal_neighbors", "cpu")(_tn_core)
register("temporal_neighbors", "cuda")(_tn_core)
