"""PyTorch Geometric adapter: ``negative_sampling`` with PyG's signature, exact and with exactly the requested
count.

``torch_geometric.utils.negative_sampling`` makes three rounds of oversampling and may return fewer negatives
than asked. This one keeps drawing (and, when negatives are scarce, enumerates them), so it returns exactly
``num_neg_samples`` distinct non-edges, uniformly at random among all non-edges (self-loops excluded unless the
graph is bipartite, as in PyG). If the graph has fewer non-edges than requested, it returns all of them and
warns.
"""
from __future__ import annotations

import math
import warnings

import torch

from .. import _validate as V
from .._random import generator_device
from ..known import KnownSet

__all__ = ["negative_sampling"]

_ENUMERATE_MAX = 1 << 24
# Up to this many ordered pairs, membership is a dense bit per pair (1 MiB at most) instead of a KnownSet: on
# small graphs building the hash index cost more than the whole of PyG's call (e.g. 0.8 of 1.9 ms at 100 nodes).
_DENSE_MAX = 1 << 20


def negative_sampling(edge_index, num_nodes=None, num_neg_samples=None, method="sparse", force_undirected=False,
                      *, generator=None):
    """Uniform negative edges of the graph ``edge_index`` ([2, M]): pairs (u, v) not in it.

    Args (as in PyG):
        edge_index: int64 [2, M].
        num_nodes: int, or (num_src_nodes, num_dst_nodes) for a bipartite graph; default max id + 1.
        num_neg_samples: int; a float is a ratio of M; None means M.
        method: ``"sparse"`` or ``"dense"`` (accepted for compatibility; membership always uses the exact
            :class:`hardneg.KnownSet` index).
        force_undirected: sample unordered pairs and return both directions (num_neg_samples // 2 pairs).
        generator: optional ``torch.Generator`` (hardneg extension) for reproducibility.

    Returns:
        int64 [2, num_neg_samples] on ``edge_index``'s device (2·(num_neg_samples // 2) with force_undirected).
    """
    op = "negative_sampling"
    ei = V.tensor(op, "edge_index", edge_index, dtypes=V.INDEX_DTYPES, kind="integer tensor")
    if ei.dim() != 2 or ei.shape[0] != 2:
        raise ValueError(f"{op}: 'edge_index' must be [2, M] (got {V.describe(ei)})")
    V.choice(op, "method", method, ("sparse", "dense"))
    V.generator(op, generator)
    dev = ei.device
    ei = ei.long()
    M = ei.shape[1]
    if num_nodes is None:
        n = int(ei.max()) + 1 if M else 0
        size, bipartite = (n, n), False
    elif isinstance(num_nodes, (tuple, list)):
        if len(num_nodes) != 2:
            raise ValueError(f"{op}: a bipartite 'num_nodes' must be (num_src, num_dst) (got {num_nodes!r})")
        size = (V.integer(op, "num_nodes[0]", num_nodes[0], minimum=0), V.integer(op, "num_nodes[1]", num_nodes[1], minimum=0))
        bipartite, force_undirected = True, False
    else:
        n = V.integer(op, "num_nodes", num_nodes, minimum=0)
        size, bipartite = (n, n), False
    V.ids(op, "edge_index[0]", ei[0], size[0], what="node ids")
    V.ids(op, "edge_index[1]", ei[1], size[1], what="node ids")
    if num_neg_samples is None:
        want = M
    elif isinstance(num_neg_samples, float):
        if not math.isfinite(num_neg_samples) or num_neg_samples < 0:
            raise ValueError(f"{op}: a float 'num_neg_samples' must be a finite ratio >= 0 (got {num_neg_samples})")
        want = int(num_neg_samples * M)
    else:
        want = V.integer(op, "num_neg_samples", num_neg_samples, minimum=0)
    if force_undirected:
        want //= 2
    Ns, Nd = size
    population = Ns * Nd if bipartite else (Ns * (Ns - 1) // 2 if force_undirected else Ns * (Ns - 1))
    if want == 0 or population == 0:
        return torch.empty(2, 0, dtype=torch.int64, device=dev)
    if Ns * Nd <= _DENSE_MAX:
        edge = torch.zeros(Ns * Nd, dtype=torch.bool, device=dev)
        edge[ei[0] * Nd + ei[1]] = True
        if force_undirected:
            edge[ei[1] * Nd + ei[0]] = True

        def admissible(u, v):
            return ~edge[u * Nd + v]
    else:
        known = KnownSet.from_edges(ei.T.contiguous(), max(Ns, Nd), directed=not force_undirected)

        def admissible(u, v):
            return ~known.contains(torch.stack([u, v], 1))

    gdev = generator_device(generator)

    def draw(m):
        if bipartite:
            u = torch.randint(0, Ns, (m,), generator=generator, device=gdev)
            v = torch.randint(0, Nd, (m,), generator=generator, device=gdev)
        else:
            u = torch.randint(0, Ns, (m,), generator=generator, device=gdev)
            v = torch.randint(0, Ns - 1, (m,), generator=generator, device=gdev)
            v = v + (v >= u).long()
            if force_undirected:
                u, v = torch.minimum(u, v), torch.maximum(u, v)
        return u.to(dev), v.to(dev)

    # density of admissible pairs, estimated from the positives (an upper bound on the known fraction)
    p_ok = max(1e-9, 1.0 - M / population)
    keys = torch.zeros(0, dtype=torch.int64, device=dev)
    for _ in range(16 if p_ok > 0.05 or population > _ENUMERATE_MAX else 0):
        need = want - keys.numel()
        if need <= 0:
            break
        m = min(max(64, int(1.3 * need / p_ok) + 64), 1 << 25)
        u, v = draw(m)
        ok = admissible(u, v)
        cand = torch.cat([keys, (u * Nd + v)[ok]])
        uniq, inv = torch.unique(cand, return_inverse=True)
        first = torch.full((uniq.numel(),), cand.numel(), dtype=torch.int64, device=dev)
        first.scatter_reduce_(0, inv, torch.arange(cand.numel(), device=dev), "amin")
        keys = cand[first.sort().values]  # distinct, in order of first draw: a uniform random ordering
    if keys.numel() < want:
        if population > _ENUMERATE_MAX:
            raise RuntimeError(f"{op}: could not find {want} negatives after repeated draws "
                               f"({keys.numel()} found); the graph is too dense to sample from")
        allk = torch.arange(Ns * Nd, device=dev)
        u, v = allk // Nd, allk % Nd
        keep = torch.ones_like(allk, dtype=torch.bool) if bipartite else (u != v)
        if force_undirected:
            keep &= u < v
        u, v = u[keep], v[keep]
        ok = admissible(u, v)
        pool = (u * Nd + v)[ok]
        perm = torch.randperm(pool.numel(), generator=generator, device=gdev).to(dev)
        keys = pool[perm]
        if keys.numel() < want:
            warnings.warn(f"{op}: the graph has only {keys.numel()} non-edges, fewer than the {want} requested; "
                          f"returning all of them", stacklevel=2)
    keys = keys[:want]
    row, col = keys // Nd, keys % Nd
    if force_undirected:
        return torch.stack([torch.cat([row, col]), torch.cat([col, row])])
    return torch.stack([row, col])
