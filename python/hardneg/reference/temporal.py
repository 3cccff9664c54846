"""Reference temporal neighbour lookup: a per-query scan over the event log (plain torch, exact, slow)."""
from __future__ import annotations

import torch

from hardneg._random import generator_device


def neighbors(graph, nodes, times, k, strategy, inclusive, window, generator):
    src, dst, t, eid = graph.src, graph.dst, graph.t, graph.edge_ids
    B = nodes.numel()
    dev = nodes.device
    pad_t = torch.iinfo(torch.int64).min if graph.time_dtype == torch.int64 else float("-inf")
    nbrs = torch.full((B, k), -1, dtype=torch.int64, device=dev)
    eids = torch.full((B, k), -1, dtype=torch.int64, device=dev)
    tts = torch.full((B, k), pad_t, dtype=graph.time_dtype, device=dev)
    valid = torch.zeros(B, k, dtype=torch.bool, device=dev)
    # events are stored sorted by (time, edge id); incident events of v in that order
    for i in range(B):
        v, tq = int(nodes[i]), times[i]
        inc = (src == v) | ((dst == v) if graph.undirected else torch.zeros_like(src, dtype=torch.bool))
        ok = inc & ((t <= tq) if inclusive else (t < tq))
        if window is not None:  # int64: exact, and no bound where tq - window would fall below the int64 range
            if graph.time_dtype != torch.int64 or int(tq) >= torch.iinfo(torch.int64).min + int(window):
                ok &= t > tq - window
        idx = ok.nonzero().flatten()
        if idx.numel() == 0:
            continue
        # neighbour of v in each event (a self-loop lists v itself)
        nb = torch.where(src[idx] == v, dst[idx], src[idx])
        if graph.undirected:
            # a self-loop (v, v) appears twice in v's list
            loops = src[idx] == dst[idx]
            rep = 1 + loops.long()
            idx = torch.repeat_interleave(idx, rep)
            nb = torch.repeat_interleave(nb, rep)
        if strategy == "recent" or idx.numel() <= k:
            take = torch.arange(idx.numel() - 1, max(-1, idx.numel() - 1 - k), -1, device=dev)
        else:
            perm = torch.randperm(idx.numel(), generator=generator, device=generator_device(generator)).to(dev)
            take = torch.sort(perm[:k], descending=True).values
        m = take.numel()
        nbrs[i, :m] = nb[take]
        eids[i, :m] = eid[idx[take]]
        tts[i, :m] = t[idx[take]]
        valid[i, :m] = True
    return nbrs, eids, tts, valid


def assemble(graph, nodes, times, k, event_times, features, strategy, generator):
    """temporal_assemble: the lookup, then Δt = float32(event time − neighbour time) (computed in float64; 0 on
    padding) and the neighbours' feature rows (zeros on padding)."""
    nbrs, eids, nt, valid = neighbors(graph, nodes, times, k, strategy, False, None, generator)
    et = (times if event_times is None else event_times).to(torch.float64)
    dt = torch.where(valid, et[:, None] - nt.to(torch.float64), torch.zeros((), dtype=torch.float64)).float()
    feats = None
    if features is not None:
        feats = torch.where(valid[..., None], features[eids.clamp_min(0)], torch.zeros((), dtype=features.dtype))
    return nbrs, eids, dt, valid, feats


def time_encode(dt, w, b, with_sin):
    """cos (and sin) of the float32 phase fl(fl(dt·w) + b) of ``Linear(1, τ)``, in float64: ``(cos, sin or None)``
    float32 [M, τ] for dt [M], w [τ], b [τ] or None (all float32)."""
    p = (dt.double()[:, None] * w.double()[None, :]).float()
    if b is not None:
        p = p + b[None, :]
    p = p.double()
    return p.cos().float(), (p.sin().float() if with_sin else None)
