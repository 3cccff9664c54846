"""Filtering family: exact known-positive queries (contains / mask / exclusion CSR) and filtered corruption.

Shapes: ``B`` queries, ``n`` candidates or negatives per query. Every id is range-checked on every call, before
any kernel runs; on CUDA inputs each checked tensor costs one synchronisation (:mod:`hardneg._validate`).
Kernels read a :class:`hardneg.KnownSet` only through :meth:`~hardneg.KnownSet.kernel_view`.
"""
from __future__ import annotations

import torch

from hardneg import _validate as V
from hardneg._backend import core, device_args, register, resolve
from hardneg._constants import SIDE_MODES, SIDES, code
from hardneg._random import as_generator, compile_seed, seed_from
from hardneg.known import Domain, KnownSet
from hardneg.reference import filtering as _ref

__all__ = ["corrupt", "known_contains", "known_mask", "known_exclusion"]


def _known(op: str, known) -> KnownSet:
    if not isinstance(known, KnownSet):
        raise TypeError(f"{op}: 'known' must be a hardneg.KnownSet (got {V.describe(known)})")
    return known


def _side_ids(K: KnownSet, side: str) -> str:
    """What the ids of ``side`` are called in messages (bipartite sets: source / destination ids)."""
    if not K.bipartite:
        return "ids"
    return "destination ids" if side == "tail" else "source ids"


def _core_view(K: KnownSet):
    """The compiled kernels' view of ``K`` (raw pointers: ``K`` outlives it)."""
    return core().KnownView(**K.kernel_view().core_args())


def _anchor(op: str, K: KnownSet, anchor, side: str) -> tuple[torch.Tensor, int]:
    """-> (anchor int64 [B, 2]: tail side (h, r), head side (r, t); the side's code)."""
    side = V.choice(op, "side", side, SIDES)
    s = code(SIDES, side)
    A = V.tensor(op, "anchor", anchor, dtypes=V.INDEX_DTYPES, kind="integer tensor")
    if K.kind == "edges" and A.dim() == 1:
        A = A[:, None]
        z = torch.zeros_like(A)
        A = torch.cat([A, z], 1) if s == 0 else torch.cat([z, A], 1)
    if A.dim() != 2 or A.shape[1] != 2:
        raise ValueError(f"{op}: 'anchor' must be [B, 2] ((h, r) for tail queries, (r, t) for head queries)"
                         f"{' or [B] node ids' if K.kind == 'edges' else ''} (got {V.describe(A)})")
    # the anchor's entity is a head (source) for tail queries and a tail (destination) for head queries
    if s == 0:
        bounds, what = [K.num_sources, K.num_relations], (_side_ids(K, "head"), "ids")
    else:
        bounds, what = [K.num_relations, K.num_destinations], ("ids", _side_ids(K, "tail"))
    return V.ids(op, "anchor", A, bounds, device=K.device, what=what).contiguous(), s


# ---------------------------------------------------------------------------------------------- contains
def known_contains(known: KnownSet, keys: torch.Tensor, *, before: torch.Tensor | None = None, inclusive: bool = False,
                   backend: str | None = None) -> torch.Tensor:
    """bool [B]: whether each key ([B, 3] (h, r, t) or [B, 2] (u, v) for edge sets) is known; with ``before``
    [B] (a known set built with times), whether it was first seen before that time.

    Raises:
        TypeError: non-KnownSet, non-integer keys. ValueError: wrong width, ids out of range, device mismatch,
        ``before`` without times or of the wrong length, NaN times.

    Example:
        >>> import torch, hardneg
        >>> ks = hardneg.KnownSet.from_triples(torch.tensor([[0, 0, 1], [0, 0, 2]]), 4, 1)
        >>> hardneg.ops.known_contains(ks, torch.tensor([[0, 0, 2], [1, 0, 2]])).tolist()
        [True, False]
    """
    op = "known_contains"
    if torch.compiler.is_compiling():  # traced: the custom op (it runs this function, checks and all)
        from hardneg.ops import _library

        return _library.known_contains(known.handle, keys, before, inclusive, backend)
    K = _known(op, known)
    k = V.tensor(op, "keys", keys, ndim=2, dtypes=V.INDEX_DTYPES, kind="integer tensor")
    width = 3 if K.kind == "triples" else 2
    if k.shape[1] != width:
        raise ValueError(f"{op}: 'keys' must be [B, {width}] for a known set of {K.kind} (got {V.describe(k)})")
    E, R = K.num_entities, K.num_relations
    if width == 3:
        bounds, what = [E, R, E], ("head ids", "relation ids", "tail ids")
    else:
        bounds = [K.num_sources, K.num_destinations]
        what = (_side_ids(K, "head"), _side_ids(K, "tail")) if K.bipartite else "node ids"
    k = V.ids(op, "keys", k, bounds, device=K.device, what=what).contiguous()
    if before is not None:
        if K.kernel_view().first_time is None:
            raise ValueError(f"{op}: 'before' needs a known set built with times=...")
        before = V.tensor(op, "before", before, ndim=1)
        if before.numel() != k.shape[0]:
            raise ValueError(f"{op}: 'before' must be [B] with B={k.shape[0]} (got {V.describe(before)})")
        if before.device != K.device:
            raise ValueError(f"{op}: 'before' must be on {K.device} (got {before.device})")
        if before.is_floating_point() and bool(torch.isnan(before).any()):
            raise ValueError(f"{op}: 'before' must not contain NaN")
        if not before.is_floating_point() and before.dtype not in V.INDEX_DTYPES + (torch.int16, torch.int8,
                                                                                   torch.uint8):
            raise TypeError(f"{op}: 'before' must be a numeric tensor (got {V.describe(before)})")
        # exact: compared as ranks among the set's first-seen times (KnownSet.time_rank), never rounded
        before, inclusive = K.time_rank(before, inclusive).contiguous(), False
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
    core().known_contains(known=_core_view(K), keys=k.data_ptr(), num_queries=k.shape[0], width=k.shape[1],
                          before=before.data_ptr() if before is not None else 0, inclusive=inclusive,
                          out=out.data_ptr(), **device_args(K.device))
    return out.bool()


register("known_contains", "cpu")(_contains_core)
register("known_contains", "cuda")(_contains_core)


# ---------------------------------------------------------------------------------------------- mask
def known_mask(known: KnownSet, anchor: torch.Tensor, candidates: torch.Tensor, *, side: str = "tail",
               backend: str | None = None) -> torch.Tensor:
    """bool [B, n]: True where (anchor, candidate) is known (tail side: anchor (h, r); head side: (r, t)).

    Raises:
        TypeError: non-KnownSet, non-integer anchor or candidates.
        ValueError: bad shapes, ids out of range, an unknown side, device mismatch.

    Example:
        >>> import torch, hardneg
        >>> ks = hardneg.KnownSet.from_triples(torch.tensor([[0, 0, 1], [0, 0, 2]]), 4, 1)
        >>> hardneg.ops.known_mask(ks, torch.tensor([[0, 0]]), torch.tensor([[1, 3, 2]])).tolist()
        [[True, False, True]]
    """
    op = "known_mask"
    if torch.compiler.is_compiling():  # traced: the custom op (it runs this function, checks and all)
        from hardneg.ops import _library

        return _library.known_mask(known.handle, anchor, candidates, side, backend)
    K = _known(op, known)
    A, s = _anchor(op, K, anchor, side)
    C = V.tensor(op, "candidates", candidates, ndim=2, dtypes=V.INDEX_DTYPES, kind="integer tensor", what="[B, n]")
    if C.shape[0] != A.shape[0]:
        raise ValueError(f"{op}: 'candidates' must have B={A.shape[0]} rows like 'anchor' (got {V.describe(C)})")
    C = V.ids(op, "candidates", C, K.side_size(SIDES[s]), device=K.device, what=_side_ids(K, SIDES[s])).contiguous()
    name, fn = resolve(op, backend, K.device)
    if C.numel() == 0:
        return torch.zeros(C.shape, dtype=torch.bool, device=K.device)
    return fn(K, A, s, C)


@register("known_mask", "reference")
def _mask_ref(K, A, s, C):
    return _ref.mask(K, s, A[:, 0], A[:, 1], C)


def _mask_core(K, A, s, C):
    out = torch.empty(C.shape, dtype=torch.uint8, device=K.device)
    core().known_mask(known=_core_view(K), side=s, anchor=A.data_ptr(), candidates=C.data_ptr(),
                      num_queries=C.shape[0], num_candidates=C.shape[1], out=out.data_ptr(), **device_args(K.device))
    return out.bool()


register("known_mask", "cpu")(_mask_core)
register("known_mask", "cuda")(_mask_core)


# ---------------------------------------------------------------------------------------------- exclusion
def known_exclusion(known: KnownSet, anchor: torch.Tensor, *, side: str = "tail",
                    backend: str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """CSR ``(indptr int64 [B+1], indices int64)`` of the known ids of each query, sorted per row: exactly the
    ``exclude=`` argument of :func:`hardneg.ops.topk_mine` / :func:`hardneg.ops.sample_by_score`.

    Raises:
        TypeError: non-KnownSet, non-integer anchor. ValueError: bad shape, ids out of range, unknown side.

    Example:
        >>> import torch, hardneg
        >>> ks = hardneg.KnownSet.from_triples(torch.tensor([[0, 0, 1], [0, 0, 2]]), 4, 1)
        >>> indptr, ids = hardneg.ops.known_exclusion(ks, torch.tensor([[0, 0], [3, 0]]))
        >>> indptr.tolist(), ids.tolist()
        ([0, 2, 2], [1, 2])
    """
    op = "known_exclusion"
    if torch.compiler.is_compiling():
        from hardneg.ops import _library

        return _library.known_exclusion(known.handle, anchor, side, backend)
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
    query = dict(known=_core_view(K), side=s, anchor=A.data_ptr(), num_queries=B, **device_args(dev))
    core().known_exclusion_count(**query, out_begin=begin.data_ptr(), out_count=count.data_ptr())
    indptr = torch.zeros(B + 1, dtype=torch.int64, device=dev)
    indptr[1:] = torch.cumsum(count, 0)
    total = int(indptr[-1])
    indices = torch.empty(max(total, 1), dtype=torch.int64, device=dev)
    core().known_exclusion_fill(**query, begin=begin.data_ptr(), indptr=indptr.data_ptr(),
                                out_indices=indices.data_ptr())
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

    def kernel_csr(name, pair):
        indptr, ids = V.csr(op, name, pair, R, E, device)
        # contiguous, and never an empty id array: a null pointer would mean "no domain" to the kernels
        ids = ids.contiguous() if ids.numel() else torch.zeros(1, dtype=torch.int64, device=device)
        return indptr.contiguous(), ids

    return Domain(kernel_csr("domain['head']", domain.head), kernel_csr("domain['tail']", domain.tail), R, E)


def corrupt(positives: torch.Tensor, num_negatives: int, num_entities: int, *, side: str = "tail",
            known: KnownSet | None = None, domain: Domain | dict | None = None, num_relations: int | None = None,
            generator: torch.Generator | None = None, backend: str | None = None,
            max_tries: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
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
    if torch.compiler.is_compiling():
        from hardneg.ops import _library

        parts = (None,) * 4
        if domain is not None:
            head, tail = (domain["head"], domain["tail"]) if isinstance(domain, dict) else (domain.head, domain.tail)
            parts = (*head, *tail)
        return _library.corrupt(positives, num_negatives, num_entities, side, None if known is None else known.handle,
                                *parts, num_relations, compile_seed(op, generator), backend, max_tries)
    P = V.tensor(op, "positives", positives, ndim=2, dtypes=V.INDEX_DTYPES, kind="integer tensor", what="[B, 3] or [B, 2]")
    if P.shape[1] not in (2, 3):
        raise ValueError(f"{op}: 'positives' must be [B, 3] or [B, 2] (got {V.describe(P)})")
    n = V.integer(op, "num_negatives", num_negatives, minimum=1)
    E = V.integer(op, "num_entities", num_entities, minimum=1)
    side_mode = V.choice(op, "side", side, SIDE_MODES)
    max_tries = V.integer(op, "max_tries", max_tries, minimum=1)
    V.generator(op, generator)
    generator = as_generator(generator)  # a SeedStream: the generator of its next sub-seed
    dev = P.device
    P = P.to(torch.int64).contiguous()
    w = P.shape[1]
    if known is not None:
        _known(op, known)
        if known.device != dev:
            raise ValueError(f"{op}: 'known' is on {known.device} but 'positives' on {dev}")
        if known.bipartite and known.num_sources != known.num_destinations:
            if side_mode not in ("tail", "head"):
                raise ValueError(f"{op}: a bipartite known set ({known.num_sources} sources, {known.num_destinations} "
                                 f"destinations) is corrupted one side at a time: side='tail' or 'head' (got "
                                 f"side={side_mode!r})")
            if E != known.side_size(side_mode):
                raise ValueError(f"{op}: num_entities={E} does not match the known set's {known.side_size(side_mode)} "
                                 f"{'destinations' if side_mode == 'tail' else 'sources'} (side={side_mode!r})")
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
    V.ids(op, "positives", P, [first_n, R, last_n] if w == 3 else [first_n, last_n],
          what=("entity ids", "relation ids", "entity ids") if w == 3 else "node ids")
    if side_mode == "bernoulli" and known is None:
        raise ValueError(f"{op}: side='bernoulli' needs 'known' (the per-relation tph/hpt statistics come from it)")
    dom = _domain(op, domain, R, E, dev)
    V.alloc(op, "the output (negatives, valid)", (P.shape[0], n), 8 * w + 1, dev)
    name, fn = resolve(op, backend, dev)
    B = P.shape[0]
    if B == 0:
        return torch.zeros(0, n, w, dtype=torch.int64, device=dev), torch.zeros(0, n, dtype=torch.bool, device=dev)
    p_head = known.head_probability().to(dev) if side_mode == "bernoulli" else None
    return fn(P, n, E, R, code(SIDE_MODES, side_mode), p_head, dom, known, generator, max_tries)


@register("corrupt", "reference")
def _corrupt_ref(P, n, E, R, side_mode, p_head, dom, known, generator, tries):
    return _ref.corrupt(P, n, E, side_mode, p_head, dom, known, generator, tries)


def _corrupt_core(P, n, E, R, side_mode, p_head, dom, known, generator, tries):
    B, w = P.shape
    dev = P.device
    out = torch.empty(B, n, w, dtype=torch.int64, device=dev)
    valid = torch.empty(B, n, dtype=torch.uint8, device=dev)
    ph = p_head.contiguous() if p_head is not None else None
    dom_args = {f"domain_{side}_{part}": (getattr(dom, side)[j].data_ptr() if dom is not None else 0)
                for side in ("head", "tail") for j, part in enumerate(("indptr", "ids"))}
    core().corrupt(positives=P.data_ptr(), num_positives=B, width=w, num_negatives=n, num_entities=E,
                   num_relations=R, side_mode=side_mode, head_prob=ph.data_ptr() if ph is not None else 0,
                   **dom_args, known=_core_view(known) if known is not None else None, seed=seed_from(generator),
                   max_tries=tries, out=out.data_ptr(),
                   out_valid=valid.data_ptr(), **device_args(dev))
    return out, valid.bool()


register("corrupt", "cpu")(_corrupt_core)
register("corrupt", "cuda")(_corrupt_core)
