"""Reference of the subgraph family: SEAL enclosing subgraphs with DRNL labels, one pair at a time in Python.

The same algorithm as the kernels (module docstring of :mod:`hardneg.ops.subgraph`), node for node and edge for
edge; when ``max_nodes_per_hop`` caps a hop it draws the kept nodes with torch's RNG instead of Philox: equal in
distribution, not in the stream.
"""
from __future__ import annotations

from collections import deque

import torch

INF = -1


def _bfs(adj: list[list[int]], root: int, banned: int) -> list[int]:
    """Hop distances from ``root`` inside the subgraph without node ``banned`` (-1: unreachable)."""
    dist = [INF] * len(adj)
    dist[root] = 0
    q = deque([root])
    while q:
        a = q.popleft()
        for b in adj[a]:
            if b != banned and dist[b] == INF:
                dist[b] = dist[a] + 1
                q.append(b)
    return dist


def drnl(ds: int, dt: int) -> int:
    """Double-radius node label of a node at distance ``ds`` from the source and ``dt`` from the target
    (SEAL; Zhang & Chen 2018): 1 + min(ds, dt) + (d//2)·(d//2 + d%2 − 1), d = ds + dt; 0 if unreachable."""
    if ds == INF or dt == INF:
        return 0
    d = ds + dt
    h, r = d // 2, d % 2
    return 1 + min(ds, dt) + h * (h + r - 1)


def one_subgraph(indptr: list[int], indices: list[int], s: int, t: int, hops: int, cap: int, generator):
    """(nodes, local edges [(a, b)], labels) of the enclosing subgraph of (s, t)."""
    nodes = [s, t]
    local = {s: 0, t: 1}
    visited = {s, t}
    frontier = [s, t]
    for _ in range(hops):
        fringe = []
        for u in frontier:
            for w in indices[indptr[u] : indptr[u + 1]]:
                if w not in visited:
                    visited.add(w)
                    fringe.append(w)
        if cap and len(fringe) > cap:
            gdev = generator.device if generator is not None else "cpu"
            perm = torch.randperm(len(fringe), generator=generator, device=gdev).tolist()[:cap]
            fringe = [fringe[i] for i in perm]
        if not fringe:
            break
        for w in fringe:
            local[w] = len(nodes)
            nodes.append(w)
        frontier = fringe
    adj: list[list[int]] = [[] for _ in nodes]
    edges = []
    for a, u in enumerate(nodes):
        for w in indices[indptr[u] : indptr[u + 1]]:
            b = local.get(w)
            if b is None or (a < 2 and b == 1 - a):  # the target link itself is never in its subgraph
                continue
            adj[a].append(b)
            edges.append((a, b))
    ds, dt = _bfs(adj, 0, 1), _bfs(adj, 1, 0)
    labels = [1, 1] + [drnl(ds[i], dt[i]) for i in range(2, len(nodes))]
    return nodes, edges, labels


def enclosing_subgraphs(graph, pairs: torch.Tensor, hops: int, cap: int, generator):
    """-> (nodes [T], node_ptr [P+1], edge_index [2, E] in batch numbering, edge_ptr [P+1], labels [T])."""
    view = graph.kernel_view()
    indptr, indices = view.indptr.cpu().tolist(), view.indices.cpu().tolist()
    all_nodes, all_labels, src, dst = [], [], [], []
    node_ptr, edge_ptr = [0], [0]
    for s, t in pairs.cpu().tolist():
        nodes, edges, labels = one_subgraph(indptr, indices, s, t, hops, cap, generator)
        off = node_ptr[-1]
        all_nodes += nodes
        all_labels += labels
        src += [a + off for a, _ in edges]
        dst += [b + off for _, b in edges]
        node_ptr.append(off + len(nodes))
        edge_ptr.append(edge_ptr[-1] + len(edges))
    dev = pairs.device
    i64 = dict(dtype=torch.int64, device=dev)
    return (torch.tensor(all_nodes, **i64), torch.tensor(node_ptr, **i64),
            torch.tensor([src, dst], **i64).view(2, -1), torch.tensor(edge_ptr, **i64), torch.tensor(all_labels, **i64))
