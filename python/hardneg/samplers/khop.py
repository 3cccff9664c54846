"""k-hop negatives: entities within k hops of the anchor entity (MeBNS's structural negatives)."""
from __future__ import annotations

import numpy as np
import torch

from .. import _validate as V
from ..ops import corrupt
from .._random import SeedStream, seed_from, uniform
from ..metrics import anchors
from .base import Negatives, Sampler, register, side_groups
from .basic import from_corrupt

_numba_fn = None


def _collect_fn():
    """The numba BFS kernel (compiled on first use, cached on disk)."""
    global _numba_fn
    if _numba_fn is None:
        import numba

        @numba.njit(cache=True, nogil=True)
        def khop_collect(indptr, indices, anchors, k, cap, seed, out_ids, out_cnt):
            np.random.seed(seed)
            N = indptr.size - 1
            stamp = np.full(N, -1, np.int64)
            frontier = np.empty(N, np.int64)
            nxt = np.empty(N, np.int64)
            for b in range(anchors.size):
                a = anchors[b]
                if a < 0 or a >= N:  # the callers check; the kernel never trusts them (as the C++ kernels)
                    raise ValueError("khop_collect: anchor id out of range [0, num_nodes)")
                stamp[a] = b
                frontier[0] = a
                f_n = 1
                seen = 0
                for _depth in range(k):
                    n_n = 0
                    for fi in range(f_n):
                        u = frontier[fi]
                        for e in range(indptr[u], indptr[u + 1]):
                            v = indices[e]
                            if v < 0 or v >= N:
                                raise ValueError("khop_collect: CSR neighbour id out of range [0, num_nodes)")
                            if stamp[v] != b:
                                stamp[v] = b
                                nxt[n_n] = v
                                n_n += 1
                                if seen < cap:  # reservoir sample of the neighbourhood (uniform when it is larger)
                                    out_ids[b, seen] = v
                                else:
                                    j = np.random.randint(0, seen + 1)
                                    if j < cap:
                                        out_ids[b, j] = v
                                seen += 1
                    frontier, nxt = nxt, frontier
                    f_n = n_n
                    if f_n == 0:
                        break
                out_cnt[b] = min(seen, cap)

        _numba_fn = khop_collect
    return _numba_fn


def undirected_csr(u: torch.Tensor, v: torch.Tensor, num_nodes: int) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric, deduplicated CSR (numpy int64) of the graph with edges u–v (self-loops dropped); every id
    must be in [0, num_nodes) (ValueError)."""
    op = "undirected_csr"
    num_nodes = V.integer(op, "num_nodes", num_nodes, minimum=1)
    u = V.ids(op, "edges", V.tensor(op, "u", u, ndim=1, dtypes=V.INDEX_DTYPES, kind="integer tensor").cpu(), num_nodes,
              what="node ids")
    v = V.ids(op, "edges", V.tensor(op, "v", v, ndim=1, dtypes=V.INDEX_DTYPES, kind="integer tensor").cpu(), num_nodes,
              what="node ids")
    V.key_space(op, "edge keys", num_nodes, num_nodes)
    a = torch.cat([u, v])
    b = torch.cat([v, u])
    keep = a != b
    key = torch.unique(a[keep] * num_nodes + b[keep])
    src, dst = key // num_nodes, key % num_nodes
    indptr = torch.zeros(num_nodes + 1, dtype=torch.int64)
    indptr[1:] = torch.bincount(src, minlength=num_nodes).cumsum(0)
    return indptr.numpy(), dst.numpy()


def khop_neighborhood(indptr: np.ndarray, indices: np.ndarray, anchor_nodes, k: int, cap: int,
                      seed: int) -> tuple[np.ndarray, np.ndarray]:
    """-> (ids [B, cap] int64 padded with -1, counts [B]): up to ``cap`` nodes within 1..k hops of each anchor
    (a uniform reservoir sample when the neighbourhood is larger). Numba BFS over the CSR."""
    op = "khop_neighborhood"
    if not (isinstance(indptr, np.ndarray) and isinstance(indices, np.ndarray) and indptr.ndim == 1
            and indices.ndim == 1 and indptr.size >= 2 and indptr.dtype == np.int64 and indices.dtype == np.int64):
        raise TypeError(f"{op}: 'indptr' and 'indices' must be 1-D int64 numpy arrays from undirected_csr "
                        f"(got {V.describe(indptr)}, {V.describe(indices)})")
    N = indptr.size - 1
    if indptr[0] != 0 or indptr[-1] != indices.size or (np.diff(indptr) < 0).any():
        raise ValueError(f"{op}: 'indptr' must start at 0, be non-decreasing and end at len(indices)")
    if indices.size and (indices.min() < 0 or indices.max() >= N):
        raise ValueError(f"{op}: 'indices' node ids must be in [0, {N}) (got min {indices.min()}, max {indices.max()})")
    k = V.integer(op, "k", k, minimum=1)
    cap = V.integer(op, "cap", cap, minimum=1)
    a = np.ascontiguousarray(anchor_nodes, dtype=np.int64).reshape(-1)
    if a.size and (a.min() < 0 or a.max() >= N):
        raise ValueError(f"{op}: 'anchor_nodes' node ids must be in [0, {N}) (got min {a.min()}, max {a.max()})")
    V.alloc(op, "the output", (a.size, cap), 8, "cpu")
    out = np.full((a.size, cap), -1, dtype=np.int64)
    cnt = np.zeros(a.size, dtype=np.int64)
    if a.size:
        _collect_fn()(indptr, indices, a, int(k), int(cap), int(seed), out, cnt)
    return out, cnt


@torch.library.custom_op("hardneg::khop_pool", mutates_args=())
def _khop_pool(indptr: torch.Tensor, indices: torch.Tensor, anchors: torch.Tensor, hops: int, cap: int,
               seed: int) -> torch.Tensor:
    """:func:`khop_neighborhood` over torch tensors (CPU int64), as a custom op so a compiled sampler step traces
    through the numba BFS: ids [B, cap] (−1 padded). ``seed`` is the sub-seed of the caller's stream; the walk's
    own seed is drawn from ``torch.Generator().manual_seed(seed)``."""
    walk_seed = seed_from(torch.Generator().manual_seed(seed), high=2**62)
    out, _ = khop_neighborhood(indptr.numpy(), indices.numpy(), anchors.cpu().numpy(), hops, cap, walk_seed)
    return torch.from_numpy(out)


@_khop_pool.register_fake
def _(indptr, indices, anchors, hops, cap, seed):
    return anchors.new_empty((anchors.shape[0], cap), dtype=torch.int64, device="cpu")


@register("khop")
class KHopSampler(Sampler):
    """Structural negatives: for tail corruption of (h, r, t), entities within ``hops`` hops of h in the
    (undirected, relation-agnostic) training graph; for head corruption, within ``hops`` of t. Known positives
    and the true entity are removed; n are drawn uniformly without replacement from what is left, and rows with
    fewer than n are topped up with filtered uniform negatives (so ``valid`` is False only when the whole entity
    set is inadmissible).

    The graph is ``edges`` ([M, 2] or [2, M]) when given, else the triples of ``known``. Neighbourhoods larger
    than ``max_candidates`` are reservoir-sampled (uniformly) by the numba BFS. On a bipartite graph (users ->
    items) the walk crosses both id spaces and only the corrupted side's nodes are kept (items 3 hops from a
    user, with hops=3).
    """

    def __init__(self, *, hops: int = 2, max_candidates: int = 512, edges: torch.Tensor | None = None, **kw):
        super().__init__(**kw)
        self.hops = V.integer(self._op, "hops", hops, minimum=1)
        self.max_candidates = V.integer(self._op, "max_candidates", max_candidates, minimum=1)
        self._edges = edges
        self._csr = None
        if self.num_entities is not None and (edges is not None or self.known is not None):
            self._graph(self.num_entities)  # now, not inside a compiled region's first call

    def _graph(self, E):
        """The undirected CSR; on a bipartite graph over U + I nodes (destination v is node U + v)."""
        if self._csr is None:
            if self._edges is not None:
                e = V.as_tensor(self._op, "edges", self._edges, "an integer tensor [M, 2] or [2, M]")
                e = V.tensor(self._op, "edges", e, dtypes=V.INDEX_DTYPES, kind="integer tensor")
                if e.dim() != 2 or 2 not in e.shape:
                    raise ValueError(f"{self._op}: 'edges' must be [M, 2] or [2, M] (got {V.describe(e)})")
                e = e if e.shape[0] == 2 and e.shape[1] != 2 else e.T
                u, v = e[0], e[1]
            elif self.known is not None:
                tr = self.known.triples().cpu()  # edge sets: (u, 0, v)
                u, v = tr[:, 0], tr[:, 2]
            else:
                raise ValueError(f"{self._op}: k-hop sampling needs a graph: known=KnownSet(...) or edges=...")
            if self._bipartite():
                V.ids(self._op, "edges", u, self.num_sources, what="source ids")
                V.ids(self._op, "edges", v, self.num_entities, what="destination ids")
                self._csr = undirected_csr(u, v + self.num_sources, self.num_sources + self.num_entities)
            else:
                V.ids(self._op, "edges", u, E, what="node ids")
                V.ids(self._op, "edges", v, E, what="node ids")
                self._csr = undirected_csr(u, v, E)
            self._csr_t = tuple(torch.from_numpy(a) for a in self._csr)  # the same arrays, for the custom op
        return self._csr

    def _sample(self, P, scorer, generator):
        E = self._entities(scorer)
        indptr, indices = self._graph(E)
        B, n, dev = P.shape[0], self.num_negatives, P.device
        row_side = self._row_sides(P, generator)
        tailc = P.shape[1] - 1
        # an explicit seed (torch.compile): the walk runs behind the hardneg::khop_pool custom op, and the
        # filtered uniform top-up is drawn for every row (fixed work), so eager and compiled runs agree
        fixed = isinstance(generator, SeedStream)
        seed = generator.next() if fixed else seed_from(generator, high=2**62)
        ids = torch.full((B, n), -1, dtype=torch.int64, device=dev)
        valid = torch.zeros(B, n, dtype=torch.bool, device=dev)
        for side, col, rows in side_groups(P, row_side):
            anchor, target = anchors(P[rows], side)
            centre = P[rows, 0] if side == "tail" else P[rows, tailc]
            U = self.num_sources if self._bipartite() else 0  # bipartite: destinations are nodes U..U+I-1
            if side == "head":
                centre = centre + U
            if fixed:
                pool = _khop_pool(self._csr_t[0], self._csr_t[1], centre, self.hops, self.max_candidates,
                                  (seed + col) % 2**63).to(dev)
            else:
                pool, _ = khop_neighborhood(indptr, indices, centre.cpu().numpy(), self.hops, self.max_candidates,
                                            seed + col)
                pool = torch.from_numpy(pool).to(dev)
            if U:  # keep the nodes of the corrupted side's id space
                keep = (pool >= U) if side == "tail" else ((pool >= 0) & (pool < U))
                pool = torch.where(keep, pool - (U if side == "tail" else 0), torch.full_like(pool, -1))
            ok = (pool >= 0) & (pool != target[:, None])
            if self.known is not None and pool.shape[1]:
                ok &= ~self.known.mask(anchor, pool.clamp_min(0), side=side)
            pool = torch.where(ok, pool, torch.full_like(pool, -1))
            # uniform without replacement among the admissible pool entries
            keys = torch.where(ok, uniform(pool.shape, generator, dev), torch.full(pool.shape, 2.0, device=dev,
                                                                                          dtype=torch.float64))
            order = keys.argsort(1)[:, :n]
            picked = pool.gather(1, order)
            if picked.shape[1] < n:
                picked = torch.cat([picked, picked.new_full((picked.shape[0], n - picked.shape[1]), -1)], 1)
            need = picked < 0
            if fixed or bool(need.any()):
                neg, v = corrupt(P[rows], n, self._entities(scorer, side), side=side, known=self.known,
                                 num_relations=self.num_relations, generator=generator)
                top = from_corrupt(P[rows], neg, v, side).ids
                picked = torch.where(need, top, picked)
            ids[rows] = picked
            valid[rows] = picked >= 0
        return Negatives(ids, valid, None, row_side)
