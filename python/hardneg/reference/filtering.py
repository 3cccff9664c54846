"""Reference implementations of the filtering family (torch searchsorted on the packed keys)."""
from __future__ import annotations

import torch

from hardneg._random import uniform


def _lb(arr, x):
    return torch.searchsorted(arr, x)


def contains(known, h, r, t, before=None, inclusive=False):
    view = known.kernel_view()
    E, R, kt = view.num_entities, view.num_relations, view.tail_keys
    key = (h * R + r) * E + t
    p = _lb(kt, key).clamp_max(max(kt.numel() - 1, 0))
    hit = kt[p] == key
    if before is not None:
        ft = view.first_time[p]
        hit = hit & ((ft <= before) if inclusive else (ft < before))
    return hit


def anchor_bounds(known, side, a, b):
    view = known.kernel_view()
    E, R = view.num_entities, view.num_relations
    if side == 0:
        base, arr = (a * R + b) * E, view.tail_keys
    else:
        base, arr = (a * E + b) * E, view.head_keys
    return _lb(arr, base), _lb(arr, base + E), base, arr


def mask(known, side, a, b, cand):
    lo, hi, base, arr = anchor_bounds(known, side, a, b)
    key = base[:, None] + cand
    p = torch.searchsorted(arr, key.contiguous())
    found = (p < arr.numel()) & (arr[p.clamp_max(max(arr.numel() - 1, 0))] == key)
    return found


def exclusion(known, side, a, b):
    lo, hi, base, arr = anchor_bounds(known, side, a, b)
    counts = hi - lo
    indptr = torch.zeros(a.numel() + 1, dtype=torch.int64, device=a.device)
    indptr[1:] = torch.cumsum(counts, 0)
    rows = torch.repeat_interleave(torch.arange(a.numel(), device=a.device), counts)
    offs = torch.arange(int(indptr[-1]), device=a.device) - indptr[:-1][rows]
    return indptr, arr[lo[rows] + offs] - base[rows]


def corrupt(pos, n, E, side_mode, p_head, dom, known, generator, tries=32):
    """Same algorithm as the kernels (uniform proposal, bounded rejection, exact enumeration fallback), with
    torch's RNG instead of Philox: equal in distribution, not in the stream. ``side_mode``: a code of
    :data:`hardneg._constants.SIDE_MODES`."""
    B, w = pos.shape
    dev = pos.device
    h = pos[:, 0:1].expand(B, n)
    r = (pos[:, 1:2] if w == 3 else torch.zeros_like(pos[:, 0:1])).expand(B, n)
    t = pos[:, w - 1 : w].expand(B, n)

    def rand(shape):
        return uniform(shape, generator, dev)

    if side_mode == 0:
        head = torch.zeros(B, n, dtype=torch.bool, device=dev)
    elif side_mode == 1:
        head = torch.ones(B, n, dtype=torch.bool, device=dev)
    elif side_mode == 2:
        head = rand((B, n)) < 0.5
    else:
        head = rand((B, n)) < p_head[r].double()
    # pool per draw
    if dom is not None:
        hp, hi_ = dom.head
        tp, ti_ = dom.tail
        start = torch.where(head, hp[r], tp[r])
        size = torch.where(head, hp[r + 1] - hp[r], tp[r + 1] - tp[r])
    else:
        start = torch.zeros(B, n, dtype=torch.int64, device=dev)
        size = torch.full((B, n), E, dtype=torch.int64, device=dev)

    def pool_at(u):
        if dom is None:
            return u
        return torch.where(head, dom.head[1][(start + u).clamp_max(max(dom.head[1].numel() - 1, 0))],
                           dom.tail[1][(start + u).clamp_max(max(dom.tail[1].numel() - 1, 0))])

    pick = torch.full((B, n), -1, dtype=torch.int64, device=dev)
    pending = size > 0
    for _ in range(tries if known is not None else 1):
        if not bool(pending.any()):
            break
        u = (rand((B, n)) * size.clamp_min(1)).long().clamp_max((size - 1).clamp_min(0))
        c = pool_at(u)
        if known is not None:
            hh = torch.where(head, c, h)
            tt = torch.where(head, t, c)
            ok = ~contains(known, hh, r, tt)
        else:
            ok = torch.ones_like(pending)
        take = pending & ok
        pick = torch.where(take, c, pick)
        pending = pending & ~take
    for b, j in pending.nonzero().tolist():  # exact enumeration (rare)
        hb = bool(head[b, j])
        pool = (dom.head if hb else dom.tail)[1][int(start[b, j]) : int(start[b, j] + size[b, j])] if dom is not None \
            else torch.arange(E, device=dev)
        if hb:
            bad = contains(known, pool, r[b, j].expand_as(pool), t[b, j].expand_as(pool))
        else:
            bad = contains(known, h[b, j].expand_as(pool), r[b, j].expand_as(pool), pool)
        adm = pool[~bad]
        if adm.numel():
            pick[b, j] = adm[int(rand((1,)).item() * adm.numel())]
    out = pos[:, None, :].expand(B, n, w).clone()
    out[..., 0] = torch.where(head, pick, out[..., 0])
    out[..., w - 1] = torch.where(head, out[..., w - 1], pick)
    return out, pick >= 0
