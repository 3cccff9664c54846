"""Temporal task data: continuous-time interaction graphs, DyGLib's chronological split (transductive and
inductive) and its evaluation negatives (random / historical / inductive), plus TGB-style fixed negatives.

Shapes: ``M`` events, ``N`` nodes, ``B`` events of one evaluation part.

Protocol (DyGLib, Yu et al. 2023, ``utils/DataLoader.py::get_link_prediction_data`` and
``utils/utils.py::NegativeEdgeSampler``), reproduced in torch with a seeded ``torch.Generator`` (the procedure
is DyGLib's; the random draws are not bit-identical to its NumPy/``random`` streams):

* ``val_time, test_time = quantile(t, [0.70, 0.85])`` (linear interpolation on float64 times); train =
  ``t <= val_time``, valid = ``val_time < t <= test_time``, test = ``t > test_time``.
* inductive (the default, as DyGLib trains): 10% of all nodes (``int(0.1 * N)``) are drawn among the nodes of
  events after ``val_time``; every event touching them leaves the training set. ``new_nodes`` = all nodes minus
  those of the (reduced) training set; ``new_node_valid`` / ``new_node_test`` = valid / test events with an
  endpoint in ``new_nodes``. ``inductive=False`` keeps every event up to ``val_time`` in training.
* evaluation negatives, one per positive event, as DyGLib's evaluation: ``random`` keeps the source and draws
  the destination uniformly among the sampler's distinct destinations; ``historical`` draws whole edges
  (source and destination) among the distinct edges seen up to the batch's first time and not in the batch's
  time window; ``inductive`` the same, also excluding edges seen up to the last observed time (the last
  training event for valid parts, the last valid event for test parts); when too few exist, the rest are
  random pairs (sampler sources x destinations, not a pair of the batch). The sampler sees all events for
  ``valid``/``test`` and only the part's own events for ``new_node_*``, and works in batches of 200 positives
  (DyGLib's default), so the negatives depend on ``batch_size``. Default seeds as DyGLib's evaluation
  (``evaluate_link_prediction.py``): valid 0, new_node_valid 1, test 2, new_node_test 3.
* TGB-style fixed negatives (:meth:`TemporalDataset.mrr_negatives`, TGB's ``hist_rnd``): ``num`` destinations
  per positive, up to half from the destinations the source had in training, the rest uniform over the
  destination nodes minus those and minus the positives sharing the (source, time); distinct per row.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch

from hardneg import _validate as V
from hardneg.data import _common as C
from hardneg._paths import default_root
from hardneg.data.temporal import TemporalEvents, load_temporal_csv, time_order
from hardneg.known import KnownSet

__all__ = ["SHIPPED", "DOWNLOADABLE", "PARTS", "STRATEGIES", "EVAL_SEEDS", "TemporalDataset", "TemporalSplit",
           "find", "available", "load_dataset"]

SHIPPED = {
    "wikipedia": "JODIE Wikipedia edits: 8,227 users -> 1,000 pages, 157,474 events over 31 days (no edge features)",
    "uci": "UCI online messages (CollegeMsg): 1,899 users, 59,835 messages over 194 days",
}
#: names PyG's ``JODIEDataset`` downloads (``download=True``)
DOWNLOADABLE = ("wikipedia", "reddit", "mooc", "lastfm")
# UCI: ml_uci.csv first, the exact file DyGLib reads (processed_data/uci/ml_uci.csv, same rows and order as
# uci.csv, ids +1); uci.csv (the raw src,dest,ts,weight list) gives the same dataset after relabelling.
PLACES = {"wikipedia": ("temporal/wikipedia/wikipedia.csv",),
          "uci": ("temporal/uci/ml_uci.csv", "temporal/uci/uci.csv")}
PLACES.update({n: PLACES.get(n, ()) + (f"temporal/{n}/raw/{n}.csv",) for n in DOWNLOADABLE})
BIPARTITE = {"wikipedia": True, "reddit": True, "mooc": True, "lastfm": True, "uci": False}
PARTS = ("train", "valid", "test", "new_node_valid", "new_node_test")
STRATEGIES = ("random", "historical", "inductive")
EVAL_SEEDS = {"valid": 0, "new_node_valid": 1, "test": 2, "new_node_test": 3}


@dataclass
class TemporalSplit:
    """Event indices (ascending, into the dataset's arrays) of each part of a DyGLib split."""
    train: torch.Tensor           # [M_train] int64
    valid: torch.Tensor
    test: torch.Tensor
    new_node_valid: torch.Tensor  # valid events with an endpoint in new_nodes
    new_node_test: torch.Tensor
    new_test_nodes: torch.Tensor  # the nodes drawn and held out of training (empty when not inductive)
    new_nodes: torch.Tensor       # all nodes of the events minus the nodes of the training events
    val_time: float
    test_time: float
    inductive: bool
    seed: int

    def part(self, name: str) -> torch.Tensor:
        return getattr(self, V.choice("TemporalSplit.part", "name", name, PARTS))

    def describe(self) -> dict:
        return {"protocol": "DyGLib chronological 70/15/15", "inductive": self.inductive, "seed": self.seed,
                "val_time": self.val_time, "test_time": self.test_time,
                **{p: int(self.part(p).numel()) for p in PARTS},
                "new_test_nodes": int(self.new_test_nodes.numel()), "new_nodes": int(self.new_nodes.numel())}


@dataclass
class TemporalDataset:
    """Events sorted by time (stable), node ids 0..N-1. Bipartite (JODIE user -> item) sets number the
    sources first and the destinations after them, so ``dst_nodes`` is the contiguous range dst_min..dst_max.

    ``t`` is int64 (exact) unless the source had non-integral times (then float64); ``label`` [M] float32 is
    JODIE's state label (1.0 for every UCI event); ``edge_features`` [M, F] float32 or None; ``node_ids`` [N]
    the id each node had in the source."""
    name: str
    src: torch.Tensor
    dst: torch.Tensor
    t: torch.Tensor
    label: torch.Tensor
    edge_features: torch.Tensor | None
    num_nodes: int
    bipartite: bool
    dst_min: int
    dst_max: int
    node_ids: torch.Tensor
    source: str = ""

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_events(cls, ev: TemporalEvents, *, name: str | None = None, source: str = "") -> "TemporalDataset":
        """Relabel a :class:`~hardneg.data.temporal.TemporalEvents` to contiguous 0-based ids (sources first for
        bipartite sets)."""
        if ev.bipartite:
            src, raw_src = C.compact(ev.src)
            dst, raw_dst = C.compact(ev.dst)
            dst, raw = dst + raw_src.numel(), torch.cat([raw_src, raw_dst])
        else:
            src, dst, raw = C.compact(ev.src, ev.dst)
        return cls._make(name or ev.name, src, dst, ev.t, ev.label, ev.features, raw.numel(), bool(ev.bipartite),
                         raw, source)

    @classmethod
    def from_tensors(cls, src, dst, t, *, num_nodes: int | None = None, label=None, edge_features=None,
                     bipartite: bool | None = None, sort: bool = False, name: str = "custom") -> "TemporalDataset":
        """Events given as tensors, ids kept as given (0..num_nodes-1).

        Raises:
            TypeError: non-tensor or non-integer ids / times of another dtype.
            ValueError: lengths differ, ids out of range, times going backwards without ``sort=True``.
        """
        op = "TemporalDataset.from_tensors"
        n = None if num_nodes is None else V.integer(op, "num_nodes", num_nodes, minimum=1)
        src, dst = C.ids(op, "src", src, n), C.ids(op, "dst", dst, n)
        t = V.tensor(op, "t", t, ndim=1, dtypes=(torch.int64, torch.int32, torch.float64, torch.float32))
        if not (src.numel() == dst.numel() == t.numel()) or src.numel() == 0:
            raise ValueError(f"{op}: 'src', 'dst' and 't' must have the same length > 0 (got {src.numel()}, "
                             f"{dst.numel()}, {t.numel()})")
        t = t.to(torch.int64 if not t.is_floating_point() else torch.float64)
        label = torch.zeros(t.numel()) if label is None else torch.as_tensor(label, dtype=torch.float32)
        if edge_features is not None:
            edge_features = V.floating(op, "edge_features", edge_features, 2, "[M, F]").float()
            if edge_features.shape[0] != t.numel():
                raise ValueError(f"{op}: 'edge_features' must have one row per event (got {edge_features.shape[0]})")
        order = time_order(op, t, sort, lambda i: f"event {i}")
        if order is not None:
            src, dst, t, label = src[order], dst[order], t[order], label[order]
            edge_features = edge_features[order] if edge_features is not None else None
        if bipartite is None:
            bipartite = not bool(torch.isin(dst, src).any())
        n = n or int(max(int(src.max()), int(dst.max()))) + 1
        return cls._make(name, src, dst, t, label, edge_features, n, bool(bipartite), torch.arange(n), "")

    @classmethod
    def _make(cls, name, src, dst, t, label, feats, n, bipartite, raw, source):
        lo, hi = (int(dst.min()), int(dst.max())) if bipartite else (0, n - 1)
        return cls(name, src, dst, t, label, feats, n, bipartite, lo, hi, raw, source)

    # ------------------------------------------------------------------ views
    @property
    def num_events(self) -> int:
        return self.src.numel()

    @property
    def dst_nodes(self) -> torch.Tensor:
        """The ids negatives are drawn from: dst_min..dst_max (the item side when bipartite, else all nodes)."""
        return torch.arange(self.dst_min, self.dst_max + 1)

    def graph(self, part: torch.Tensor | None = None, **kw):
        """A :class:`hardneg.TemporalGraph` of all events, or of the events ``part`` (indices)."""
        from hardneg.temporal import TemporalGraph

        idx = slice(None) if part is None else part
        eid = None if part is None else part
        return TemporalGraph(self.src[idx], self.dst[idx], self.t[idx], num_nodes=self.num_nodes, edge_ids=eid, **kw)

    def describe(self, split: TemporalSplit | None = None) -> dict:
        out = {"name": self.name, "task": "temporal", "nodes": self.num_nodes, "events": self.num_events,
               "bipartite": self.bipartite, "destination_nodes": self.dst_max - self.dst_min + 1,
               "time_span": [self.t[0].item(), self.t[-1].item()],
               "edge_features": 0 if self.edge_features is None else int(self.edge_features.shape[1]),
               "source": self.source}
        if split is not None:
            out["split"] = split.describe()
        return out

    # ------------------------------------------------------------------ split
    def split(self, *, inductive: bool = True, seed: int = 2020, val_ratio: float = 0.15, test_ratio: float = 0.15,
              new_node_ratio: float = 0.1) -> TemporalSplit:
        """DyGLib's chronological split (see the module docstring); ``seed`` draws the held-out new nodes
        (DyGLib seeds ``random`` with 2020 there).

        Raises:
            ValueError: ratios outside (0, 1) or summing to >= 1; a valid or test part that comes out empty
                (times not spread enough); an inductive split that leaves no new nodes (too few nodes for
                ``int(new_node_ratio * N)`` >= 1, or fewer nodes after val_time than that).
        """
        op = "TemporalDataset.split"
        gen = C.seed_generator(op, seed)
        if not isinstance(inductive, bool):
            raise TypeError(f"{op}: 'inductive' must be a bool (got {V.describe(inductive)})")
        for nm, r in (("val_ratio", val_ratio), ("test_ratio", test_ratio), ("new_node_ratio", new_node_ratio)):
            if not 0 < V.positive_float(op, nm, r) < 1:
                raise ValueError(f"{op}: '{nm}' must be in (0, 1) (got {r})")
        if val_ratio + test_ratio >= 1:
            raise ValueError(f"{op}: 'val_ratio' + 'test_ratio' must be < 1 (got {val_ratio + test_ratio})")
        tf = self.t.double()
        val_time, test_time = (float(q) for q in np.quantile(tf.numpy(), [1 - val_ratio - test_ratio, 1 - test_ratio]))
        valid_m, test_m = (tf > val_time) & (tf <= test_time), tf > test_time
        if not bool(valid_m.any()) or not bool(test_m.any()):
            empty = "valid" if not bool(valid_m.any()) else "test"
            raise ValueError(f"{op}: the chronological split leaves the {empty} part empty (val_time={val_time}, "
                             f"test_time={test_time}): event times are not spread")
        nodes = torch.unique(torch.cat([self.src, self.dst]))
        new_test = torch.zeros(0, dtype=torch.int64)
        train_m = tf <= val_time
        if inductive:
            late = torch.unique(torch.cat([self.src[tf > val_time], self.dst[tf > val_time]]))
            k = int(new_node_ratio * nodes.numel())
            if k == 0:
                raise ValueError(f"{op}: the inductive split leaves no new nodes: int({new_node_ratio} * "
                                 f"{nodes.numel()} nodes) = 0 to hold out; use more nodes or inductive=False")
            if k > late.numel():
                raise ValueError(f"{op}: the inductive split cannot hold out {k} new nodes: only {late.numel()} "
                                 f"nodes occur after val_time; use inductive=False")
            new_test = torch.sort(late[torch.randperm(late.numel(), generator=gen)[:k]]).values
            train_m &= ~(torch.isin(self.src, new_test) | torch.isin(self.dst, new_test))
        train_nodes = torch.unique(torch.cat([self.src[train_m], self.dst[train_m]]))
        new_nodes = nodes[~torch.isin(nodes, train_nodes)]
        touches = torch.isin(self.src, new_nodes) | torch.isin(self.dst, new_nodes)
        idx = lambda m: torch.nonzero(m).flatten()  # noqa: E731
        return TemporalSplit(idx(train_m), idx(valid_m), idx(test_m), idx(valid_m & touches), idx(test_m & touches),
                             new_test, new_nodes, val_time, test_time, inductive, int(seed))

    # ------------------------------------------------------------------ evaluation negatives
    def eval_negatives(self, split: TemporalSplit, part: str, strategy: str = "random", *, batch_size: int = 200,
                       seed: int | None = None):
        """One negative edge per positive event of ``part``, with DyGLib's evaluation semantics (module
        docstring). Returns ``(neg_src [B], neg_dst [B])`` int64; for ``random`` neg_src is the positive source.

        Raises:
            ValueError: unknown part (``train`` has no evaluation negatives) or strategy, batch_size < 1.
        """
        op = "TemporalDataset.eval_negatives"
        V.choice(op, "part", part, tuple(EVAL_SEEDS))
        V.choice(op, "strategy", strategy, STRATEGIES)
        batch_size = V.integer(op, "batch_size", batch_size, minimum=1)
        gen = C.seed_generator(op, EVAL_SEEDS[part] if seed is None else seed)
        pos = split.part(part)
        if pos.numel() == 0:
            return torch.zeros(0, dtype=torch.int64), torch.zeros(0, dtype=torch.int64)
        pool = pos if part.startswith("new_node") else torch.arange(self.num_events)  # the sampler's events
        usrc, udst = torch.unique(self.src[pool]), torch.unique(self.dst[pool])
        if strategy == "random":
            return self.src[pos].clone(), udst[torch.randint(0, udst.numel(), (pos.numel(),), generator=gen)]
        N = self.num_nodes
        keys, tt = self.src[pool] * N + self.dst[pool], self.t[pool]
        first = C.occurrence(keys, last=False)  # events sorted by time: the first occurrence is the earliest
        seen_keys, seen_t = keys[first], tt[first]
        observed = split.train if part.endswith("valid") else split.valid
        n_obs = 0
        if strategy == "inductive" and observed.numel():
            n_obs = int(torch.searchsorted(seen_t, self.t[observed[-1]], right=True))
        out = torch.empty(pos.numel(), dtype=torch.int64)
        for lo in range(0, pos.numel(), batch_size):
            b = pos[lo:lo + batch_size]
            start, end = self.t[b[0]], self.t[b[-1]]
            n_hist = int(torch.searchsorted(seen_t, start, right=True))
            window = keys[int(torch.searchsorted(tt, start)):int(torch.searchsorted(tt, end, right=True))]
            cand = seen_keys[n_obs:n_hist]
            cand = cand[~torch.isin(cand, window)]
            if b.numel() <= cand.numel():
                out[lo:lo + b.numel()] = cand[torch.randperm(cand.numel(), generator=gen)[:b.numel()]]
            else:
                rnd = _random_pairs(usrc, udst, N, b.numel() - cand.numel(), self.src[b] * N + self.dst[b], gen)
                both = torch.cat([rnd, cand])
                out[lo:lo + b.numel()] = both[torch.randperm(both.numel(), generator=gen)]
        return out // N, out % N

    def mrr_negatives(self, split: TemporalSplit, part: str = "test", *, num: int = 100, hist_ratio: float = 0.5,
                      seed: int | None = None) -> torch.Tensor:
        """[B, num] negative destinations per positive event of ``part`` (TGB ``hist_rnd``, module docstring):
        the first up-to ``int(num * hist_ratio)`` columns are historical (destinations the source had in the
        split's training events), the rest uniform random; distinct per row, never a destination of a positive
        with the same (source, time). Default seeds as :meth:`eval_negatives`. A row with fewer admissible
        destinations than needed repeats ids (warned).

        Raises:
            ValueError: unknown part, num < 1, hist_ratio outside [0, 1].
        """
        op = "TemporalDataset.mrr_negatives"
        V.choice(op, "part", part, tuple(EVAL_SEEDS))
        num = V.integer(op, "num", num, minimum=1)
        if not 0 <= float(hist_ratio) <= 1:
            raise ValueError(f"{op}: 'hist_ratio' must be in [0, 1] (got {hist_ratio})")
        gen = C.seed_generator(op, EVAL_SEEDS[part] if seed is None else seed)
        pos = split.part(part)
        B, N = pos.numel(), self.num_nodes
        if B == 0:
            return torch.zeros(0, num, dtype=torch.int64)
        s, d = self.src[pos], self.dst[pos]
        grp = torch.unique(torch.stack([s, torch.searchsorted(torch.unique(self.t[pos]), self.t[pos])], 1), dim=0,
                           return_inverse=True)[1]
        G = int(grp.max()) + 1
        pos_keys = torch.unique(grp * N + d)
        tr = torch.unique(self.src[split.train] * N + self.dst[split.train])  # training edges, grouped by source
        t_ptr, t_dst = C.csr(tr // N, tr % N, N)
        # historical: the training destinations of each row's source, minus the positives at its (source, time)
        deg = t_ptr[s + 1] - t_ptr[s]
        row = torch.repeat_interleave(torch.arange(B), deg)
        at = torch.arange(row.numel()) - torch.repeat_interleave(torch.cumsum(deg, 0) - deg, deg)
        cand = t_dst[t_ptr[s][row] + at]
        keep = ~torch.isin(grp[row] * N + cand, pos_keys)
        h_ptr = torch.zeros(B + 1, dtype=torch.int64)
        h_ptr[1:] = torch.cumsum(torch.bincount(row[keep], minlength=B), 0)
        hist, h = C.ragged_sample(h_ptr, cand[keep], int(num * hist_ratio), gen)
        # random: the destination nodes minus the source's training destinations and the (source, time) positives
        g_of = torch.zeros(G, dtype=torch.int64)
        g_of[grp] = s
        g_deg = t_ptr[g_of + 1] - t_ptr[g_of]
        g_row = torch.repeat_interleave(torch.arange(G), g_deg)
        g_at = torch.arange(g_row.numel()) - torch.repeat_interleave(torch.cumsum(g_deg, 0) - g_deg, g_deg)
        excl = torch.cat([torch.stack([g_row, t_dst[t_ptr[g_of][g_row] + g_at]], 1),
                          torch.stack([pos_keys // N, pos_keys % N], 1)])
        known = KnownSet.from_edges(excl, max(G, N))
        rnd = C.sample_distinct(op, grp, num, self.dst_nodes, known, gen)
        j = torch.arange(num)[None, :]
        from_rnd = rnd.gather(1, (j - h[:, None]).clamp(min=0))
        hist = torch.cat([hist, torch.full((B, num - hist.shape[1]), -1, dtype=torch.int64)], 1)
        return torch.where(j < h[:, None], hist, from_rnd)


def _random_pairs(usrc, udst, N, size, batch_keys, gen) -> torch.Tensor:
    """``size`` keys src*N+dst over usrc x udst, not in ``batch_keys``: distinct when enough exist, else drawn
    with replacement (DyGLib's ``random_sample_with_collision_check``)."""
    population = usrc.numel() * udst.numel()
    if population <= 1 << 16:
        allk = (usrc[:, None] * N + udst[None, :]).flatten()
        allk = allk[~torch.isin(allk, batch_keys)]
        if allk.numel() < size:
            return allk[torch.randint(0, allk.numel(), (size,), generator=gen)]
        return allk[torch.randperm(allk.numel(), generator=gen)[:size]]
    got = torch.zeros(0, dtype=torch.int64)
    while got.numel() < size:
        m = 2 * (size - got.numel()) + 16
        k = usrc[torch.randint(0, usrc.numel(), (m,), generator=gen)] * N + \
            udst[torch.randint(0, udst.numel(), (m,), generator=gen)]
        got = torch.cat([got, k[~torch.isin(k, batch_keys)]])
        got = got[C.occurrence(got, last=False)]
    return got[:size]


# ---------------------------------------------------------------------------------------------- finding
def find(name_or_path) -> tuple[str, str] | None:
    """``(path, name)`` where a shipped name (or a path) resolves locally, else None."""
    return C.locate(name_or_path, PLACES)


def available() -> list[dict]:
    return C.available("temporal", SHIPPED, find)


def load_dataset(name_or_path, *, download: bool = False, bipartite: bool | None = None,
                 sort: bool = False) -> TemporalDataset:
    """A shipped name (``wikipedia``, ``uci``), a JODIE name PyG can download (``download=True``: ``reddit``,
    ``mooc``, ``lastfm``, ``wikipedia`` with its 172 edge features), or a JODIE/TGN CSV path
    (``u,i,ts,label[,features...]`` or ``ml_*.csv``). ``bipartite`` and ``sort`` as in
    :func:`hardneg.data.load_temporal_csv` (named sets know whether they are bipartite).

    Raises:
        ValueError: not found (names the shipped sets), or what :func:`hardneg.data.load_temporal_csv` raises.
    """
    hit = find(name_or_path)
    name = C.normalize(os.fspath(name_or_path))
    if hit is None and download and name in DOWNLOADABLE:
        from torch_geometric.datasets import JODIEDataset

        JODIEDataset(os.path.join(default_root(), "temporal"), name=name)
        hit = find(name)
    if hit is None:
        hint = f"; download=True fetches {list(DOWNLOADABLE)} through PyG's JODIEDataset" \
            if name in DOWNLOADABLE else ""
        raise C.not_found("temporal", name_or_path, SHIPPED, "a JODIE/TGN CSV file (u,i,ts,label[,features])", hint)
    path, name = hit
    if bipartite is None:
        bipartite = BIPARTITE.get(name)
    ev = load_temporal_csv(path, name=name, bipartite=bipartite, sort=sort)
    return TemporalDataset.from_events(ev, name=name, source=os.path.abspath(path))
