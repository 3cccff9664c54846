"""Negative destinations for temporal events (TGN / TGAT training): random, historical, inductive, and ENS.

ENS (Gupta & Bedathur, "Robust Training of Temporal GNNs using Nearest Neighbours based Hard Negatives",
arXiv 2402.09239): for each source at its event time, the K destinations whose embeddings are nearest (dot
product) to the source's fresh embedding form a pool; hard negatives are drawn uniformly from that pool (not
always the nearest one), and mixed with random ones. The destination embeddings are a cached table refreshed
every ``refresh_every`` (R) calls, because computing every destination's embedding each batch costs more than
the batch itself.

Shapes: ``B`` events, ``n`` negatives per event, ``N`` destination candidates (the range ``low..high``),
``d`` embedding size, ``K`` the hard pool.

Positives are ``(src, dst)`` pairs [B, 2]. Destinations are drawn from ``low..high`` (inclusive; default
``0..num_entities-1``): bipartite graphs pass their destination side. Every sampler here accepts
``sample(..., times=t)`` (event times [B]); only ``historical`` uses them. The scorer protocol is the one of
:mod:`hardneg.samplers.scorers`, read by position: ``query_vectors(src, "tail")`` is one row per event (the
event's fresh source embedding), ``candidate_vectors("tail")`` the [N, d] table whose row r is node
``low + r``.

>>> import torch, hardneg
>>> from hardneg import samplers
>>> s = samplers.create("ens", num_negatives=4, num_entities=50, pool_size=8, hard_fraction=0.5)
>>> neg = s.sample(torch.tensor([[0, 7], [3, 9]]), scorer=samplers.EmbeddingScorer(torch.randn(50, 16)),
...                generator=torch.Generator().manual_seed(0))
>>> neg.ids.shape
torch.Size([2, 4])
"""
from __future__ import annotations

import dataclasses
import math

import torch

from .. import _validate as V
from ..ops import corrupt, sample_by_score
from ..ops.mining import mine_cached_table
from ..reference.mining import exclusion_mask
from .._random import permutation, uniform
from .base import (Negatives, Sampler, distinct_rows, exclusion_with_self, register, stable_topk,
                   uniform_pool_draw)
from .basic import from_corrupt
from .hard import SCHEDULES, scheduled

#: what ENS's pool is nearest by: the embeddings' dot product (the paper), or the model's own score
RANK_BY = ("embedding", "score")


class TemporalSampler(Sampler):
    """Base class of the event samplers: destinations in ``low..high`` for (src, dst) events.

    Args (beyond :class:`hardneg.samplers.Sampler`'s):
        low, high: the destination id range, inclusive (default ``0..num_entities-1``).
    """

    def __init__(self, *, low: int | None = None, high: int | None = None, **kw):
        if kw.get("side") is None:  # the default: events replace their destination
            kw["side"] = "tail"
        super().__init__(**kw)
        op = self._op
        if self.side != "tail":
            raise ValueError(f"{op}: temporal samplers replace the destination only (side='tail'; got {self.side!r})")
        self.low = 0 if low is None else V.integer(op, "low", low, minimum=0)
        if high is None and self.num_entities is not None:
            high = self.num_entities - 1
        self.high = None if high is None else V.integer(op, "high", high, minimum=self.low)
        if self.high is not None and self.num_entities is not None and self.high >= self.num_entities:
            raise ValueError(f"{op}: 'high' ({self.high}) must be < num_entities ({self.num_entities})")
        if self.known is not None and (self.low != 0 or self.high != self.known.num_destinations - 1):
            raise ValueError(f"{op}: filtering by 'known' needs the full id range 0..{self.known.num_destinations - 1} "
                             f"(got low={self.low}, high={self.high})")
        self._times = None

    # ------------------------------------------------------------------ public
    def sample(self, positives, *, scorer=None, generator=None, times=None, seed=None) -> Negatives:
        """Negatives for events ``positives`` [B, 2] (src, dst) at ``times`` [B] (optional); randomness from
        ``generator`` or an explicit ``seed`` (as :meth:`hardneg.samplers.Sampler.sample`)."""
        generator = self._randomness(generator, seed)
        P, times = self._check_call(positives, scorer, times)
        V.generator(self._op, generator)
        if self.requires_scorer and self._needs_scorer():
            self._check_scorer(scorer, P)
        return self._run(P, scorer, generator, times, self._sample)

    def _run(self, P, scorer, generator, times, fn):
        self._times = times
        try:
            with torch.no_grad():
                out = fn(P, scorer, generator)
        finally:
            self._times = None
        self.step += 1
        return out

    def _check_call(self, positives, scorer, times):
        """The checked events [B, 2] and times (None or [B]); sets ``high`` from the scorer when unset."""
        P = self._check_events(positives, scorer)
        return P, self._check_times(P, times)

    def _check_events(self, positives, scorer):
        P = self._check_positives(positives)
        if P.shape[1] != 2:
            raise ValueError(f"{self._op}: temporal samplers take (src, dst) events [B, 2] (got {V.describe(P)})")
        if self.high is None:
            if scorer is None:
                raise ValueError(f"{self._op}: give num_entities or high (the destination range), or a scorer")
            self.high = self.low + scorer.candidate_vectors("tail").shape[0] - 1
        if P.numel() and not torch.compiler.is_compiling():  # compiled: the ops check ids when they run
            lo, hi = torch.stack(torch.aminmax(P[:, 1])).tolist()
            if lo < self.low or hi > self.high:
                raise ValueError(f"{self._op}: destination ids must be in [{self.low}, {self.high}] "
                                 f"(got min {lo}, max {hi})")
        return P

    def _check_times(self, P, times):
        if times is not None:
            times = V.tensor(self._op, "times", times, ndim=1)
            if times.numel() != P.shape[0]:
                raise ValueError(f"{self._op}: 'times' must have one entry per event ({P.shape[0]}; "
                                 f"got {times.numel()})")
        return times

    __call__ = sample

    @property
    def num_candidates(self) -> int:
        return self.high - self.low + 1

    def _needs_scorer(self) -> bool:
        return True

    def _check_scorer(self, scorer, P):
        op = self._op
        if scorer is None:
            raise ValueError(f"{op}: this sampler mines with the model's embeddings and needs a scorer "
                             f"(query_vectors, candidate_vectors, metric)")
        for attr in ("query_vectors", "candidate_vectors"):
            if not hasattr(scorer, attr):
                raise TypeError(f"{op}: 'scorer' must implement query_vectors and candidate_vectors "
                                f"(missing {attr!r} on {type(scorer).__name__})")

    # ------------------------------------------------------------------ helpers
    def _random(self, P, n, generator) -> tuple[torch.Tensor, torch.Tensor]:
        """n uniform destinations per event in low..high, never the event's own destination; filtered by
        ``known`` when given (exactly uniform over the admissible ids, :func:`hardneg.ops.corrupt`)."""
        B, dev = P.shape[0], P.device
        if self.known is not None:
            neg, ok = corrupt(P, n, self.known.num_destinations, side="tail", known=self.known, generator=generator)
            out = from_corrupt(P, neg, ok, "tail")
            return out.ids, out.valid
        N = self.num_candidates
        if N == 1:  # nothing but the destination itself
            return (torch.full((B, n), -1, dtype=torch.int64, device=dev),
                    torch.zeros(B, n, dtype=torch.bool, device=dev))
        u = uniform((B, n), generator, dev)
        r = (u * (N - 1)).long().clamp_max(N - 2) + self.low  # uniform over the N-1 ids other than dst
        r = r + (r >= P[:, 1:2]).long()
        return r, torch.ones(B, n, dtype=torch.bool, device=dev)

    def _from_pool(self, P, ptr, ids, n, generator):
        """n draws per row, uniform with replacement among the CSR row's entries other than the row's own
        destination; rows with nothing left fall back to random (-> ids, valid, fallback rows [B] bool)."""
        B, dev = P.shape[0], P.device
        row = torch.repeat_interleave(torch.arange(B, device=dev), ptr.diff())
        keep = ids != P[row, 1]
        if self.known is not None and (torch.compiler.is_compiling() or keep.any()):
            keep &= ~self.known.contains(torch.stack([P[row, 0], ids], 1))
        row, ids = row[keep], ids[keep]
        cnt = torch.bincount(row, minlength=B)
        start = torch.cumsum(cnt, 0) - cnt
        u = uniform((B, n), generator, dev)
        pick = (u * cnt[:, None]).long().clamp_max((cnt - 1).clamp_min(0)[:, None])
        has = cnt > 0
        padded = torch.cat([ids, ids.new_zeros(1)])  # one spare entry: no branch on whether any id is left
        out = padded[(start[:, None] + pick).clamp_max(ids.shape[0])]
        rnd, rvalid = self._random(P, n, generator)
        return (torch.where(has[:, None], out, rnd), torch.where(has[:, None], torch.ones_like(rvalid), rvalid),
                ~has)


@register("random")
class RandomSampler(TemporalSampler):
    """Uniform random destinations (TGN / TGAT's training negatives): ``n`` per event, drawn uniformly from
    ``low..high`` minus the event's own destination (minus known positives with ``known``)."""

    def _sample(self, P, scorer, generator):
        ids, valid = self._random(P, self.num_negatives, generator)
        return Negatives(ids, valid)


@register("historical")
class HistoricalSampler(TemporalSampler):
    """Historical negatives (Poursafaei et al. 2022; DyGLib, TGB): destinations the source interacted with
    strictly before the event time (``graph``, a :class:`hardneg.TemporalGraph`, and ``times``), other than the
    event's own destination; uniform with replacement. Events whose source has no such history (or calls
    without a graph or times) get random destinations; ``last_fallback`` counts them for the last call.
    Float ``times`` on a graph with int64 times are a TypeError (the graph's lookup checks them)."""

    def __init__(self, *, graph=None, **kw):
        super().__init__(**kw)
        from ..temporal import TemporalGraph

        if graph is not None and not isinstance(graph, TemporalGraph):
            raise TypeError(f"{self._op}: 'graph' must be a hardneg.TemporalGraph or None (got {V.describe(graph)})")
        self.graph = graph
        self.last_fallback = 0

    def _sample(self, P, scorer, generator):
        n, t = self.num_negatives, self._times
        if self.graph is None or t is None or P.shape[0] == 0:
            ids, valid = self._random(P, n, generator)
            self.last_fallback = P.shape[0]
            return Negatives(ids, valid)
        g = self.graph
        ptr, seen = g.seen_destinations(P[:, 0].to(g.device), t.to(g.device))  # it checks the time type
        ids, valid, fb = self._from_pool(P, ptr.to(P.device), seen.to(P.device), n, generator)
        self.last_fallback = int(fb.sum())
        return Negatives(ids, valid)


@register("inductive")
class InductiveSampler(TemporalSampler):
    """Inductive negatives: destinations from ``pool`` (1-D ids: the destinations first seen after the
    training cut, e.g. :meth:`hardneg.tasks.temporal.TemporalTask.inductive_pool`), uniform, other than the
    event's own destination. Without a pool (or with an empty one) the draws are random; ``last_fallback``
    counts such events."""

    def __init__(self, *, pool=None, **kw):
        super().__init__(**kw)
        if pool is not None:
            pool = torch.unique(V.tensor(self._op, "pool", pool, ndim=1, dtypes=V.INDEX_DTYPES,
                                         kind="integer tensor").long())
            if pool.numel() and (int(pool.min()) < self.low or (self.high is not None and int(pool.max()) > self.high)):
                raise ValueError(f"{self._op}: 'pool' ids must be destinations in [{self.low}, {self.high}] "
                                 f"(got min {int(pool.min())}, max {int(pool.max())})")
        self.pool = pool
        self.last_fallback = 0

    def _sample(self, P, scorer, generator):
        B, dev = P.shape[0], P.device
        if self.pool is None or self.pool.numel() == 0:
            self.last_fallback = B
            ids, valid = self._random(P, self.num_negatives, generator)
            return Negatives(ids, valid)
        pool = self.pool.to(dev)
        ptr = torch.arange(B + 1, device=dev) * pool.numel()
        ids, valid, fb = self._from_pool(P, ptr, pool.repeat(B), self.num_negatives, generator)
        self.last_fallback = int(fb.sum())
        return Negatives(ids, valid)


@register("ens")
class ENSSampler(TemporalSampler):
    """ENS hard negatives (arXiv 2402.09239): for each event, the ``pool_size`` (K) destinations whose cached
    embeddings have the largest dot product with the event's fresh source embedding (fused
    :func:`hardneg.ops.topk_mine`, never the event's own destination nor a known positive); hard negatives are
    drawn uniformly from that pool, without replacement (cycled when it has fewer than needed). Ties for the
    pool are broken at random (identical embeddings, e.g. nodes without history early in a stream): a fresh
    random permutation per call is ``topk_mine``'s ``tie_break`` keys.

    Hybrid (the paper's best setting): a fraction ``hard_fraction`` of the n negatives is hard and the rest
    random (:class:`RandomSampler`'s draws). Each row takes ``floor(f·n)`` hard columns plus one more with
    probability ``f·n − floor(f·n)``, so the expected hard share is exactly f for any n (with n = 1, each
    event's negative is hard with probability f). Hard columns come first. ``hard_fraction=1`` is pure ENS.
    ``schedule``: ``"constant"`` (f throughout), ``"linear"`` (``start_fraction`` → ``hard_fraction`` over
    ``warmup_steps`` calls) or ``"step"`` (``start_fraction`` until ``warmup_steps`` calls, then f).

    The candidate table (``scorer.candidate_vectors("tail")``, row r = node ``low + r``) is cached and refreshed
    every ``refresh_every`` (R) calls: R = 1 mines against current embeddings at the cost of embedding all N
    destinations each batch; larger R mines against embeddings up to R − 1 optimiser steps old (and stale
    memories), for 1/R of that cost. ``bench/temporal_train.py --refresh`` measures the trade-off.
    The query (``scorer.query_vectors``) is always the event's freshly computed source embedding.

    Two-phase calls: :meth:`draft` draws everything that needs no model (which columns are hard, the random
    draws), ``sample(..., draft=d)`` mines the rest; together they return exactly what one ``sample`` call
    returns. A training loop can then compute queries only for the events that have a hard column
    (``d.counts > 0``; the rows of the others are never read), as the temporal task does (bench/RESULTS.md,
    "ENS epoch cost").

    Args:
        pool_size: K >= n (default 20; the hard pool).
        hard_fraction: f in [0, 1] (default 0.25: a hybrid, the kind of setting the paper finds best; chosen
            on validation among 0.25 / 0.5 / 1 with TGN on UCI and Wikipedia, where f = 1 collapses: bench/
            RESULTS.md, "ENS's hard fraction, chosen on validation").
        refresh_every: R >= 1 (default 20: an ENS epoch within 1.3x a random one). A fresher table mines better
            negatives where R steps are a large share of the stream: on UCI (R = 20 is 4,000 of 59,835 events),
            TGN with R = 5 against R = 20 gained all-destination MRR +0.0125 and historical AP +0.0149 on every
            seed (3 seeds) at 1.46x a random epoch instead of 1.28x, steps in lockstep (bench/RESULTS.md, "TGN on
            UCI, R 5 against the recipe's R 20"); R = 40 lost the MRR lead. The cost: ``bench/temporal_train.py
            --interleave --ens-options '{refresh_every: R}'``.
        exclude_history: also keep out of the hard pool every destination the event's source interacted with
            strictly before the event (default False: the paper's ENS). On data where sources return to past
            destinations (Wikipedia editors), those are the nearest and often the next positive: false
            negatives. Needs ``graph`` and the event ``times``; the random columns are unchanged.
        exclude_recent: keep out of the hard pool only the partners of the source's ``exclude_recent`` most
            recent events strictly before the event (``graph.neighbors``: on an undirected graph, as the task's
            training graph is, events in either direction; default 0: none). Its recent partners are the
            likeliest next positives, while older ones stay in the pool as hard negatives: what separates a
            current edge from a past one (historical-negative AP). Needs ``graph`` and ``times``; a [B, r] lookup
            per call, so r is meant to be small. With ``exclude_history`` both lists are kept out (on one node
            set, a user who only wrote *to* the source is a recent partner but not a past destination).
        graph: the :class:`hardneg.TemporalGraph` of the training events (for ``exclude_history`` and
            ``exclude_recent``).
        rank_by: what "nearest" means for the pool. ``"embedding"`` (default, the paper's): the dot product of
            the source's embedding with each cached destination embedding (:func:`hardneg.ops.topk_mine`).
            ``"score"``: the model's own logit for (source, destination), for a model whose link decoder is not a
            dot product (TGN's and TGAT's MLP decoder): the pool is then the K destinations the model itself
            ranks highest, the competitors of the true destination in the all-destination ranking. Needs the
            scorer's ``score_table(query [R, d], table [N, d]) -> [R, N]`` (R x N decoder evaluations per
            mining call, chunked), or better its fused ``topk_table(query, table, k, exclude=, tie_break=[,
            events=]) -> ids [R, k]`` (the temporal task's: :func:`hardneg.ops.mlp_topk_mine`, no [R, N] scores and
            no [R, N, d] hidden layer), used when present. Ties go to random candidates as above.
            On UCI it lost to the dot product with both TGN and TGAT, on validation and test (seed 0; bench/
            RESULTS.md, "ENS's pool ranked by the model's own score"): the default stays the paper's. A scorer
            whose scores depend on the event, not only on its query vector (``event_scores = True``: the temporal
            task's with a model's ``pair_history``), gets ``score_table(query, table, events=rows)``, the call's
            event of each query; queries are then pooled once per distinct (query, source, event time). With TGN's
            ``pair_history`` it wins where the dot product loses: historical AP and all-destination MRR above
            random's on UCI and Wikipedia, every seed (3 seeds; bench/RESULTS.md, "TGN with the pair-history term"),
            at 1.27-1.31x (UCI, ``hard_fraction`` 0.1) and 1.20x a random epoch through ``topk_table`` (1.70x and 1.34x with the dense
            ``score_table``; bench/RESULTS.md, "The fused decoder pool").
        refresh_touched: between the full refreshes, the training loop writes its own embeddings of each step's
            nodes (sources, true destinations and negatives) into the cached table (:meth:`update_candidates`;
            default False). No extra embedding pass: the rows carry the training pass's dropout and the memory
            from before the step. On UCI with TGN at R = 20 it gained test historical AP +0.0122 on every seed
            (3 seeds) at +0.01x a random epoch, with MRR level and validation level, so the recipes leave it off
            (bench/RESULTS.md, "The step's own embeddings as table rows").

    Raises:
        TypeError: ``exclude_history`` or ``refresh_touched`` not a bool, ``exclude_recent`` not an int,
            ``graph`` not a TemporalGraph, float ``times`` with an exclusion on a graph with int64 times,
            ``rank_by="score"`` with a scorer without ``score_table``.
        ValueError: K < n, f or start_fraction outside [0, 1], R < 1, ``exclude_recent`` < 0, ``rank_by`` not one
            of ``RANK_BY``, ``score_table`` giving other than [R, N] finite scores, a cached table on
            another device than the query (the model moved: call ``reset_cache()``), a table whose rows do not
            match low..high, ``exclude_history`` or ``exclude_recent`` without a graph, or a call without
            ``times``.
    """

    requires_scorer = True

    def __init__(self, *, pool_size: int = 20, hard_fraction: float = 0.25, refresh_every: int = 20,
                 schedule: str = "constant", start_fraction: float = 0.0, warmup_steps: int = 0,
                 exclude_history: bool = False, exclude_recent: int = 0, graph=None, rank_by: str = "embedding",
                 refresh_touched: bool = False, **kw):
        super().__init__(**kw)
        op = self._op
        self.rank_by = V.choice(op, "rank_by", rank_by, RANK_BY)
        from ..temporal import TemporalGraph

        if not isinstance(exclude_history, bool):
            raise TypeError(f"{op}: 'exclude_history' must be a bool (got {V.describe(exclude_history)})")
        self.exclude_recent = V.integer(op, "exclude_recent", exclude_recent, minimum=0)
        if graph is not None and not isinstance(graph, TemporalGraph):
            raise TypeError(f"{op}: 'graph' must be a hardneg.TemporalGraph or None (got {V.describe(graph)})")
        for name, on in (("exclude_history", exclude_history), ("exclude_recent", self.exclude_recent)):
            if on and graph is None:
                raise ValueError(f"{op}: '{name}' needs the training events' graph (graph=TemporalGraph)")
        self.exclude_history, self.graph = exclude_history, graph
        self.refresh_touched = V.boolean(op, "refresh_touched", refresh_touched)
        self.pool_size = V.integer(op, "pool_size", pool_size, minimum=1)
        if self.pool_size < self.num_negatives:
            raise ValueError(f"{op}: 'pool_size' K ({self.pool_size}) must be >= num_negatives n "
                             f"({self.num_negatives}): hard negatives are drawn from the top-K pool")
        for name, v in (("hard_fraction", hard_fraction), ("start_fraction", start_fraction)):
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise TypeError(f"{op}: '{name}' must be a number in [0, 1] (got {V.describe(v)})")
            if not 0.0 <= float(v) <= 1.0:
                raise ValueError(f"{op}: '{name}' must be in [0, 1] (got {v!r})")
        self.hard_fraction, self.start_fraction = float(hard_fraction), float(start_fraction)
        self.refresh_every = V.integer(op, "refresh_every", refresh_every, minimum=1)
        self.schedule = V.choice(op, "schedule", schedule, SCHEDULES)
        self.warmup_steps = V.integer(op, "warmup_steps", warmup_steps, minimum=0)
        self._cache = None
        self._cache_step = -1
        self._cache_mag = None  # the table's largest |entry|, once it is checked
        self._cache_rows = None  # its distinct rows and index (table_rows), once asked for
        self.refreshes = 0

    # ------------------------------------------------------------------ schedule and cache
    def fraction(self, step: int | None = None) -> float:
        """The hard share f at ``step`` (default: the current call)."""
        return scheduled(self.schedule, self.start_fraction, self.hard_fraction, self.warmup_steps,
                         self.step if step is None else step)

    def _needs_scorer(self) -> bool:
        return self.fraction() > 0.0

    def reset_cache(self) -> None:
        """Drop the cached candidate table (the next call recomputes it)."""
        self._cache, self._cache_step, self._cache_mag, self._cache_rows = None, -1, None, None

    def candidates(self, scorer, device) -> torch.Tensor:
        """The cached [N, d] table, refreshed from ``scorer`` every ``refresh_every`` calls."""
        op = self._op
        if self._cache is not None and self._cache.device != device:
            raise ValueError(f"{op}: the cached candidate table is on {self._cache.device} but the model's "
                             f"query embeddings are on {device}; call reset_cache() after moving the model")
        if self._cache is None or self.step - self._cache_step >= self.refresh_every:
            C = scorer.candidate_vectors("tail").detach()
            if not isinstance(C, torch.Tensor) or C.dim() != 2 or C.shape[0] != self.num_candidates:
                raise ValueError(f"{op}: candidate_vectors must be [N, d] with N = {self.num_candidates} rows "
                                 f"(destinations {self.low}..{self.high}; got {V.describe(C)})")
            if C.device != device:
                raise ValueError(f"{op}: the candidate table is on {C.device} but the model's query embeddings "
                                 f"are on {device}")
            self._cache, self._cache_step = C.contiguous(), self.step
            self._cache_mag = self._cache_rows = None
            self.refreshes += 1
        if self._cache_mag is None and not torch.compiler.is_compiling():  # checked once, not at every mining call
            self._cache_mag = V.magnitude(op, "candidates", self._cache)
        return self._cache

    def update_candidates(self, ids: torch.Tensor, vectors: torch.Tensor) -> int:
        """Write fresh embeddings ``vectors`` [M, d] of nodes ``ids`` [M] into the cached table, between its full
        refreshes: the rows of the ids that are destinations (low..high; others are skipped); for an id given
        more than once, its last row. No-op before the first refresh. Returns the number of rows written.

        With ``refresh_touched``, the training loop calls it after each step with that step's own embeddings
        of the batch's nodes (no extra embedding pass).

        Raises:
            TypeError: ``ids`` not an integer tensor, ``vectors`` not a float tensor.
            ValueError: ``ids`` not 1-D, ``vectors`` not [M, d] with the table's d, on another device than the
                table, or not finite.
        """
        op = self._op
        ids = V.tensor(op, "ids", ids, ndim=1, dtypes=V.INDEX_DTYPES, kind="integer tensor", what="of node ids [M]")
        vectors = V.floating(op, "vectors", vectors, 2, "of embeddings [M, d]")
        if vectors.shape[0] != ids.shape[0]:
            raise ValueError(f"{op}: 'vectors' must have one row per id ({ids.shape[0]}; got {V.describe(vectors)})")
        C = self._cache
        if C is None:
            return 0
        if vectors.shape[1] != C.shape[1] or vectors.device != C.device or ids.device != C.device:
            raise ValueError(f"{op}: 'vectors' must be [M, {C.shape[1]}] on the cached table's device {C.device} "
                             f"(got {V.describe(vectors)} on {vectors.device}, ids on {ids.device})")
        keep = (ids >= self.low) & (ids <= self.high)
        if not bool(keep.any()):
            return 0
        pos = torch.nonzero(keep).flatten()
        rows = ids[pos].long() - self.low
        # the last occurrence of each row: its largest position
        uniq, inv = torch.unique(rows, return_inverse=True)
        last = torch.full_like(uniq, -1).scatter_reduce_(0, inv, pos, "amax")
        new = vectors[last].detach().to(C.dtype)
        mag = V.magnitude(op, "vectors", new)  # finite, and the table's bound stays known
        if self._cache_mag is not None:
            self._cache_mag = max(self._cache_mag, mag)
        C.index_copy_(0, uniq, new)
        self._cache_rows = None
        return int(uniq.numel())

    def table_rows(self, table: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor] | None:
        """``(rows [U, d], index [N])``: the distinct rows of the cached table and each candidate's row among them
        (``rows[index]`` is the table), computed once per table (refresh or update): what a scorer may score once
        per distinct row (the identical embeddings of nodes without history; ``mlp_topk_mine``'s
        ``candidate_index``). Needs a table (after :meth:`candidates`). With ``table``: None unless it is the
        cached table itself (a scorer handed some table asks whether it is this one)."""
        if table is not None and table is not self._cache:
            return None
        if self._cache is None:
            raise ValueError(f"{self._op}: table_rows() needs a cached table (none yet: call candidates() first)")
        if self._cache_rows is None:
            rows, inv = distinct_rows(self._cache)
            self._cache_rows = (rows.contiguous(), inv.contiguous())
        return self._cache_rows

    def state_dict(self):
        d = super().state_dict()
        d.update(cache=None if self._cache is None else self._cache.cpu(), cache_step=self._cache_step,
                 refreshes=self.refreshes)
        return d

    def load_state_dict(self, state):
        super().load_state_dict(state)
        c = state.get("cache")
        self._cache = None if c is None else c.clone()
        self._cache_mag = self._cache_rows = None
        self._cache_step, self.refreshes = int(state.get("cache_step", -1)), int(state.get("refreshes", 0))

    # ------------------------------------------------------------------ two-phase calls
    def draft(self, positives, *, generator=None, times=None, seed=None) -> "ENSDraft":
        """The part of a call that needs no model: which columns of each row will be hard, and the random
        draws of the others. ``sample(positives, scorer=..., generator=..., draft=d)`` then mines only the hard
        columns, and the two calls together return exactly what one ``sample`` call returns from the same
        generator state.

        A training loop uses this to embed, for the queries, only the sources of the events with a hard column
        (``counts > 0``): with the recipe's f = 0.25 and n = 1, a quarter of the batch.
        """
        generator = self._randomness(generator, seed)
        P, times = self._check_call(positives, None, times)
        V.generator(self._op, generator)
        with torch.no_grad():
            k, ids, valid, lp = self._easy(P, generator)
        hard = torch.arange(self.num_negatives, device=P.device)[None, :] < k[:, None]
        return ENSDraft(P, ids, valid, lp, hard, k, self.step, given=positives)

    def sample(self, positives, *, scorer=None, generator=None, times=None, seed=None,
               draft: "ENSDraft | None" = None) -> Negatives:
        """As :meth:`TemporalSampler.sample`; with ``draft`` (from :meth:`draft` on the same positives, right
        before this call), only the hard columns are drawn now.

        Raises:
            ValueError: a ``draft`` made for other positives or at another step (a call in between).
        """
        if draft is None:
            return super().sample(positives, scorer=scorer, generator=generator, times=times, seed=seed)
        if not isinstance(draft, ENSDraft):
            raise TypeError(f"{self._op}: 'draft' must come from {type(self).__name__}.draft() (got "
                            f"{V.describe(draft)})")
        generator = self._randomness(generator, seed)
        # the positives the draft was made for were checked then (they must still be equal)
        P = draft.positives if positives is draft.given else self._check_events(positives, scorer)
        times = self._check_times(P, times)
        V.generator(self._op, generator)
        if draft.step != self.step or draft.positives.shape != P.shape or not torch.equal(draft.positives, P):
            raise ValueError(f"{self._op}: 'draft' was made for other positives or at another step (draft step "
                             f"{draft.step}, sampler step {self.step}); call draft() right before sample()")
        if self._needs_scorer():
            self._check_scorer(scorer, P)
        return self._run(P, scorer, generator, times, lambda P, sc, g: self._finish(P, sc, g, draft.easy()))

    __call__ = sample

    # ------------------------------------------------------------------ sampling
    def _split(self, B, generator, dev):
        """Per row, the number of hard columns (expected share exactly f)."""
        x = self.fraction() * self.num_negatives
        base = math.floor(x)
        if x == base:
            return torch.full((B,), base, dtype=torch.long, device=dev)
        return base + (uniform((B,), generator, dev) < (x - base)).long()

    def _query(self, P, scorer, rows):
        """Fresh queries of the events ``rows``, the cached table, and their exclusion CSR (table rows)."""
        q = scorer.query_vectors(P[:, 0], "tail").detach()
        if not isinstance(q, torch.Tensor) or q.dim() != 2 or q.shape[0] != P.shape[0]:
            raise ValueError(f"{self._op}: query_vectors must give one row per event [B, d] (got {V.describe(q)})")
        C = self.candidates(scorer, q.device)
        if C.shape[1] != q.shape[1]:
            raise ValueError(f"{self._op}: query [B, {q.shape[1]}] and candidate table [N, {C.shape[1]}] differ in d")
        Pr = P[rows]
        extra = ([self._history(Pr[:, 0], rows)] if self.exclude_history else []) + (
            [self._recent(Pr[:, 0], rows)] if self.exclude_recent else [])
        ptr, ex = exclusion_with_self(self.known, Pr[:, 0], Pr[:, 1], "tail", extra=extra or None)
        return q[rows].to(C.dtype).contiguous(), C, (ptr, ex - self.low)

    def _event_times(self, rows, option):
        if self._times is None:
            raise ValueError(f"{self._op}: '{option}' needs the event times (sample(..., times=t))")
        return self._times[rows].to(self.graph.device)  # the graph's lookup checks and converts the time type

    def _history(self, src, rows):
        """CSR of the destinations in low..high that each source met strictly before its event's time."""
        g = self.graph
        ptr, ids = g.seen_destinations(src.to(g.device), self._event_times(rows, "exclude_history"))
        ptr, ids = ptr.to(src.device), ids.to(src.device)
        row = torch.repeat_interleave(torch.arange(src.shape[0], device=src.device), ptr.diff())
        return self._in_range_csr(row, ids, src.shape[0])

    def _recent(self, src, rows):
        """CSR of the partners in low..high of each source's ``exclude_recent`` latest events before its time."""
        g = self.graph
        nbrs, _, _, ok = g.neighbors(src.to(g.device), self._event_times(rows, "exclude_recent"), self.exclude_recent)
        nbrs, ok = nbrs.to(src.device), ok.to(src.device)
        row = torch.arange(src.shape[0], device=src.device)[:, None].expand_as(nbrs)
        return self._in_range_csr(row[ok], nbrs[ok], src.shape[0])

    def _in_range_csr(self, row, ids, B):
        """CSR over B rows of the (row-sorted) pairs ``row, ids`` whose id is a destination (low..high)."""
        keep = (ids >= self.low) & (ids <= self.high)
        out = torch.zeros(B + 1, dtype=torch.int64, device=ids.device)
        out[1:] = torch.cumsum(torch.bincount(row[keep], minlength=B), 0)
        return out, ids[keep]

    def _hard(self, P, rows, scorer, generator, n):
        """(ids [R, n], valid [R, n], log_prob [R, n] or None) of the hard draws for the events ``rows``.

        Events with identical queries (the same source in one batch, embedded as of the batch) are mined once:
        their shared pool excludes all of their true destinations (each is a positive of that query)."""
        q, C, (ptr, ex) = self._query(P, scorer, rows)
        per_event = self.rank_by == "score" and bool(getattr(scorer, "event_scores", False))
        if per_event:
            # a scorer whose scores depend on the event beyond its query (a decoder's pair term, which reads the
            # source's history and the event's time): one pool per distinct (query, source, event time). One int64
            # key per row, in the lexicographic order of (source, time rank) and, only where one (source, time)
            # holds two different queries, of (query group, source, time rank): a 1-D unique
            src = P[rows, 0]
            _, sinv = torch.unique(src, return_inverse=True)
            key = sinv
            if self._times is not None:
                _, tinv = torch.unique(self._times[rows], return_inverse=True)
                key = key * (int(tinv.max()) + 1 if tinv.numel() else 1) + tinv.to(sinv.device)  # < rows²
            inv, first = _groups(key, q.device)
            if not torch.equal(q[first][inv], q):  # queries differ inside a group: the query is part of the key
                qinv = distinct_rows(q)[1]
                inv, first = _groups(qinv * (int(key.max()) + 1 if key.numel() else 1) + key, q.device)  # < rows³
            uq = q[first]
        else:
            uq, inv = distinct_rows(q)
        if not torch.compiler.is_compiling() and uq.shape[0] == q.shape[0]:  # all distinct: keep the rows in order
            uq, inv = q, torch.arange(q.shape[0], device=q.device)
            first = inv
            ptr, ex = V.normalize_csr(ptr, ex, q.shape[0], C.shape[0])  # sorted and unique per row
        else:  # (the grouped CSR below is sorted and unique by construction)
            N = C.shape[0]
            if not torch.compiler.is_compiling() and ex.numel() == q.shape[0]:  # one id a row: the row's group
                owner = inv
            else:
                owner = inv[torch.repeat_interleave(torch.arange(q.shape[0], device=q.device), ptr.diff())]
            key = torch.unique(owner * N + ex)
            grp = torch.div(key, N, rounding_mode="floor")
            ptr = torch.zeros(uq.shape[0] + 1, dtype=torch.int64, device=q.device)
            ptr[1:] = torch.cumsum(torch.bincount(grp, minlength=uq.shape[0]), 0)
            ex = key - grp * N
        # ties go to random candidates, not to the smallest ids: a fresh random permutation ranks the candidates
        # among equal scores (at an epoch's start every node without history has the same embedding, and a fresh
        # stream's first table is one tie; its pool would otherwise be the K lowest ids for refresh_every calls)
        tie = permutation(C.shape[0], generator, C.device)
        if self.rank_by == "score":
            # every member of a group has its first event's source and time
            pool = self._score_pool(scorer, uq, C, (ptr, ex), tie, rows[first] if per_event else None)
        else:
            _, pool = mine_cached_table(self._op, uq, C, self.pool_size, self._cache_mag, (ptr, ex), tie)
        ids, valid = uniform_pool_draw(pool[inv], n, generator)
        return torch.where(valid, ids + self.low, ids), valid, None

    def _score_pool(self, scorer, q, C, exclude, tie, events=None, chunk: int = 1 << 24):
        """[U, K] table rows: the top K of each query by the model's own score, the excluded rows never, ties by
        the keys ``tie`` (a permutation: smaller key first), -1 past the admissible ones. Through the scorer's
        fused ``topk_table`` when it has one; else from ``score_table`` in row chunks of about ``chunk`` (query,
        candidate, feature) entries (an MLP decoder materialises [R, N, d]). ``events`` [U]: the call's event of
        each query, passed on as ``events=`` (scorers with ``event_scores``)."""
        op, (U, N), K = self._op, (q.shape[0], C.shape[0]), min(self.pool_size, C.shape[0])
        pool = torch.full((U, self.pool_size), -1, dtype=torch.int64, device=q.device)
        top = getattr(scorer, "topk_table", None)
        if callable(top):  # a fused top-k of the scorer's own (mlp_topk_mine for the temporal task's decoder)
            ids = top(q, C, K, exclude=exclude, tie_break=tie) if events is None else top(
                q, C, K, exclude=exclude, tie_break=tie, events=events)
            if not isinstance(ids, torch.Tensor) or ids.shape != (U, K) or ids.dtype != torch.int64:
                raise ValueError(f"{op}: topk_table must give int64 [R, k] = [{U}, {K}] ids (got "
                                 f"{V.describe(ids)})")
            pool[:, :K] = ids
            return pool
        fn = getattr(scorer, "score_table", None)
        if not callable(fn):
            raise TypeError(f"{op}: rank_by='score' needs the scorer's score_table(query, table) -> [R, N] or "
                            f"topk_table(query, table, k, ...) -> [R, k] (both missing on {type(scorer).__name__})")
        ptr, ex = exclude
        order = torch.argsort(tie)  # column j of the reordered scores is the candidate with the j-th key
        step = max(1, chunk // max(1, N * q.shape[1]))
        for lo in range(0, U, step):
            hi = min(U, lo + step)
            S = fn(q[lo:hi], C) if events is None else fn(q[lo:hi], C, events=events[lo:hi])
            if not isinstance(S, torch.Tensor) or S.shape != (hi - lo, N):
                raise ValueError(f"{op}: score_table must give [R, N] = [{hi - lo}, {N}] scores (got "
                                 f"{V.describe(S)})")
            S = S.detach().float()
            V.finite(op, "score_table(...)", S)
            a, b = int(ptr[lo]), int(ptr[hi])
            S = S.masked_fill(exclusion_mask((ptr[lo:hi + 1] - a, ex[a:b]), hi - lo, 0, N, S.device), float("-inf"))
            S = S[:, order]
            # a stable sort's first K: among equal scores the smaller key (the earlier column) comes first
            vals, idx = stable_topk(S, K)
            pool[lo:hi, :K] = torch.where(vals > float("-inf"), order[idx], torch.full_like(idx, -1))
        return pool

    def _easy(self, P, generator):
        """The scorer-free draws of a call: hard counts k [B], random ids and valid [B, n], log-probs or None."""
        B, n, dev = P.shape[0], self.num_negatives, P.device
        k = self._split(B, generator, dev)
        ids, valid = self._random(P, n, generator)
        lp = torch.full((B, n), -math.log(max(1, self.num_candidates - 1)), device=dev) if self._scored else None
        return k, ids, valid, lp

    def _sample(self, P, scorer, generator):
        return self._finish(P, scorer, generator, self._easy(P, generator))

    def _finish(self, P, scorer, generator, easy):
        """The hard columns over the draws ``easy`` (as :meth:`_easy` returns them; modified in place)."""
        k, ids, valid, lp = easy
        n, dev = self.num_negatives, P.device
        rows = torch.nonzero(k > 0).flatten()
        if torch.compiler.is_compiling() or rows.numel():  # only the events with a hard column are mined
            hard, hvalid, hlp = self._hard(P, rows, scorer, generator, n)
            is_hard = torch.arange(n, device=dev)[None, :] < k[rows, None]
            ids[rows] = torch.where(is_hard, hard, ids[rows])
            valid[rows] = torch.where(is_hard, hvalid, valid[rows])
            if lp is not None:
                lp[rows] = torch.where(is_hard, hlp, lp[rows])
        return Negatives(ids, valid, lp)

    _scored = False


def _groups(key: torch.Tensor, device) -> tuple[torch.Tensor, torch.Tensor]:
    """``(inverse [R], first [G])``: each row's group among the distinct values of ``key`` [R] (in sorted order) and
    each group's first row."""
    _, inv = torch.unique(key, return_inverse=True)
    first = torch.full((int(inv.max()) + 1 if inv.numel() else 0,), key.shape[0], dtype=torch.int64, device=device)
    first.scatter_reduce_(0, inv, torch.arange(key.shape[0], device=device), "amin")
    return inv, first


@register("ens_score")
class ENSScoreSampler(ENSSampler):
    """Loss-proportional ENS (the paper's principle, arXiv 2402.09239 §3): hard negatives drawn with
    probability ∝ softplus(q·c / T) over every destination (the BCE loss each would incur as a negative, the
    proxy for its gradient norm), fused (:func:`hardneg.ops.sample_by_score`, i.i.d. with replacement), against
    the same cached table as ``ens``. ``log_prob`` holds each draw's exact log-probability under the proposal
    that drew it (the score proposal for hard columns, uniform over the N − 1 other destinations for random
    ones), for importance weighting. ``hard_fraction`` defaults to 0.25, the hybrid, as for ``ens``: pure
    loss-proportional draws (``hard_fraction=1``) were unstable on Wikipedia (two of three seeds peaked on
    validation at epochs 1 and 3 of 10; validation AP 0.873 against the hybrid's 0.950) and lost 0.12 of historical
    AP on UCI to the hybrid (0.592 against 0.711; MRR 0.071 against 0.065; bench/RESULTS.md, "The other two event
    samplers" and "The loss-proportional hybrid"). ``weighting="softmax"`` draws ∝ exp(q·c / T)
    instead. ``pool_size`` is unused."""

    _scored = True

    def __init__(self, *, weighting: str = "softplus", temperature: float = 1.0, hard_fraction: float = 0.25,
                 **kw):
        kw.setdefault("pool_size", max(20, kw.get("num_negatives", 1)))
        super().__init__(hard_fraction=hard_fraction, **kw)
        if self.rank_by != "embedding":
            raise ValueError(f"{self._op}: 'rank_by' must be 'embedding' for ens_score, which draws over the "
                             f"dot product with the fused sample_by_score (got {self.rank_by!r}); rank_by='score' "
                             f"is ens's")
        self.weighting = V.choice(self._op, "weighting", weighting, ("softmax", "softplus"))
        self.temperature = V.positive_float(self._op, "temperature", temperature)

    def _hard(self, P, rows, scorer, generator, n):
        q, C, ex = self._query(P, scorer, rows)
        ids, lp = sample_by_score(q, C, n, metric="dot", weighting=self.weighting, temperature=self.temperature,
                                  exclude=ex, replacement=True, generator=generator)
        valid = ids >= 0
        return torch.where(valid, ids + self.low, ids), valid, lp.float()


@dataclasses.dataclass(frozen=True)
class ENSDraft:
    """What :meth:`ENSSampler.draft` drew for a batch before any model output: ``hard`` [B, n] bool marks the
    columns that the next ``sample(..., draft=...)`` call mines (the first k of each row); ``ids`` / ``valid``
    hold the random draws of the other columns (and, until then, of the hard ones: they are replaced)."""

    positives: torch.Tensor
    ids: torch.Tensor
    valid: torch.Tensor
    log_prob: torch.Tensor | None
    hard: torch.Tensor
    counts: torch.Tensor
    step: int
    given: object = dataclasses.field(default=None, repr=False, compare=False)  # the caller's positives

    def easy(self):
        """Copies of the draws for :meth:`ENSSampler._finish` (the draft itself stays unchanged)."""
        lp = None if self.log_prob is None else self.log_prob.clone()
        return self.counts, self.ids.clone(), self.valid.clone(), lp
