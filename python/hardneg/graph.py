"""CSRGraph: an immutable, validated adjacency (CSR) that graph-walking kernels read (SEAL subgraphs).

Layout: ``indptr`` [N+1] and ``indices`` [nnz] int64; row u holds u's neighbours sorted by id, each once, no
self-loops. An undirected graph stores every edge in both rows (nnz = 2·M). 16 bytes per stored entry plus
8 per node. Validated once here, so each kernel call checks only its own queries.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from hardneg import _validate as V


@dataclass(frozen=True)
class GraphView:
    """What the kernels read of a :class:`CSRGraph` (:meth:`CSRGraph.kernel_view`)."""

    indptr: torch.Tensor   # int64 [N+1]
    indices: torch.Tensor  # int64 [nnz]
    num_nodes: int

    def core_args(self) -> dict:
        """Keyword arguments of the compiled graph kernels that describe the graph (data pointers and sizes)."""
        return dict(indptr=self.indptr.data_ptr(), indices=self.indices.data_ptr(), num_nodes=self.num_nodes,
                    num_entries=self.indices.numel())


class CSRGraph:
    """A static graph as CSR. Build with :meth:`from_edges`.

    Example:
        >>> import torch, hardneg
        >>> g = hardneg.graph.CSRGraph.from_edges(torch.tensor([[0, 1], [1, 2], [2, 0], [1, 0]]), 4)
        >>> g.neighbors(1).tolist(), g.num_edges, g.degree().tolist()
        ([0, 2], 3, [2, 2, 2, 0])
    """

    def __init__(self, indptr: torch.Tensor, indices: torch.Tensor, num_nodes: int, *, undirected: bool):
        self.indptr = indptr
        self.indices = indices
        self.num_nodes = int(num_nodes)
        self.undirected = undirected
        self._view = GraphView(indptr, indices, self.num_nodes)

    @classmethod
    def from_edges(cls, edges, num_nodes: int, *, undirected: bool = True) -> "CSRGraph":
        """From ``edges`` [M, 2] (or an edge_index [2, M] when M != 2) int ids in [0, num_nodes). Self-loops
        and repeated edges are dropped (a graph kernel walks each neighbour once); ``undirected=True`` stores
        both directions of every edge.

        Raises:
            TypeError: ``edges`` not an integer tensor, ``undirected`` not a bool.
            ValueError: ``edges`` not [M, 2] / [2, M], ids out of range, ``num_nodes`` < 1.
        """
        op = "CSRGraph.from_edges"
        n = V.integer(op, "num_nodes", num_nodes, minimum=1)
        e = V.tensor(op, "edges", edges, ndim=2, dtypes=V.INDEX_DTYPES, kind="integer tensor", what="[M, 2]")
        if e.shape[1] != 2 and e.shape[0] == 2:
            e = e.T
        if e.shape[1] != 2:
            raise ValueError(f"{op}: 'edges' must be [M, 2] or an edge_index [2, M] (got {V.describe(edges)})")
        if not isinstance(undirected, bool):
            raise TypeError(f"{op}: 'undirected' must be a bool (got {V.describe(undirected)})")
        e = V.ids(op, "edges", e, n, what="node ids")
        u, v = e[:, 0], e[:, 1]
        if undirected:
            u, v = torch.cat([u, v]), torch.cat([v, u])
        keep = u != v
        key = torch.unique(u[keep] * n + v[keep])  # sorted by (row, neighbour), unique
        row = key // n
        indptr = torch.zeros(n + 1, dtype=torch.int64, device=e.device)
        indptr[1:] = torch.bincount(row, minlength=n).cumsum(0)
        return cls(indptr, (key % n).contiguous(), n, undirected=undirected)

    # ------------------------------------------------------------------ properties
    @property
    def device(self) -> torch.device:
        return self.indices.device

    @property
    def num_entries(self) -> int:
        """Stored (directed) entries: 2·M for an undirected graph of M edges."""
        return self.indices.numel()

    @property
    def num_edges(self) -> int:
        return self.num_entries // 2 if self.undirected else self.num_entries

    def degree(self) -> torch.Tensor:
        return self.indptr.diff()

    def neighbors(self, u: int) -> torch.Tensor:
        return self.indices[int(self.indptr[u]) : int(self.indptr[u + 1])]

    def edge_index(self) -> torch.Tensor:
        """[2, nnz] (row, neighbour) of every stored entry."""
        row = torch.repeat_interleave(torch.arange(self.num_nodes, device=self.device), self.degree())
        return torch.stack([row, self.indices])

    def to(self, device) -> "CSRGraph":
        device = torch.device(device)
        if device == self.device:
            return self
        return CSRGraph(self.indptr.to(device), self.indices.to(device), self.num_nodes, undirected=self.undirected)

    def kernel_view(self) -> GraphView:
        """The one way kernels (``hardneg.ops``, the references) read the graph."""
        return self._view

    def enclosing_subgraphs(self, pairs, num_hops: int = 2, *, max_nodes_per_hop: int = 0, generator=None,
                            backend=None):
        """SEAL's enclosing subgraphs with DRNL labels: see :func:`hardneg.ops.enclosing_subgraphs`."""
        from hardneg.ops.subgraph import enclosing_subgraphs

        return enclosing_subgraphs(self, pairs, num_hops, max_nodes_per_hop=max_nodes_per_hop, generator=generator,
                                   backend=backend)

    def __repr__(self):
        return (f"CSRGraph(nodes={self.num_nodes}, edges={self.num_edges}, "
                f"{'undirected' if self.undirected else 'directed'}, device={self.device})")
