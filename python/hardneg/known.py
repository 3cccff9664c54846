"""KnownSet: an immutable, exact index of known positives (triples or edges).

Layout: two sorted arrays of unique packed int64 keys, 16 bytes per known key:
tail-major ``(h*R + r)*E + t`` (the known tails of an anchor (h, r) are one contiguous sorted run) and
head-major ``(r*E + t)*E + h`` (the known heads of (r, t)). Edge sets are the R = 1 case with (u, 0, v).
With ``times``, the first time each key was seen is kept too (8 more bytes per key) to answer
"was (u, v) seen before t".

Every query (``contains``, ``mask``, ``exclusion``) is a binary search in these arrays, with a reference
(torch), a C++ (OpenMP) and a CUDA backend behind the usual dispatch.

Bipartite edge sets (users -> items: two id spaces of different sizes) are built with
``from_edges(edges, num_sources=U, num_destinations=I)``; keys are packed with E = max(U, I), so both spaces fit,
and ``num_sources`` / ``num_destinations`` say which ids are valid on each side (samplers draw replacement items
in [0, I) and replacement users in [0, U)).
"""
from __future__ import annotations

from typing import NamedTuple

import torch

from hardneg import _validate as V
from hardneg._constants import SIDES
from hardneg._opaque import Handle


class KnownView(NamedTuple):
    """What the kernels read of a :class:`KnownSet` (:meth:`KnownSet.kernel_view`). Holding it keeps the arrays
    alive for as long as a kernel may read them."""

    tail_keys: torch.Tensor  # int64 [m] tail-major keys (h*R + r)*E + t, sorted, unique; fences follow in memory
    head_keys: torch.Tensor  # int64 [m] head-major keys (r*E + t)*E + h, likewise
    first_time: torch.Tensor | None  # float64 [m] rank of each key's first-seen time among the distinct first-seen
    # times (exact whatever the times' dtype; :meth:`KnownSet.time_rank` maps query times to the same scale)
    num_entities: int
    num_relations: int

    def core_args(self) -> dict:
        """The keyword arguments of the compiled core's ``KnownView`` (what its filtering kernels take as
        ``known=``): ``tail``, ``head`` (data pointers; each array's fences, every 64th key, follow its m keys
        in the same allocation), ``first_time`` (data pointer or 0), ``size`` (m), ``num_entities``,
        ``num_relations``."""
        return dict(tail=self.tail_keys.data_ptr(), head=self.head_keys.data_ptr(),
                    first_time=self.first_time.data_ptr() if self.first_time is not None else 0,
                    size=self.tail_keys.numel(), num_entities=self.num_entities, num_relations=self.num_relations)


class KnownSet:
    """Index of known positives. Build with :meth:`from_triples` or :meth:`from_edges`.

    Example:
        >>> import torch, hardneg
        >>> ks = hardneg.KnownSet.from_triples(torch.tensor([[0, 0, 1], [0, 0, 2], [3, 1, 1]]), 4, 2)
        >>> ks.contains(torch.tensor([[0, 0, 1], [0, 0, 3]])).tolist()
        [True, False]
        >>> indptr, tails = ks.exclusion(torch.tensor([[0, 0]]), side="tail")
        >>> tails.tolist()
        [1, 2]
    """

    def __init__(self, kt, kh, num_entities, num_relations, *, kind, directed=True, first_time=None, head_prob=None,
                 num_sources=None, num_destinations=None):
        # each key array carries its fences (every 64th key) right after it, in one allocation, for the
        # kernels' two-level binary search; .kt / .kh are views of the keys alone
        self._kt_buf = _with_fences(kt)
        self._kh_buf = _with_fences(kh)
        self.kt = self._kt_buf[: kt.numel()]
        self.kh = self._kh_buf[: kh.numel()]
        self.num_entities = int(num_entities)
        self.num_relations = int(num_relations)
        #: bipartite edge sets: the id spaces of the first (source, head) and last (destination, tail) column
        self.bipartite = num_sources is not None
        self.num_sources = int(num_sources) if num_sources is not None else self.num_entities
        self.num_destinations = int(num_destinations) if num_destinations is not None else self.num_entities
        self.kind = kind  # "triples" | "edges"
        self.directed = directed
        self.first_time = first_time  # exact first-seen times (int64 or float64) [m], or None
        self._head_prob = head_prob
        rank = None
        if first_time is not None:  # the kernels compare ranks (float64, exact below 2**53 distinct times)
            self._time_values = torch.unique(first_time)
            rank = torch.searchsorted(self._time_values, first_time).to(torch.float64)
        self._view = KnownView(self.kt, self.kh, rank, self.num_entities, self.num_relations)
        #: what the hardneg:: custom ops take in place of this object (hardneg.ops._library)
        self.handle = Handle(self)

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_triples(cls, triples: torch.Tensor, num_entities: int, num_relations: int, *,
                     times=None) -> "KnownSet":
        """Known (h, r, t) triples [M, 3] (duplicates allowed). ``times`` [M] optional (first-seen times): a
        tensor on any device, a list or an array of numbers, kept as float64 on the triples' device.

        Raises:
            TypeError: non-integer triples, non-int counts, ``times`` that is not numeric.
            ValueError: not [M, 3], ids out of range, no triples, ``times`` not [M] or not finite.
        """
        op = "KnownSet.from_triples"
        E = V.integer(op, "num_entities", num_entities, minimum=1)
        R = V.integer(op, "num_relations", num_relations, minimum=1)
        tr = V.tensor(op, "triples", triples, ndim=2, dtypes=V.INDEX_DTYPES, kind="integer tensor", what="[M, 3]")
        if tr.shape[1] != 3:
            raise ValueError(f"{op}: 'triples' must be [M, 3] (got {V.describe(tr)})")
        tr = V.ids(op, "triples", tr, [E, R, E], what=("head ids", "relation ids", "tail ids"))
        times = None if times is None else _check_times(op, times, tr.shape[0], tr.device)
        return cls._build(op, tr[:, 0], tr[:, 1], tr[:, 2], E, R, "triples", True, times)

    @classmethod
    def from_edges(cls, edges: torch.Tensor, num_nodes: int | None = None, directed: bool = True, *,
                   times=None, num_sources: int | None = None, num_destinations: int | None = None) -> "KnownSet":
        """Known edges [M, 2] (u, v) (duplicates allowed); ``directed=False`` stores both directions. ``times``
        as in :meth:`from_triples`.

        A bipartite graph (users -> items) gives ``num_sources`` and ``num_destinations`` instead of
        ``num_nodes``: sources are checked against the first, destinations against the second (module docstring).

        Raises:
            TypeError: non-integer edges, a non-bool ``directed``, ``times`` that is not numeric.
            ValueError: not [M, 2], ids out of range, no edges, ``times`` not [M] or not finite, neither
                ``num_nodes`` nor both bipartite sizes, an undirected bipartite set.
        """
        op = "KnownSet.from_edges"
        bip = num_sources is not None or num_destinations is not None
        if bip == (num_nodes is not None) or (bip and (num_sources is None or num_destinations is None)):
            raise ValueError(f"{op}: give num_nodes, or num_sources and num_destinations for a bipartite graph (got "
                             f"num_nodes={num_nodes!r}, num_sources={num_sources!r}, "
                             f"num_destinations={num_destinations!r})")
        if bip:
            U = V.integer(op, "num_sources", num_sources, minimum=1)
            D = V.integer(op, "num_destinations", num_destinations, minimum=1)
            E = max(U, D)
        else:
            E = V.integer(op, "num_nodes", num_nodes, minimum=1)
        ed = V.tensor(op, "edges", edges, ndim=2, dtypes=V.INDEX_DTYPES, kind="integer tensor", what="[M, 2]")
        if ed.shape[1] != 2:
            raise ValueError(f"{op}: 'edges' must be [M, 2] (got {V.describe(ed)})")
        if not isinstance(directed, bool):
            raise TypeError(f"{op}: 'directed' must be a bool (got {V.describe(directed)})")
        if bip and not directed:
            raise ValueError(f"{op}: a bipartite set is directed (sources and destinations are different id spaces; "
                             f"got directed=False)")
        if bip:
            ed = V.ids(op, "edges", ed, [U, D], what=("source ids", "destination ids"))
        else:
            ed = V.ids(op, "edges", ed, E)
        u, v = ed[:, 0], ed[:, 1]
        if times is not None:
            times = _check_times(op, times, ed.shape[0], ed.device)
        if not directed:
            u, v = torch.cat([u, v]), torch.cat([v, u])
            if times is not None:
                times = torch.cat([times, times])
        ks = cls._build(op, u, torch.zeros_like(u), v, E, 1, "edges", directed, times)
        if bip:
            ks.bipartite, ks.num_sources, ks.num_destinations = True, U, D
        return ks

    @classmethod
    def _build(cls, op, h, r, t, E, R, kind, directed, times):
        if h.numel() == 0:
            raise ValueError(f"{op}: the known set is empty (got 0 {kind})")
        if E * R * E >= 2**62:
            raise ValueError(f"{op}: num_entities^2 * num_relations must be < 2**62 for packed keys (got {E}^2 * {R})")
        kt_all = (h * R + r) * E + t
        first = None
        if times is not None:  # validated by the caller: int64 or float64 [M] on the keys' device
            kt, inv = torch.unique(kt_all, return_inverse=True)
            first = torch.zeros(kt.numel(), dtype=times.dtype, device=kt.device)
            first.scatter_reduce_(0, inv, times, reduce="amin", include_self=False)
        else:
            kt = torch.unique(kt_all)
        hh = kt // (R * E)
        rr = (kt // E) % R
        tt = kt % E
        kh = torch.sort((rr * E + tt) * E + hh).values
        # Bernoulli head-corruption probability per relation: tph / (tph + hpt)
        cnt = torch.bincount(rr, minlength=R).double()
        n_hr = torch.bincount(torch.unique(kt // E) % R, minlength=R).double()
        n_rt = torch.bincount(torch.unique(kh // E) // E, minlength=R).double()
        tph = cnt / n_hr.clamp_min(1)
        hpt = cnt / n_rt.clamp_min(1)
        head_prob = torch.where(cnt > 0, tph / (tph + hpt).clamp_min(1e-12), torch.full_like(cnt, 0.5)).float()
        return cls(kt.contiguous(), kh.contiguous(), E, R, kind=kind, directed=directed, first_time=first,
                   head_prob=head_prob)

    # ------------------------------------------------------------------ properties
    @property
    def device(self) -> torch.device:
        return self.kt.device

    @property
    def num_keys(self) -> int:
        return self.kt.numel()

    def __len__(self) -> int:
        return self.num_keys

    @property
    def nbytes(self) -> int:
        n = self._kt_buf.numel() * 8 + self._kh_buf.numel() * 8
        if self.first_time is not None:
            n += self.first_time.numel() * 16 + self._time_values.numel() * 8
        return n

    @property
    def bytes_per_key(self) -> float:
        return self.nbytes / max(1, self.num_keys)

    def __repr__(self):
        sizes = (f"sources={self.num_sources}, destinations={self.num_destinations}" if self.bipartite else
                 f"entities={self.num_entities}")
        return (f"KnownSet({self.kind}, keys={self.num_keys}, {sizes}, "
                f"relations={self.num_relations}, device={self.device}, {self.bytes_per_key:.1f} B/key"
                f"{', timed' if self.first_time is not None else ''})")

    def to(self, device: torch.device | str) -> "KnownSet":
        """A copy on ``device`` (the arrays are immutable, so a same-device call returns self)."""
        device = torch.device(device)
        if device == self.device:
            return self
        ft = None if self.first_time is None else self.first_time.to(device)
        return KnownSet(self.kt.to(device), self.kh.to(device), self.num_entities, self.num_relations, kind=self.kind,
                        directed=self.directed, first_time=ft, head_prob=self._head_prob.to(device),
                        num_sources=self.num_sources if self.bipartite else None,
                        num_destinations=self.num_destinations if self.bipartite else None)

    def side_size(self, side: str) -> int:
        """How many ids the ``side`` takes: destinations (tails) for ``"tail"``, sources (heads) for ``"head"``."""
        return self.num_destinations if V.choice("KnownSet.side_size", "side", side, SIDES) == "tail" \
            else self.num_sources

    def time_rank(self, before: torch.Tensor, inclusive: bool) -> torch.Tensor:
        """float64 [B]: for each query time, the number of distinct first-seen times ``< before`` (``<=`` when
        ``inclusive``), so that "first seen before ``before``" is exactly ``first_time rank < time_rank``, with
        no rounding of int64 times (a float query against int64 times is compared exactly too)."""
        vals = self._time_values
        b = before
        if vals.dtype == torch.int64 and b.is_floating_point():
            b64 = b.to(torch.float64)
            hi, lo = b64 >= 2.0**63, b64 < -(2.0**63)
            safe = torch.where(hi | lo, torch.zeros_like(b64), b64)
            # t < b  <=>  t < ceil(b);  t <= b  <=>  t <= floor(b)   (t an integer)
            bi = (torch.floor(safe) if inclusive else torch.ceil(safe)).to(torch.int64)
            r = torch.searchsorted(vals, bi, right=bool(inclusive))
            r = torch.where(hi, torch.full_like(r, vals.numel()), torch.where(lo, torch.zeros_like(r), r))
        else:
            r = torch.searchsorted(vals, b.to(vals.dtype).contiguous(), right=bool(inclusive))
        return r.to(torch.float64)

    def kernel_view(self) -> KnownView:
        """The one way kernels (``hardneg.ops``, the references) read the set: its key arrays, first-seen times and
        sizes as a :class:`KnownView`, whose ``core_args()`` are the compiled kernels' keyword arguments. The
        arrays are immutable; keep the view alive while a kernel reads them."""
        return self._view

    def head_probability(self) -> torch.Tensor:
        """Per-relation probability of corrupting the head, tph / (tph + hpt) (Bernoulli negative sampling)."""
        return self._head_prob

    def triples(self) -> torch.Tensor:
        """The unique known keys as (h, r, t) [M, 3] (edges: (u, 0, v))."""
        E, R = self.num_entities, self.num_relations
        return torch.stack([self.kt // (R * E), (self.kt // E) % R, self.kt % E], 1)

    def domain(self) -> "Domain":
        """Type constraints seen in the data: per relation, the entities seen as heads and as tails."""
        tr = self.triples()
        return Domain.from_pairs(tr[:, 1], tr[:, 0], tr[:, 1], tr[:, 2], self.num_relations, self.num_entities)

    # ------------------------------------------------------------------ queries
    def contains(self, keys: torch.Tensor, *, before: torch.Tensor | None = None, inclusive: bool = False,
                 backend: str | None = None) -> torch.Tensor:
        """bool [B]: whether each key ([B, 3] triples, or [B, 2] edges) is known; with ``before`` [B], whether it
        was first seen strictly before that time (``inclusive=True``: at or before)."""
        from hardneg.ops.filtering import known_contains

        return known_contains(self, keys, before=before, inclusive=inclusive, backend=backend)

    def mask(self, anchor: torch.Tensor, candidates: torch.Tensor, side: str = "tail", *,
             backend: str | None = None) -> torch.Tensor:
        """bool [B, n]: True where (anchor, candidate) is known. Tail queries: anchor = (h, r); head queries:
        anchor = (r, t). For edge sets the anchor may be [B] node ids (source for tail, destination for head)."""
        from hardneg.ops.filtering import known_mask

        return known_mask(self, anchor, candidates, side=side, backend=backend)

    def exclusion(self, anchor: torch.Tensor, side: str = "tail", *,
                  backend: str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """The CSR ``(indptr [B+1], indices)`` of known ids per query, in the form ``topk_mine(exclude=...)`` takes."""
        from hardneg.ops.filtering import known_exclusion

        return known_exclusion(self, anchor, side=side, backend=backend)


class Domain:
    """Allowed ids per relation and side (type-constrained corruption): CSR ``head`` and ``tail``, each
    ``(indptr [R+1], ids)`` with sorted unique ids per relation."""

    def __init__(self, head: tuple[torch.Tensor, torch.Tensor], tail: tuple[torch.Tensor, torch.Tensor],
                 num_relations: int, num_entities: int):
        self.head = head
        self.tail = tail
        self.num_relations = num_relations
        self.num_entities = num_entities

    @classmethod
    def from_pairs(cls, head_rel: torch.Tensor, head_ids: torch.Tensor, tail_rel: torch.Tensor,
                   tail_ids: torch.Tensor, num_relations: int, num_entities: int) -> "Domain":
        def csr(rel, ids):
            key = torch.unique(rel * num_entities + ids)
            r = key // num_entities
            ptr = torch.zeros(num_relations + 1, dtype=torch.int64, device=key.device)
            ptr[1:] = torch.cumsum(torch.bincount(r, minlength=num_relations), 0)
            return ptr, key % num_entities

        return cls(csr(head_rel, head_ids), csr(tail_rel, tail_ids), num_relations, num_entities)

    def to(self, device: torch.device | str) -> "Domain":
        return Domain(tuple(x.to(device) for x in self.head), tuple(x.to(device) for x in self.tail),
                      self.num_relations, self.num_entities)


def _with_fences(keys: torch.Tensor) -> torch.Tensor:
    return torch.cat([keys, keys[::64]]).contiguous()


def _check_times(op, times, m, device) -> torch.Tensor:
    """``times`` (a tensor, list or array of M numbers) [M] on ``device``: int64 for integer times (exact),
    float64 (finite) otherwise."""
    times = V.as_tensor(op, "times", times, "a tensor, list or array of M numbers")
    if times.dtype == torch.bool or times.is_complex():
        raise TypeError(f"{op}: 'times' must hold real numbers (got {V.describe(times)})")
    if times.dim() != 1 or times.numel() != m:
        raise ValueError(f"{op}: 'times' must be [M] with M={m} (got {V.describe(times)})")
    if not times.is_floating_point():
        return times.to(device=device, dtype=torch.int64)
    times = times.to(device=device, dtype=torch.float64)
    if not bool(torch.isfinite(times).all()):
        raise ValueError(f"{op}: 'times' must be finite (got NaN/Inf)")
    return times
