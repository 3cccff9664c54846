"""Subgraph family: SEAL's enclosing subgraphs with double-radius node labels (DRNL), for a batch of links.

Shapes: ``P`` query pairs, ``T`` subgraph nodes and ``E`` subgraph entries over the whole batch.

For a pair (s, t) and ``num_hops`` K (Zhang & Chen, NeurIPS 2018; SEAL_OGB's ``k_hop_subgraph``):

1. **Nodes.** s and t first (local ids 0 and 1), then hop by hop the nodes first reached at that hop, in
   order of discovery: the frontier in order, each node's neighbours in CSR order (ascending id). With
   ``max_nodes_per_hop`` = c > 0 a hop that reaches more than c new nodes keeps c of them, drawn uniformly
   without replacement; the dropped ones count as visited (SEAL_OGB), and only the kept ones are expanded.
2. **Edges.** The subgraph induced on those nodes, without the target link (s, t) itself, as directed entries
   in both directions (PyG's ``edge_index`` convention), ordered by local source, then CSR order.
3. **Labels.** DRNL: with d_s the distance to s in the subgraph without t and d_t the distance to t without s,
   z = 1 + min(d_s, d_t) + (d//2)·(d//2 + d%2 − 1), d = d_s + d_t; z = 1 for s and t; z = 0 when either
   distance is infinite.

The result is already a PyG mini-batch: node ids are global (to gather features), ``edge_index`` is in the
batch's node numbering (subgraph i's nodes are ``node_ptr[i]:node_ptr[i+1]``), and ``batch()`` gives the
graph of each node. Kernels: one pair per OpenMP iteration (C++) or per CUDA thread, two passes (sizes, then
fill into outputs allocated here), with scratch of 4 int32 per graph node per worker.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from hardneg import _validate as V
from hardneg._backend import core, num_threads, register, resolve
from hardneg.graph import CSRGraph
from hardneg._random import as_generator, seed_from
from hardneg.reference import subgraph as _ref

__all__ = ["enclosing_subgraphs", "Subgraphs"]


@dataclass
class Subgraphs:
    """A batch of enclosing subgraphs (module docstring).

    Attributes:
        nodes: int64 [T] global node id of every subgraph node.
        node_ptr: int64 [P+1] subgraph i's nodes are ``nodes[node_ptr[i]:node_ptr[i+1]]`` (s, t first).
        edge_index: int64 [2, E] entries in the batch's node numbering (both directions, target link removed).
        edge_ptr: int64 [P+1] subgraph i's entries are ``edge_index[:, edge_ptr[i]:edge_ptr[i+1]]``.
        labels: int64 [T] DRNL label of every node.
    """

    nodes: torch.Tensor
    node_ptr: torch.Tensor
    edge_index: torch.Tensor
    edge_ptr: torch.Tensor
    labels: torch.Tensor

    @property
    def num_graphs(self) -> int:
        return self.node_ptr.numel() - 1

    def sizes(self) -> torch.Tensor:
        """int64 [P] nodes per subgraph."""
        return self.node_ptr.diff()

    def batch(self) -> torch.Tensor:
        """int64 [T] the subgraph of every node (PyG's ``batch`` vector)."""
        return torch.repeat_interleave(torch.arange(self.num_graphs, device=self.nodes.device), self.sizes())


def enclosing_subgraphs(graph, pairs, num_hops: int = 2, *, max_nodes_per_hop: int = 0, generator=None,
                        backend=None) -> Subgraphs:
    """SEAL enclosing subgraphs of ``pairs`` in ``graph`` with DRNL labels (module docstring).

    Args:
        graph: a :class:`hardneg.graph.CSRGraph` (usually the training graph, undirected).
        pairs: int [P, 2] (s, t) links to extract, s != t.
        num_hops: K >= 1.
        max_nodes_per_hop: 0 (keep every node) or c >= 1 (at most c new nodes per hop, uniform).
        generator: ``torch.Generator`` for the per-hop draws (only used when a hop is capped).
        backend: None (automatic), ``"reference"``, ``"cpu"`` or ``"cuda"``.

    Returns:
        :class:`Subgraphs` on the graph's device.

    Raises:
        TypeError: ``graph`` not a CSRGraph, ``pairs`` not an integer tensor, non-int hops / cap, bad generator.
        ValueError: ``pairs`` not [P, 2], ids out of range, a pair (u, u), num_hops < 1, max_nodes_per_hop < 0,
            ``pairs`` on another device than the graph.

    Example:
        >>> import torch, hardneg
        >>> g = hardneg.graph.CSRGraph.from_edges(torch.tensor([[0, 1], [1, 2], [2, 3]]), 4)
        >>> sub = hardneg.ops.enclosing_subgraphs(g, torch.tensor([[0, 2]]), 1)
        >>> sub.nodes.tolist(), sub.labels.tolist(), sub.edge_index.tolist()
        ([0, 2, 1, 3], [1, 1, 2, 0], [[0, 1, 1, 2, 2, 3], [2, 2, 3, 0, 1, 1]])
    """
    op = "enclosing_subgraphs"
    if not isinstance(graph, CSRGraph):
        raise TypeError(f"{op}: 'graph' must be a hardneg.graph.CSRGraph (got {V.describe(graph)})")
    p = V.tensor(op, "pairs", pairs, ndim=2, dtypes=V.INDEX_DTYPES, kind="integer tensor", what="[P, 2]")
    if p.shape[1] != 2:
        raise ValueError(f"{op}: 'pairs' must be [P, 2] (s, t) links (got {V.describe(pairs)})")
    if p.device != graph.device:
        raise ValueError(f"{op}: 'pairs' must be on {graph.device} like the graph (got {p.device})")
    hops = V.integer(op, "num_hops", num_hops, minimum=1)
    cap = V.integer(op, "max_nodes_per_hop", max_nodes_per_hop, minimum=0)
    V.generator(op, generator)
    generator = as_generator(generator)  # a SeedStream: the generator of its next sub-seed
    if p.shape[0] >= 2**31 - 1:
        raise ValueError(f"{op}: at most 2^31 - 2 pairs per call (got {p.shape[0]}); split the batch")
    p = V.ids(op, "pairs", p, graph.num_nodes, what="node ids").contiguous()
    if p.numel():
        same = p[:, 0] == p[:, 1]
        if bool(same.any()):
            i = int(same.nonzero()[0, 0])
            raise ValueError(f"{op}: 'pairs' must link two different nodes (got pair {i} = ({int(p[i, 0])}, "
                             f"{int(p[i, 0])}))")
    _, fn = resolve(op, backend, graph.device)
    return Subgraphs(*fn(graph, p, hops, cap, generator))


@register("enclosing_subgraphs", "reference")
def _es_ref(graph, pairs, hops, cap, generator):
    return _ref.enclosing_subgraphs(graph, pairs, hops, cap, generator)


SCRATCH_BYTES = 1 << 28  # CUDA: at most 256 MiB of per-worker scratch (24 bytes per graph node per worker)


def _es_core(graph, pairs, hops, cap, generator):
    dev = graph.device
    P = pairs.shape[0]
    i64 = dict(dtype=torch.int64, device=dev)
    seed = seed_from(generator) if cap else 0
    on_cuda = dev.type == "cuda"
    workers, scratch = 0, None
    if on_cuda:
        workers = max(1, min(P, SCRATCH_BYTES // (24 * graph.num_nodes)))
        scratch = torch.zeros(workers * 6 * graph.num_nodes, dtype=torch.int32, device=dev)
    stream = torch.cuda.current_stream(dev).cuda_stream if on_cuda else 0
    common = dict(**graph.kernel_view().core_args(), pairs=pairs.data_ptr(), num_pairs=P, hops=hops,
                  max_nodes_per_hop=cap, seed=seed, scratch=0 if scratch is None else scratch.data_ptr(),
                  workers=workers, num_threads=num_threads(), on_cuda=on_cuda, stream=stream)
    if P == 0:
        empty = torch.zeros(0, **i64)
        return empty, torch.zeros(1, **i64), torch.zeros(2, 0, **i64), torch.zeros(1, **i64), empty.clone()
    counts = torch.zeros(2, P, **i64)
    core().enclosing_subgraphs(fill=False, node_count=counts[0].data_ptr(), edge_count=counts[1].data_ptr(), **common)
    ptrs = torch.zeros(2, P + 1, **i64)
    torch.cumsum(counts, 1, out=ptrs[:, 1:])
    T, E = (int(x) for x in ptrs[:, -1].tolist())
    nodes, labels = torch.empty(T, **i64), torch.empty(T, **i64)
    edge_index = torch.empty(2, E, **i64)
    node_ptr, edge_ptr = ptrs[0].contiguous(), ptrs[1].contiguous()
    if scratch is not None:
        scratch.zero_()  # stamps restart for the second pass
    dummy = torch.zeros(1, **i64)  # an empty tensor's data_ptr() is 0, which the core reads as "missing"

    def out(t):  # nothing is written to an output with no entries
        return t.data_ptr() if t.numel() else dummy.data_ptr()

    core().enclosing_subgraphs(fill=True, node_ptr=node_ptr.data_ptr(), edge_ptr=edge_ptr.data_ptr(),
                               out_nodes=out(nodes), out_src=out(edge_index[0]), out_dst=out(edge_index[1]),
                               out_labels=out(labels), **common)
    return nodes, node_ptr, edge_index, edge_ptr, labels


register("enclosing_subgraphs", "cpu")(_es_core)
register("enclosing_subgraphs", "cuda")(_es_core)
