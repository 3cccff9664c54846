"""TemporalGraph: exact, leak-free neighbour lookup strictly before an explicit time, with amortised appends.

Storage: an append-only event log (growable buffers) and a list of *levels*, each a T-CSR over a contiguous
slice of the log (per node, incident events sorted by (time, edge id)). ``append`` adds a level for the new
batch and merges the newest levels like a binary counter (a level absorbs the next when it is not larger), so
every event is re-indexed O(log(E / batch)) times in total: no full rebuild per batch. Levels never
interleave in time, so a node's history is its runs concatenated level by level.

Memory: per (node, event) entry 20 bytes (int32 neighbour, 8-byte time, int64 edge id) plus per-level node
offsets (8 bytes per node per level, O(log) levels); the log keeps 32 bytes per event (src, dst, time, id).
Undirected graphs store each event in both endpoints' lists.

Concurrency: any number of threads may query a graph while one thread appends to it (appends from several
threads are serialised by a lock). Readers never lock: the graph's state (event count, log buffers, levels)
is one immutable snapshot replaced by a single assignment at the end of ``append``; a query reads the
snapshot once and holds a reference to it (through :class:`TemporalView` for the compiled kernels, which run
without the GIL) until it returns, so a level that ``append`` merges away is freed only after the last
query reading it. A query sees the graph as it was before or after a concurrent ``append``, never between.
"""
from __future__ import annotations

import threading
from typing import NamedTuple

import torch

from hardneg import _validate as V
from hardneg._backend import core
from hardneg._opaque import Handle
from hardneg._random import uniform


class _Level:
    __slots__ = ("start", "stop", "ptr", "nbr", "time", "eid")

    def __init__(self, start, stop, ptr, nbr, time, eid):
        self.start, self.stop = start, stop
        self.ptr, self.nbr, self.time, self.eid = ptr, nbr, time, eid


class _State(NamedTuple):
    """One immutable state of the graph: the first ``n`` entries of the log buffers and the levels over them.
    ``append`` writes only past ``n`` (or into new buffers) and publishes a new state in one assignment."""

    n: int
    src: torch.Tensor
    dst: torch.Tensor
    t: torch.Tensor
    eid: torch.Tensor
    levels: tuple


class TemporalView(NamedTuple):
    """What the kernels read of a :class:`TemporalGraph` (:meth:`TemporalGraph.kernel_view`). Holding it keeps
    the level table and the levels it points to alive (``owner``), even after an ``append`` replaces them."""

    levels: torch.Tensor  # int64 [num_levels, 4]: (ptr, nbr, time, eid) data pointers per level, on the graph's device
    num_levels: int
    num_nodes: int
    time_dtype: torch.dtype  # torch.int64 or torch.float64
    num_edge_ids: int  # 1 + the largest edge id (0 when empty): rows a per-edge feature table needs
    owner: tuple = ()  # the _Level objects the pointers belong to
    streaming: object = None  # CPU graphs with the core built: its TemporalLevels (the streaming lookup's entry)

    def core_args(self) -> dict:
        """The keyword arguments of the compiled ``temporal_neighbors`` kernel that describe the graph:
        ``levels`` (data pointer of the table), ``num_levels``, ``int_time``."""
        return dict(levels=self.levels.data_ptr(), num_levels=self.num_levels, int_time=self.time_dtype == torch.int64)


class TemporalGraph:
    """Continuous-time interaction graph with exact temporal neighbour queries.

    Args:
        src, dst: [M] int node ids of each event.
        t: [M] event times, int64 or float64 (other integer/float dtypes are promoted); unsorted input is
            sorted once at build time by (time, edge id).
        num_nodes: node count (default: 1 + the largest id); appended events must stay below it.
        edge_ids: [M] int64 ids reported back for each event (default: 0..M-1 in input order).
        undirected: store each event in both endpoints' lists (TGN/TGAT convention); False: only in src's.

    Example:
        >>> import torch, hardneg
        >>> g = hardneg.TemporalGraph(torch.tensor([0, 0, 1]), torch.tensor([1, 2, 2]), torch.tensor([1, 2, 3]))
        >>> nbrs, eids, times, valid = g.neighbors(torch.tensor([0, 2]), torch.tensor([3, 3]), k=2)
        >>> nbrs.tolist(), valid.tolist()
        ([[2, 1], [0, -1]], [[True, True], [True, False]])
    """

    def __init__(self, src: torch.Tensor, dst: torch.Tensor, t: torch.Tensor, *, num_nodes: int | None = None,
                 edge_ids: torch.Tensor | None = None, undirected: bool = True):
        op = "TemporalGraph"
        src, dst, t, eid = self._check_events(op, src, dst, t, edge_ids, None)
        if not isinstance(undirected, bool):
            raise TypeError(f"{op}: 'undirected' must be a bool (got {V.describe(undirected)})")
        if num_nodes is None:
            num_nodes = int(max(int(src.max()), int(dst.max()))) + 1 if src.numel() else 1
        self.num_nodes = V.integer(op, "num_nodes", num_nodes, minimum=1)
        V.alloc(op, "the node offsets of one level", (self.num_nodes + 1,), 8, src.device)
        self._check_range(op, src, dst)
        self.undirected = undirected
        self.time_dtype = t.dtype
        order = _time_order(t, eid)
        n = src.numel()
        cap = max(1024, n)
        dev = src.device
        self._src = torch.empty(cap, dtype=torch.int64, device=dev)
        self._dst = torch.empty(cap, dtype=torch.int64, device=dev)
        self._t = torch.empty(cap, dtype=t.dtype, device=dev)
        self._eid = torch.empty(cap, dtype=torch.int64, device=dev)
        self._n = n
        self._src[:n], self._dst[:n], self._t[:n], self._eid[:n] = src[order], dst[order], t[order], eid[order]
        self._next_eid = int(eid.max()) + 1 if n else 0
        self._lock = threading.Lock()  # serialises writers; readers use the published snapshot
        self._view = None
        self._by_src = None  # seen_destinations' index of the events by (source, time), for one published state
        self._publish((self._build(0, n),) if n else ())
        #: what the hardneg:: custom ops take in place of this object (hardneg.ops._library)
        self.handle = Handle(self)

    # ------------------------------------------------------------------ validation / building
    @staticmethod
    def _check_events(op, src, dst, t, edge_ids, next_eid):
        src = V.tensor(op, "src", src, ndim=1, dtypes=V.INDEX_DTYPES, kind="integer tensor")
        dst = V.tensor(op, "dst", dst, ndim=1, dtypes=V.INDEX_DTYPES, kind="integer tensor")
        t = V.tensor(op, "t", t, ndim=1)
        if src.numel() != dst.numel() or src.numel() != t.numel():
            raise ValueError(f"{op}: 'src', 'dst' and 't' must have the same length "
                             f"(got {src.numel()}, {dst.numel()}, {t.numel()})")
        if src.device != dst.device or src.device != t.device:
            raise ValueError(f"{op}: 'src', 'dst' and 't' must be on one device")
        if t.is_floating_point():
            t = t.to(torch.float64)
            if t.numel() and not bool(torch.isfinite(t).all()):
                raise ValueError(f"{op}: 't' must be finite (got NaN/Inf times)")
        elif t.dtype in (torch.int64, torch.int32, torch.int16, torch.uint8, torch.int8):
            t = t.to(torch.int64)
        else:
            raise TypeError(f"{op}: 't' must be an integer or floating tensor (got {V.describe(t)})")
        if edge_ids is None:
            start = 0 if next_eid is None else next_eid
            eid = torch.arange(start, start + src.numel(), device=src.device)
        else:
            eid = V.tensor(op, "edge_ids", edge_ids, ndim=1, dtypes=V.INDEX_DTYPES, kind="integer tensor").to(torch.int64)
            if eid.numel() != src.numel():
                raise ValueError(f"{op}: 'edge_ids' must have {src.numel()} entries (got {eid.numel()})")
        return src.to(torch.int64), dst.to(torch.int64), t, eid

    def _check_range(self, op, src, dst):
        V.ids(op, "src", src, self.num_nodes, what="node ids")
        V.ids(op, "dst", dst, self.num_nodes, what="node ids")

    def _build(self, start, stop) -> _Level:
        """T-CSR over log[start:stop] (already sorted by (time, edge id))."""
        s, d = self._src[start:stop], self._dst[start:stop]
        t, e = self._t[start:stop], self._eid[start:stop]
        if self.undirected:
            node = torch.cat([s, d])
            nbr = torch.cat([d, s])
            tt, ee = torch.cat([t, t]), torch.cat([e, e])
            seq = torch.cat([torch.arange(stop - start, device=s.device)] * 2)
        else:
            node, nbr, tt, ee, seq = s, d, t, e, torch.arange(stop - start, device=s.device)
        # stable by node over (time, id)-sorted events
        order = _lex_order(node, seq, self.num_nodes, stop - start + 1)
        ptr = torch.zeros(self.num_nodes + 1, dtype=torch.int64, device=s.device)
        ptr[1:] = torch.cumsum(torch.bincount(node, minlength=self.num_nodes), 0)
        return _Level(start, stop, ptr, nbr[order].to(torch.int32).contiguous(), tt[order].contiguous(),
                      ee[order].contiguous())

    def _publish(self, levels: tuple) -> None:
        """Make the current log and ``levels`` the state readers see (one assignment)."""
        self._state = _State(self._n, self._src, self._dst, self._t, self._eid, tuple(levels))

    # ------------------------------------------------------------------ properties
    @property
    def num_events(self) -> int:
        return self._state.n

    @property
    def device(self) -> torch.device:
        return self._state.src.device

    def events(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(src, dst, t, edge_ids)`` [M] of one consistent state (safe while another thread appends)."""
        s = self._state
        return s.src[: s.n], s.dst[: s.n], s.t[: s.n], s.eid[: s.n]

    @property
    def src(self) -> torch.Tensor:
        return self.events()[0]

    @property
    def dst(self) -> torch.Tensor:
        return self.events()[1]

    @property
    def t(self) -> torch.Tensor:
        return self.events()[2]

    @property
    def edge_ids(self) -> torch.Tensor:
        return self.events()[3]

    @property
    def num_levels(self) -> int:
        return len(self._state.levels)

    @property
    def nbytes(self) -> int:
        """Bytes of the neighbour index (levels), excluding the event log."""
        return sum(L.ptr.numel() * 8 + L.nbr.numel() * 4 + L.time.numel() * 8 + L.eid.numel() * 8
                   for L in self._state.levels)

    def __repr__(self):
        return (f"TemporalGraph(events={self.num_events}, nodes={self.num_nodes}, levels={self.num_levels}, "
                f"time={self.time_dtype}, undirected={self.undirected}, device={self.device})")

    def to(self, device: torch.device | str) -> "TemporalGraph":
        device = torch.device(device)
        with self._lock:
            st = self._state
            g = TemporalGraph.__new__(TemporalGraph)
            g.num_nodes, g.undirected, g.time_dtype = self.num_nodes, self.undirected, self.time_dtype
            g._src, g._dst, g._t, g._eid = (x.to(device) for x in (st.src, st.dst, st.t, st.eid))
            g._n, g._next_eid = st.n, self._next_eid
            g._lock = threading.Lock()
            g._view = g._by_src = None
            g.handle = Handle(g)
            g._publish(tuple(_Level(L.start, L.stop, L.ptr.to(device), L.nbr.to(device), L.time.to(device),
                                    L.eid.to(device)) for L in st.levels))
        return g

    def __getstate__(self):
        d = dict(self.__dict__)
        d.pop("_lock", None)
        d.pop("handle", None)
        d["_view"] = d["_by_src"] = None
        return d

    def __setstate__(self, d):
        self.__dict__.update(d)
        self._lock = threading.Lock()
        self.handle = Handle(self)

    # ------------------------------------------------------------------ streaming
    def append(self, src: torch.Tensor, dst: torch.Tensor, t: torch.Tensor, *,
               edge_ids: torch.Tensor | None = None) -> "TemporalGraph":
        """Insert a batch of events whose times are all >= the latest time so far. Amortised: the batch becomes
        a new level and levels merge like a binary counter (no full rebuild per batch). Returns self."""
        with self._lock:
            return self._append(src, dst, t, edge_ids)

    def _append(self, src, dst, t, edge_ids):
        op = "TemporalGraph.append"
        src, dst, t, eid = self._check_events(op, src, dst, t, edge_ids, self._next_eid)
        if src.device != self.device:
            raise ValueError(f"{op}: events must be on {self.device} (got {src.device})")
        self._check_range(op, src, dst)
        if src.numel() == 0:
            return self
        if self.time_dtype == torch.int64 and t.is_floating_point():
            raise TypeError(f"{op}: the graph has int64 times; got floating 't'")
        t = t.to(self.time_dtype)
        if self._n and bool((t < self._t[self._n - 1]).any()):
            raise ValueError(f"{op}: appended times must be >= the latest time {self._t[self._n - 1].item()} "
                             f"(got min {t.min().item()}); events cannot go back in time")
        order = _time_order(t, eid)
        m = src.numel()
        self._reserve(self._n + m)
        a, b = self._n, self._n + m
        self._src[a:b], self._dst[a:b], self._t[a:b], self._eid[a:b] = src[order], dst[order], t[order], eid[order]
        self._n = b
        self._next_eid = max(self._next_eid, int(eid.max()) + 1)
        levels = list(self._state.levels)  # a new list: readers keep the old tuple
        levels.append(self._build(a, b))
        while len(levels) >= 2 and (levels[-2].stop - levels[-2].start) <= 2 * (levels[-1].stop - levels[-1].start):
            hi = levels.pop()
            lo = levels.pop()
            levels.append(self._build(lo.start, hi.stop))
        self._publish(levels)
        return self

    def _reserve(self, n):
        cap = self._src.numel()
        if n <= cap:
            return
        new = max(n, 2 * cap)
        for name in ("_src", "_dst", "_t", "_eid"):  # new buffers: readers keep the old ones
            old = getattr(self, name)
            buf = torch.empty(new, dtype=old.dtype, device=old.device)
            buf[: self._n] = old[: self._n]
            setattr(self, name, buf)

    def kernel_view(self) -> TemporalView:
        """The one way kernels read the graph: its T-CSR levels as a table of data pointers (per level: node
        offsets [V+1] int64, neighbours int32, times, edge ids int64; the layout of ``TLevel`` in
        ``csrc/temporal/temporal_neighbors.h``) with its sizes, as a :class:`TemporalView` whose ``core_args()``
        are the compiled kernel's keyword arguments. Built once per state of the graph (``append`` renews it)."""
        levels = self._state.levels
        view = self._view
        if view is None or view.owner is not levels:  # built for this state only (a concurrent append renews it)
            rows = [[L.ptr.data_ptr(), L.nbr.data_ptr(), L.time.data_ptr(), L.eid.data_ptr()] for L in levels]
            table = torch.tensor(rows, dtype=torch.int64).reshape(-1, 4).to(self.device)
            view = TemporalView(table, len(levels), self.num_nodes, self.time_dtype, self._next_eid, levels)
            c = core()
            if c is not None and levels and self.device.type == "cpu":  # owned by the view: lives as long
                view = view._replace(streaming=c.TemporalLevels(**view.core_args(), num_nodes=self.num_nodes))
            self._view = view
        return view

    # ------------------------------------------------------------------ queries
    def neighbors(self, nodes: torch.Tensor, times: torch.Tensor, k: int, *, strategy: str = "recent",
                  inclusive: bool = False, window: float | None = None, generator: torch.Generator | None = None,
                  backend: str | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """The k most recent (or k uniformly drawn) events of each node strictly before its query time.

        Args:
            nodes: [B] int node ids. times: [B] query times (any order; same kind as the graph's times).
            k: >= 1. strategy: ``"recent"`` (most recent first) or ``"uniform"`` (k distinct events drawn
                uniformly without replacement among those before t; returned most recent first).
            inclusive: use ``<= t`` instead of ``< t``. window: only events in (t - window, t).
            generator: ``torch.Generator`` for ``"uniform"`` (CPU and CUDA draw the same events for a seed).
            backend: None, ``"reference"``, ``"cpu"`` or ``"cuda"``.

        Returns:
            ``(nbrs [B,k] int64, edge_ids [B,k] int64, nbr_times [B,k], valid [B,k] bool)``; padding: -1, -1,
            the time dtype's minimum (-inf for float times), False.
        """
        from hardneg.ops.temporal import temporal_neighbors

        return temporal_neighbors(self, nodes, times, k, strategy=strategy, inclusive=inclusive, window=window,
                                  generator=generator, backend=backend)

    def assemble(self, nodes: torch.Tensor, times: torch.Tensor, k: int, *, event_times: torch.Tensor | None = None,
                 features: torch.Tensor | None = None, edge_ids: bool = True, strategy: str = "recent",
                 generator: torch.Generator | None = None, backend: str | None = None):
        """A temporal GNN layer's inputs in one call: ``(nbrs, edge_ids, dt, valid, feats)`` with ``dt`` the
        float32 delta from each query's event time (default: its query time) to each neighbour's time and
        ``feats`` the neighbour events' rows of ``features`` [E, F] (see :func:`hardneg.ops.temporal_assemble`)."""
        from hardneg.ops.temporal import temporal_assemble

        return temporal_assemble(self, nodes, times, k, event_times=event_times, features=features,
                                 edge_ids=edge_ids, strategy=strategy, generator=generator, backend=backend)

    def seen_destinations(self, src: torch.Tensor, before: torch.Tensor, *,
                          inclusive: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """CSR ``(indptr [B+1], indices)`` of the distinct destinations each ``src`` interacted with (as the
        source of an event) strictly before ``before`` — sorted per row, ready for ``topk_mine(exclude=...)``
        and historical-negative sampling. Vectorised torch on the graph's device."""
        op = "TemporalGraph.seen_destinations"
        s, tq = check_queries(op, self, src, before, what="src")
        uniq, U, comp, dst_by_src = self._source_index(op)
        V.key_space(op, "(row, destination) keys", s.numel() + 1, self.num_nodes)
        q_rank = torch.searchsorted(uniq, tq, right=bool(inclusive))  # unique times < tq (<= tq if inclusive)
        lo = torch.searchsorted(comp, s * U)
        cut = torch.searchsorted(comp, s * U + q_rank)
        cnt = (cut - lo).clamp_min(0)
        rows = torch.repeat_interleave(torch.arange(s.numel(), device=s.device), cnt)
        start = torch.repeat_interleave(lo, cnt)
        offs = torch.arange(int(cnt.sum()), device=s.device) - torch.repeat_interleave(torch.cumsum(cnt, 0) - cnt, cnt)
        dsts = dst_by_src[start + offs]
        key = torch.unique(rows * self.num_nodes + dsts)
        r = torch.div(key, self.num_nodes, rounding_mode="floor")
        indptr = torch.zeros(s.numel() + 1, dtype=torch.int64, device=s.device)
        indptr[1:] = torch.cumsum(torch.bincount(r, minlength=s.numel()), 0)
        return indptr, key - r * self.num_nodes

    def sample_historical(self, src: torch.Tensor, times: torch.Tensor, n: int,
                          generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Historical negatives (TGB/DyGLib): for each source, n destinations drawn uniformly with replacement
        from those it interacted with before its time. Returns ``(dst [B, n] int64, valid [B, n] bool)``;
        rows with no history are all invalid (-1)."""
        op = "TemporalGraph.sample_historical"
        n = V.integer(op, "n", n, minimum=1)
        V.generator(op, generator)
        indptr, idx = self.seen_destinations(src, times)
        cnt = indptr[1:] - indptr[:-1]
        B = cnt.numel()
        u = uniform((B, n), generator, self.device)
        pick = (u * cnt[:, None]).long().clamp_max((cnt - 1).clamp_min(0)[:, None])
        valid = (cnt > 0)[:, None].expand(B, n)
        out = torch.where(valid, idx[(indptr[:-1, None] + pick).clamp_max(max(idx.numel() - 1, 0))] if idx.numel()
                          else torch.zeros_like(pick), torch.full_like(pick, -1))
        return out, valid.clone()

    def _source_index(self, op):
        """``(unique times, U, keys, destinations)`` of the events sorted by the exact int64 composite key (source,
        rank of time): a source's events are one run, in time order. Built once per published state (an append
        publishes a new one), so a training loop's calls search it instead of sorting every event each time."""
        st = self._state
        cached = getattr(self, "_by_src", None)
        if cached is not None and cached[0] is st:
            return cached[1:]
        ev = st.src[: st.n], st.dst[: st.n], st.t[: st.n], st.eid[: st.n]
        key_src, key_t, order = self._by_source(ev)
        uniq = torch.unique(key_t)
        U = uniq.numel() + 1
        V.key_space(op, "(source, time rank) keys", self.num_nodes, U)
        out = (uniq, U, key_src * U + torch.searchsorted(uniq, key_t), ev[1][order])
        self._by_src = (st, *out)
        return out

    @staticmethod
    def _by_source(events):
        s, _, t, _ = events
        n = s.numel()
        order = torch.argsort(s, stable=True)  # stable by source
        return s[order], t[order], order



def check_queries(op: str, graph: TemporalGraph, nodes, times, *,
                  what: str = "nodes") -> tuple[torch.Tensor, torch.Tensor]:
    """(nodes int64 [B], times [B] in the graph's time dtype), both contiguous on the graph's device; raises as
    :func:`hardneg.ops.temporal_neighbors` documents."""
    nodes = V.tensor(op, what, nodes, ndim=1, dtypes=V.INDEX_DTYPES, kind="integer tensor")
    times = V.tensor(op, "times", times, ndim=1)
    if nodes.numel() != times.numel():
        raise ValueError(f"{op}: '{what}' and 'times' must have the same length "
                         f"(got {nodes.numel()} and {times.numel()})")
    if nodes.device != graph.device or times.device != graph.device:
        raise ValueError(f"{op}: queries must be on {graph.device} (got {nodes.device} and {times.device})")
    nodes = V.ids(op, what, nodes, graph.num_nodes, what="node ids")
    if times.is_floating_point():
        if graph.time_dtype == torch.int64:
            raise TypeError(f"{op}: the graph has int64 times; query 'times' must be integers (got {times.dtype})")
        if times.numel() and bool(torch.isnan(times).any()):
            raise ValueError(f"{op}: 'times' must not contain NaN")
    elif times.dtype not in V.INDEX_DTYPES + (torch.int16, torch.int8, torch.uint8):
        raise TypeError(f"{op}: 'times' must be numeric (got {V.describe(times)})")
    return nodes.contiguous(), times.to(graph.time_dtype).contiguous()


def _lex_order(major: torch.Tensor, minor: torch.Tensor, n_major: int, n_minor: int) -> torch.Tensor:
    """argsort by (major, minor): one sort of the int64 key major * n_minor + minor when it cannot overflow,
    else two stable sorts."""
    if n_major * n_minor <= V.INT64_MAX:
        return torch.argsort(major * n_minor + minor)
    o = torch.argsort(minor, stable=True)
    return o[torch.argsort(major[o], stable=True)]


def _time_order(t, eid):
    o = torch.argsort(eid, stable=True)
    return o[torch.argsort(t[o], stable=True)]


