"""Filtering family: exact known-positive queries (contains / mask / exclusion CSR) and filtered corruption.

Shapes: ``B`` queries, ``n`` candidates or negatives per query. Range checks run on every call (on CUDA inputs
they synchronise the device).
"""
from __future__ import annotations

import torch

from hardneg import _validate as V
from hardneg._backend import core, num_threads, register, resolve
from hardneg.known import SIDES, Domain, KnownSet
from hardneg.ops.mining import _seed_from
from hardneg.reference import filtering as _ref

__all__ = ["corrupt", "known_contains", "known_mask", "known_exclusion"]

CORRUPT_SIDES = ("tail", "head", "both", "bernoulli")


def _known(op, known) -> KnownSet:
    if not isinstance(known, KnownSet):
        raise TypeError(f"{op}: 'known' must be a hardneg.KnownSet (got {V.describe(known)})")
    return known


def _ids(op, name, x, n, device, what="ids"):
    if x.device != device:
        raise ValueError(f"{op}: '{name}' must be on {device} like the known set (got {x.device})")
    x = x.to(torch.int64)
    if x.numel() and n is not None:
        lo, hi = int(x.min()), int(x.max())
        if lo < 0 or hi >= n:
            raise ValueError(f"{op}: '{name}' {what} must be in [0, {n}) (got min {lo}, max {hi})")
    return x


def _side_ids(K, side):
    """What the ids of ``side`` are called in messages (bipartite sets: source / destination ids)."""
    if not K.bipartite:
        return "ids"
    return "destination ids" if side == "tail" else "source ids"


def _stream(device):
    return torch.cuda.current_stream(device).cuda_stream if device.type == "cuda" else 0


def _view(K):
    return K.kt.data_ptr(), K.kh.data_ptr(), K.kt.numel(), K.num_entities, K.num_relations


def _anchor(op, K, anchor, side):
    """-> (a, b) int64 [B] each: tail side (h, r), head side (r, t)."""
    side = V.choice(op, "side", side, SIDES)
    s = SIDES.index(side)
    A = V.tensor(op, "anchor", anchor, dtypes=V.INDEX_DTYPES, kind="integer tensor")
    if K.kind == "edges" and A.dim() == 1:
        A = A[:, None]
        z = torch.zeros_like(A)
        A = torch.cat([A, z], 1) if s == 0 else torch.cat([z, A], 1)
    if A.dim() != 2 or A.shape[1] != 2:
        raise ValueError(f"{op}: 'anchor' must be [B, 2] ((h, r) for tail queries, (r, t) for head queries)"
                         f"{' or [B] node ids' if K.kind == 'edges' else ''} (got {V.describe(A)})")
    if K.bipartite:  # the column checks below name the id space
        A = _ids(op, "anchor", A, None, K.device)
    else:
        A = _ids(op, "anchor", A, max(K.num_entities, K.num_relations), K.device)
    # the anchor's entity is a head (source) for tail queries and a tail (destination) for head queries
    first_n, second_n = (K.num_sources, K.num_relations) if s == 0 else (K.num_relations, K.num_destinations)
    _ids(op, "anchor[:, 0]", A[:, 0], first_n, K.device, _side_ids(K, "head") if s == 0 else "ids")
    _ids(op, "anchor[:, 1]", A[:, 1], second_n, K.device, "ids" if s == 0 else _side_ids(K, "tail"))
    return A.contiguous(), s


# ---------------------------------------------------------------------------------------------- contains
def known_contains(known, keys, *, before=None, inclusive=False, backend=None):
    """bool [B]: whether each key ([B, 3] (h, r, t) or [B, 2] (u, v) for edge sets) is known; with ``before``
    [B] (a known set built with times), whether it was first seen before that time.

    Raises:
        TypeError: non-KnownSet, non-integer keys. ValueError: wrong width, ids out of range, device mismatch,
        ``before`` without times or of the wrong length, NaN times.
    """
    op = "known_contains"
    K = _known(op, known)
    k = V.tensor(op, "keys", keys, ndim=2, dtypes=V.INDEX_DTYPES, kind="integer tensor")
    width = 3 if K.kind == "triples" else 2
    if k.shape[1] != width:
        raise ValueError(f"{op}: 'keys' must be [B, {width}] for a known set of {K.kind} (got {V.describe(k)})")
    if k.device != K.device:
        raise ValueError(f"{op}: 'keys' must be on {K.device} like the known set (got {k.device})")
    k = k.to(torch.int64).contiguous()
    if k.numel():  # one min and one max per column (two reductions, not one per column and bound)
        lo, hi = k.amin(0).tolist(), k.amax(0).tolist()
        bounds = [K.num_entities, K.num_relations, K.num_entities] if width == 3 else [K.num_sources,
                                                                                       K.num_destinations]
        names = ["keys[:, 0] (heads)", "keys[:, 1] (relations)", "keys[:, 2] (tails)"] if width == 3 else \
            ["keys[:, 0]", "keys[:, 1]"]
        for name, a, b, n in zip(names, lo, hi, bounds):
            if a < 0 or b >= n:
                raise ValueError(f"{op}: '{name}' ids must be in [0, {n}) (got min {a}, max {b})")
    if before is not None:
        if K.first_time is None:
            raise ValueError(f"{op}: 'before' needs a known set built with times=...")
        before = V.tensor(op, "before", before, ndim=1)
        if before.numel() != k.shape[0]:
            raise ValueError(f"{op}: 'before' must be [B] with B={k.shape[0]} (got {V.describe(before)})")
        if before.device != K.device:
            raise ValueError(f"{op}: 'before' must be on {K.device} (got {before.device})")
        before = before.to(torch.float64).contiguous()
        if bool(torch.isnan(before).any()):
            raise ValueError(f"{op}: 'before' must not contain NaN")
    name, fn = resolve(op, backend, K.device)
    if k.shape[0] == 0:
        return torch.zeros(0, dtype=torch.bool, device=K.device)
    return fn(K, k, before, bool(inclusive))


@register("known_contains", "reference")
def _contains_ref(K, k, before, inclusive):
    w = k.shape[1]
    r = k[:, 1] if w == 3 else torch.zeros_like(k[:, 0])
    return _ref.contains(K, k[:, 0], r, k[:, w - 1], before, inclusive)


def _contains_core(K, k, before, inclusive):
    out = torch.empty(k.shape[0], dtype=torch.uint8, device=K.device)
    ft = K.first_time.data_ptr() if K.first_time is not None else 0
    kt, kh, m, E, R = _view(K)
    core().known_contains(kt, kh, ft, m, E, R, k.data_ptr(), k.shape[0], k.shape[1],
                          before.data_ptr() if before is not None else 0, inclusive, out.data_ptr(), num_threads(),
                          K.device.type == "cuda", _stream(K.device))
    return out.bool()


register("known_contains", "cpu")(_contains_core)
register("known_contains", "cuda")(_contains_core)


# ---------------------------------------------------------------------------------------------- mask
def known_mask(known, anchor, candidates, *, side="tail", backend=None):
    """bool [B, n]: True where (anchor, candidate) is known (tail side: anchor (h, r); head side: (r, t))."""
    op = "known_mask"
    K = _known(op, known)
    A, s = _anchor(op, K, anchor, side)
    C = V.tensor(op, "candidates", candidates, ndim=2, dtypes=V.INDEX_DTYPES, kind="integer tensor", what="[B, n]")
    if C.shape[0] != A.shape[0]:
        raise ValueError(f"{op}: 'candidates' must have B={A.shape[0]} rows like 'anchor' (got {V.describe(C)})")
    side_name = SIDES[s]
    C = _ids(op, "candidates", C, K.side_size(side_name), K.device, _side_ids(K, side_name)).contiguous()
    name, fn = resolve(op, backend, K.device)
    if C.numel() == 0:
        return torch.zeros(C.shape, dtype=torch.bool, device=K.device)
    return fn(K, A, s, C)


@register("known_mask", "reference")
def _mask_ref(K, A, s, C):
    return _ref.mask(K, s, A[:, 0], A[:, 1], C)


def _mask_core(K, A, s, C):
    out = torch.empty(C.shape, dtype=torch.uint8, device=K.device)
    kt, kh, m, E, R = _view(K)
    core().known_mask(kt, kh, m, E, R, s, A.data_ptr(), C.data_ptr(), C.shape[0], C.shape[1], out.data_ptr(),
                      num_threads(), K.device.type == "cuda", _stream(K.device))
    return out.bool()


register("known_mask", "cpu")(_mask_core)
register("known_mask", "cuda")(_mask_core)


# ---------------------------------------------------------------------------------------------- exclusion
def known_exclusion(known, anchor, *, side="tail", backend=None):
    """CSR ``(indptr int64 [B+1], indices int64)`` of the known ids of each query, sorted per row: exactly the
    ``exclude=`` argument of :func:`hardneg.ops.topk_mine` / :func:`hardneg.ops.sample_by_score`."""
    op = "known_exclusion"
    K = _known(op, known)
    A, s = _anchor(op, K, anchor, side)
    name, fn = resolve(op, backend, K.device)
    if A.shape[0] == 0:
        z = torch.zeros(1, dtype=torch.int64, device=K.device)
        return z, z[:0]
    return fn(K, A, s)


@register("known_exclusion", "reference")
def _excl_ref(K, A, s):
    return _ref.exclusion(K, s, A[:, 0], A[:, 1])


def _excl_core(K, A, s):
    B = A.shape[0]
    dev = K.device
    begin = torch.empty(B, dtype=torch.int64, device=dev)
    count = torch.empty(B, dtype=torch.int64, device=dev)
    kt, kh, m, E, R = _view(K)
    on_cuda = dev.type == "cuda"
    core().known_exclusion_count(kt, kh, m, E, R, s, A.data_ptr(), B, begin.data_ptr(), count.data_ptr(),
                                 num_threads(), on_cuda, _stream(dev))
    indptr = torch.zeros(B + 1, dtype=torch.int64, device=dev)
    indptr[1:] = torch.cumsum(count, 0)
    total = int(indptr[-1])
    indices = torch.empty(max(total, 1), dtype=torch.int64, device=dev)
    core().known_exclusion_fill(kt, kh, m, E, R, s, A.data_ptr(), B, begin.data_ptr(), indptr.data_ptr(),
                                indices.data_ptr(), num_threads(), on_cuda, _stream(dev))
    return indptr, indices[:total]


register("known_exclusion", "cpu")(_excl_core)
register("known_exclusion", "cuda")(_excl_core)


# ---------------------------------------------------------------------------------------------- corrupt
def _domain(op, domain, R, E, device):
    if domain is None:
        return None
    if isinstance(domain, dict):
        if set(domain) != {"head", "tail"}:
            raise ValueError(f"{op}: 'domain' dict must have keys 'head' and 'tail' (got {sorted(domain)})")
        domain = Domain(domain["head"], domain["tail"], R, E)
    if not isinstance(domain, Domain):
        raise TypeError(f"{op}: 'domain' must be a hardneg.Domain or a dict of CSR pairs (got {V.describe(domain)})")
    head = V.csr(op, "domain['head']", domain.head, R, E, device)
    tail = V.csr(op, "domain['tail']", domain.tail, R, E, device)
    return Domain(head, tail, R, E)


def corrupt(positives, num_negatives, num_entities, *, side="tail", known=None, domain=None, num_relations=None,
            generator=None, backend=None, max_tries=32):
    """Uniform corruption of one side of each positive, never returning a known positive when ``known`` is given.

    Each negative replaces the head or the tail of its positive by an entity drawn uniformly from the pool:
    all entities, or ``domain``'s allowed ids for that relation and side (type-constrained sampling). With
    ``known``, a drawn candidate that forms a known triple is rejected and redrawn, at most ``max_tries``
    times, after which the admissible set (pool minus known) is enumerated exactly and sampled uniformly:
    the result is exactly uniform over the admissible set and never loops forever.

    Args:
        positives: [B, 3] (h, r, t) or [B, 2] (u, v) int64.
        num_negatives: n >= 1 negatives per positive (drawn independently; they may repeat).
        num_entities: E, the entity (node) count: the range replacement ids are drawn from. For a bipartite known
            set (``KnownSet.from_edges(..., num_sources=U, num_destinations=I)``) it is I with ``side="tail"`` and
            U with ``side="head"``; such a set is corrupted one side at a time (unless U == I).
        side: ``"tail"``, ``"head"``, ``"both"`` (each with probability 1/2) or ``"bernoulli"`` (head with the
            relation's tph / (tph + hpt), computed from ``known``).
        known: optional :class:`hardneg.KnownSet` (the filter).
        domain: optional :class:`hardneg.Domain` or ``{"head": (indptr [R+1], ids), "tail": (...)}``.
        num_relations: R (defaults to ``known.num_relations``, else 1 + the largest relation id).
        generator: optional ``torch.Generator``; the CPU and CUDA kernels use the same Philox stream per
            (row, draw), so they return identical negatives for the same seed.
        max_tries: rejection attempts before exact enumeration.

    Returns:
        ``(negatives [B, n, 3 or 2] int64, valid [B, n] bool)``; ``valid`` is False only where the admissible
        set is empty, and there the corrupted entity is −1.

    Raises:
        TypeError: non-integer positives, wrong ``known``/``domain``/generator types.
        ValueError: bad shapes, ids out of range, num_negatives <= 0, unknown side, Bernoulli without a known
        set of triples, a domain whose CSR does not have num_relations rows, device mismatch.

    Example:
        >>> import torch, hardneg
        >>> pos = torch.tensor([[0, 0, 1], [2, 1, 3]])
        >>> ks = hardneg.KnownSet.from_triples(pos, 5, 2)
        >>> neg, valid = hardneg.ops.corrupt(pos, 4, 5, known=ks, generator=torch.Generator().manual_seed(0))
        >>> neg.shape, bool(valid.all())
        (torch.Size([2, 4, 3]), True)
    """
    op = "corrupt"
    P = V.tensor(op, "positives", positives, ndim=2, dtypes=V.INDEX_DTYPES, kind="integer tensor", what="[B, 3] or [B, 2]")
    if P.shape[1] not in (2, 3):
        raise ValueError(f"{op}: 'positives' must be [B, 3] or [B, 2] (got {V.describe(P)})")
    n = V.integer(op, "num_negatives", num_negatives, minimum=1)
    E = V.integer(op, "num_entities", num_entities, minimum=1)
    side = V.choice(op, "side", side, CORRUPT_SIDES)
    max_tries = V.integer(op, "max_tries", max_tries, minimum=1)
    V.generator(op, generator)
    dev = P.device
    P = P.to(torch.int64).contiguous()
    w = P.shape[1]
    if known is not None:
        _known(op, known)
        if known.device != dev:
            raise ValueError(f"{op}: 'known' is on {known.device} but 'positives' on {dev}")
        if known.bipartite and known.num_sources != known.num_destinations:
            if side not in ("tail", "head"):
                raise ValueError(f"{op}: a bipartite known set ({known.num_sources} sources, {known.num_destinations} "
                                 f"destinations) is corrupted one side at a time: side='tail' or 'head' (got "
                                 f"side={side!r})")
            if E != known.side_size(side):
                raise ValueError(f"{op}: num_entities={E} does not match the known set's {known.side_size(side)} "
                                 f"{'destinations' if side == 'tail' else 'sources'} (side={side!r})")
        elif known.num_entities != E:
            raise ValueError(f"{op}: num_entities={E} does not match the known set's {known.num_entities}")
        if (w == 3) != (known.kind == "triples"):
            raise ValueError(f"{op}: positives of width {w} do not match a known set of {known.kind}")
    if num_relations is None:
        R = known.num_relations if known is not None else (int(P[:, 1].max()) + 1 if w == 3 and P.numel() else 1)
    else:
        R = V.integer(op, "num_relations", num_relations, minimum=1)
        if known is not None and known.num_relations != R:
            raise ValueError(f"{op}: num_relations={R} does not match the known set's {known.num_relations}")
    first_n, last_n = (known.num_sources, known.num_destinations) if known is not None and known.bipartite else (E, E)
    _ids(op, "positives[:, 0]", P[:, 0], first_n, dev)
    _ids(op, f"positives[:, {w - 1}]", P[:, w - 1], last_n, dev)
    if w == 3:
        _ids(op, "positives[:, 1] (relations)", P[:, 1], R, dev)
    if side == "bernoulli" and known is None:
        raise ValueError(f"{op}: side='bernoulli' needs 'known' (the per-relation tph/hpt statistics come from it)")
    dom = _domain(op, domain, R, E, dev)
    name, fn = resolve(op, backend, dev)
    B = P.shape[0]
    if B == 0:
        return torch.zeros(0, n, w, dtype=torch.int64, device=dev), torch.zeros(0, n, dtype=torch.bool, device=dev)
    mode = CORRUPT_SIDES.index(side)
    p_head = known.head_probability().to(dev) if side == "bernoulli" else None
    return fn(P, n, E, R, mode, p_head, dom, known, generator, max_tries)


@register("corrupt", "reference")
def _corrupt_ref(P, n, E, R, mode, p_head, dom, known, generator, tries):
    return _ref.corrupt(P, n, E, mode, p_head, dom, known, generator, tries)


def _corrupt_core(P, n, E, R, mode, p_head, dom, known, generator, tries):
    B, w = P.shape
    dev = P.device
    out = torch.empty(B, n, w, dtype=torch.int64, device=dev)
    valid = torch.empty(B, n, dtype=torch.uint8, device=dev)
    ph = p_head.contiguous() if p_head is not None else None
    dh = (dom.head[0].contiguous(), dom.head[1].contiguous()) if dom is not None else None
    dt = (dom.tail[0].contiguous(), dom.tail[1].contiguous()) if dom is not None else None
    keep = torch.zeros(1, dtype=torch.int64, device=dev)  # valid pointer for empty id lists

    def ptr(x):
        return x.data_ptr() if x is not None and x.numel() else keep.data_ptr()

    if known is not None:
        kt, kh, m, KE, KR = _view(known)
    else:
        kt = kh = m = 0
        KE = KR = 1
    core().corrupt(P.data_ptr(), B, w, n, E, R, mode, ph.data_ptr() if ph is not None else 0,
                   ptr(dh[0]) if dh else 0, ptr(dh[1]) if dh else 0, ptr(dt[0]) if dt else 0,
                   ptr(dt[1]) if dt else 0, kt, kh, m, KE, KR, _seed_from(generator, dev), tries,
                   out.data_ptr(), valid.data_ptr(), num_threads(), dev.type == "cuda", _stream(dev))
    return out, valid.bool()


register("corrupt", "cpu")(_corrupt_core)
register("corrupt", "cuda")(_corrupt_core)
