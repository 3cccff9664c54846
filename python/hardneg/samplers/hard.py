"""Samplers that mine with the model's own score: top-K hard, score-proportional, NMiss, NSCaching, mixed."""
from __future__ import annotations

import math

import torch

from .. import _validate as V
from ..ops import corrupt, sample_by_score, topk_mine
from .._backend import BACKENDS
from .._random import SeedStream, uniform
from .base import (Negatives, Sampler, create, exclusion_with_self, register, side_groups,
                   uniform_pool_draw)
from ..metrics import anchors, pairwise
from .basic import from_corrupt


class _MiningSampler(Sampler):
    requires_scorer = True

    def __init__(self, *, backend: str | None = None, **kw):
        super().__init__(**kw)
        if backend is not None:
            V.choice(self._op, "backend", backend, BACKENDS)
        self.backend = backend

    def _queries(self, P, rows, side, scorer):
        anchor, target = anchors(P[rows], side)
        q = scorer.query_vectors(anchor, side).detach()
        C = scorer.candidate_vectors(side).detach()
        if q.dtype != C.dtype:
            q = q.to(C.dtype)
        V.finite(self._op, "scorer.query_vectors(...)", q)
        ex = exclusion_with_self(self.known, anchor, target, side)
        return anchor, target, q.contiguous(), C.contiguous(), ex

    def _alloc(self, P, dtype=None):
        B, n, dev = P.shape[0], self.num_negatives, P.device
        ids = torch.full((B, n), -1, dtype=torch.int64, device=dev)
        valid = torch.zeros(B, n, dtype=torch.bool, device=dev)
        return ids, valid


@register("topk")
class TopKSampler(_MiningSampler):
    """Top-K hard negatives (ENS / HardGNN): for each positive, the ``pool_size`` candidates the model scores
    highest for the corrupted side (fused :func:`hardneg.ops.topk_mine` over all entities, skipping known
    positives and the true entity), then n drawn uniformly from that pool, without replacement (cycled when the
    pool has fewer than n admissible entries).

    ``pool_size`` must be >= n. Its default is relative to the number of candidates E:
    K = max(n, min(64, ⌈E / 4⌉)) — 64 on large graphs (WN18RR), a quarter of the entities on small ones (UMLS: 34,
    Nations: 4), so the pool stays a hard subset. A pool that covers every candidate (K >= E − 1) makes the
    sampler uniform over the admissible entities; that draws a warning (once per sampler)."""

    DEFAULT_POOL, DEFAULT_FRACTION = 64, 0.25

    def __init__(self, *, pool_size: int | None = None, **kw):
        super().__init__(**kw)
        if pool_size is None:
            K = None
        else:
            K = V.integer(self._op, "pool_size", pool_size, minimum=1)
            if K < self.num_negatives:
                raise ValueError(f"{self._op}: 'pool_size' ({K}) must be >= num_negatives ({self.num_negatives}): "
                                 f"n negatives are drawn from the top-K pool")
        self._pool_option = K
        self._warned_uniform = False
        self.pool_size = K if K is not None or self.num_entities is None else self.default_pool_size(self.num_entities)

    def default_pool_size(self, num_entities: int) -> int:
        """max(n, min(64, ⌈E / 4⌉)) for E candidates."""
        return max(self.num_negatives, min(self.DEFAULT_POOL, math.ceil(self.DEFAULT_FRACTION * num_entities)))

    def _pool(self, E: int) -> int:
        K = self._pool_option if self._pool_option is not None else self.default_pool_size(E)
        self.pool_size = K
        if K >= E - 1 and not self._warned_uniform:
            self._warned_uniform = True
            import warnings

            warnings.warn(f"{self._op}: the top-K pool ({K}) covers all {E} candidates (every entity but the true "
                          f"one), so these negatives are filtered uniform, not hard; use pool_size < {E - 1}",
                          UserWarning, stacklevel=4)
        return K

    def _sample(self, P, scorer, generator):
        K = self._pool(self._entities(scorer))
        ids, valid = self._alloc(P)
        row_side = self._row_sides(P, generator)
        for side, col, rows in side_groups(P, row_side, collective=self._per_rank):
            _, _, q, C, ex = self._queries(P, rows, side, scorer)
            _, pool = topk_mine(q, C, K, metric=scorer.metric, exclude=ex, backend=self.backend)
            i, v = uniform_pool_draw(pool, self.num_negatives, generator)
            ids[rows], valid[rows] = i, v
        return Negatives(ids, valid, None, row_side)


@register("score")
class ScoreSampler(_MiningSampler):
    """Loss-proportional negatives (ENS): candidates drawn ∝ softmax(score / T) (``weighting="softmax"``) or
    softplus(score)^(1/T) (``"softplus"``, the logistic loss of the candidate) over all admissible entities,
    fused (:func:`hardneg.ops.sample_by_score`), with replacement by default. ``log_prob`` holds each draw's
    exact log-probability under the full normalised proposal, for importance weighting
    (:func:`hardneg.losses.importance_weights`)."""

    def __init__(self, *, weighting: str = "softmax", temperature: float = 1.0, replacement: bool = True, **kw):
        super().__init__(**kw)
        self.weighting = V.choice(self._op, "weighting", weighting, ("softmax", "softplus"))
        self.temperature = V.positive_float(self._op, "temperature", temperature)
        self.replacement = V.boolean(self._op, "replacement", replacement)

    def _sample(self, P, scorer, generator):
        ids, valid = self._alloc(P)
        logp = torch.full(ids.shape, float("-inf"), dtype=torch.float32, device=P.device)
        row_side = self._row_sides(P, generator)
        for side, col, rows in side_groups(P, row_side, collective=self._per_rank):
            _, _, q, C, ex = self._queries(P, rows, side, scorer)
            i, lp = sample_by_score(q, C, self.num_negatives, metric=scorer.metric, weighting=self.weighting,
                                    temperature=self.temperature, exclude=ex, replacement=self.replacement,
                                    generator=generator, backend=self.backend)
            ids[rows], valid[rows], logp[rows] = i, i >= 0, lp.to(logp.dtype)
        return Negatives(ids, valid, logp, row_side)


@register("dns")
class DNSSampler(_MiningSampler):
    """Dynamic negative sampling (DNS; Zhang et al., SIGIR 2013; RecBole's ``dynamic``): for each positive,
    ``num_candidates`` (M) candidates are drawn uniformly from the admissible ids (filtered by ``known``, never the
    positive itself), scored with the current model, and the n highest-scoring are kept (ties to the earlier
    draw). M >= n; with M = n this is filtered uniform sampling. Draws may repeat, as in RecBole; a row has
    fewer than n valid negatives only when its admissible set is empty. How hard the kept negatives are depends
    on M / n, so raise M with n (linkpred GCN on Cora, 4 negatives per edge: test Hits@20 0.0759 with M 32 against
    0.0512 with M 8; bench/RESULTS.md)."""

    def __init__(self, *, num_candidates: int = 32, **kw):
        super().__init__(**kw)
        self.num_candidates = V.integer(self._op, "num_candidates", num_candidates, minimum=1)
        if self.num_candidates < self.num_negatives:
            raise ValueError(f"{self._op}: 'num_candidates' ({self.num_candidates}) must be >= num_negatives "
                             f"({self.num_negatives}): the n hardest of M uniform candidates are kept")

    def _sample(self, P, scorer, generator):
        ids, valid = self._alloc(P)
        row_side = self._row_sides(P, generator)
        for side, col, rows in side_groups(P, row_side, collective=self._per_rank):
            neg, ok = corrupt(P[rows], self.num_candidates, self._entities(scorer, side), side=side, known=self.known,
                              num_relations=self.num_relations, generator=generator)
            cand = from_corrupt(P[rows], neg, ok, side)
            anchor, _ = anchors(P[rows], side)
            sc = scorer.score_candidates(anchor, cand.ids.clamp_min(0), side).detach()
            V.finite(self._op, "the scorer's scores", sc)
            sc = torch.where(cand.valid, sc, torch.full_like(sc, float("-inf")))
            top = sc.topk(self.num_negatives, dim=1).indices.sort(dim=1).values  # keep draw order among the kept
            ids[rows] = cand.ids.gather(1, top)
            valid[rows] = cand.valid.gather(1, top)
        return Negatives(ids, valid, None, row_side)


@register("nmiss")
class NMissSampler(_MiningSampler):
    """NMiss: negatives among the candidates the model currently scores *above* the positive (its misses).

    The ``pool_size`` highest-scoring admissible candidates are mined (fused top-K); those scoring above the
    positive form the pool, and n are drawn uniformly from it (without replacement, cycled when smaller). When
    fewer than ``pool_size`` candidates outrank the positive this is exactly uniform over all of them; when more
    do, it is uniform over the ``pool_size`` hardest misses. Rows where nothing outranks the positive use
    ``fallback``: ``"hardest"`` (the mined pool, default), ``"uniform"`` (filtered uniform) or ``"none"``
    (invalid)."""

    def __init__(self, *, pool_size: int = 256, fallback: str = "hardest", **kw):
        super().__init__(**kw)
        self.pool_size = V.integer(self._op, "pool_size", pool_size, minimum=1)
        self.fallback = V.choice(self._op, "fallback", fallback, ("hardest", "uniform", "none"))

    def _sample(self, P, scorer, generator):
        ids, valid = self._alloc(P)
        row_side = self._row_sides(P, generator)
        for side, col, rows in side_groups(P, row_side, collective=self._per_rank):
            E = self._entities(scorer, side)
            anchor, target, q, C, ex = self._queries(P, rows, side, scorer)
            s, pool = topk_mine(q, C, self.pool_size, metric=scorer.metric, exclude=ex, backend=self.backend)
            s_pos = pairwise(q.double(), C[target].double(), scorer.metric)
            above = (pool >= 0) & (s.double() > s_pos[:, None])
            has = above.any(1)
            chosen = torch.where(above, pool, torch.full_like(pool, -1))
            if self.fallback == "hardest":
                chosen = torch.where(has[:, None], chosen, pool)
            i, v = uniform_pool_draw(chosen, self.num_negatives, generator)
            if self.fallback == "uniform" and not bool(has.all()):
                neg, ok = corrupt(P[rows], self.num_negatives, E, side=side, known=self.known,
                                  num_relations=self.num_relations, generator=generator)
                uni = from_corrupt(P[rows], neg, ok, side)
                i = torch.where(has[:, None], i, uni.ids)
                v = torch.where(has[:, None], v, uni.valid)
            ids[rows], valid[rows] = i, v
        return Negatives(ids, valid, None, row_side)


@register("nscaching")
class NSCachingSampler(_MiningSampler):
    """NSCaching (Zhang et al. 2019): a cache of ``cache_size`` hard candidates per (h, r) (tail side) and per
    (r, t) (head side). Each step, for each positive: n negatives are drawn uniformly from its cache, then the
    cache is refreshed by importance sampling — ``cache_size`` distinct entries drawn without replacement
    ∝ exp(score / T) from cache ∪ ``num_fresh`` fresh filtered-uniform candidates. New anchors start with a
    filtered uniform cache. Every cache entry comes from filtered draws, so no known positive is returned.
    The caches are part of ``state_dict()``."""

    def __init__(self, *, cache_size: int = 50, num_fresh: int = 50, temperature: float = 1.0, **kw):
        super().__init__(**kw)
        self.cache_size = V.integer(self._op, "cache_size", cache_size, minimum=1)
        self.num_fresh = V.integer(self._op, "num_fresh", num_fresh, minimum=1)
        self.temperature = V.positive_float(self._op, "temperature", temperature)
        self._keys = {}   # side -> sorted int64 keys
        self._cache = {}  # side -> int64 [M, cache_size]

    def state_dict(self) -> dict:
        d = super().state_dict()
        d["keys"] = {k: v.cpu() for k, v in self._keys.items()}
        d["cache"] = {k: v.cpu() for k, v in self._cache.items()}
        return d

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self._keys = dict(state.get("keys", {}))
        self._cache = dict(state.get("cache", {}))

    def _anchor_key(self, P, rows, side):
        E = self._entities()
        if P.shape[1] == 3:
            a, b = (P[rows, 0], P[rows, 1]) if side == "tail" else (P[rows, 1], P[rows, 2])
            return a * self.num_relations + b if side == "tail" else a * E + b
        return P[rows, 0] if side == "tail" else P[rows, 1]

    def _fresh(self, P, rows, side, m, generator, E):
        neg, ok = corrupt(P[rows], m, E, side=side, known=self.known, num_relations=self.num_relations,
                          generator=generator)
        return from_corrupt(P[rows], neg, ok, side).ids

    def _sample(self, P, scorer, generator):
        if P.shape[1] == 3 and self.num_relations is None:
            raise ValueError(f"{self._op}: the caches are keyed by (h, r) and (r, t), so triples need "
                             f"num_relations=... (or known=KnownSet.from_triples(...), which gives it)")
        ids, valid = self._alloc(P)
        row_side = self._row_sides(P, generator)
        if self.num_entities is None:
            self.num_entities = self._entities(scorer)
            self.num_sources = self._entities(scorer, "head") if scorer is not None else self.num_entities
        dev = P.device
        for side, col, rows in side_groups(P, row_side, collective=self._per_rank):
            E = self._entities(scorer, side)
            key = self._anchor_key(P, rows, side)
            ukey, inv = torch.unique(key, return_inverse=True)
            keys = self._keys.get(side)
            cache = self._cache.get(side)
            if keys is None:
                keys = torch.zeros(0, dtype=torch.int64, device=dev)
                cache = torch.zeros(0, self.cache_size, dtype=torch.int64, device=dev)
            keys, cache = keys.to(dev), cache.to(dev)
            pos = torch.searchsorted(keys, ukey)
            found = (pos < keys.numel()) & (keys[pos.clamp_max(max(keys.numel() - 1, 0))] == ukey) if keys.numel() \
                else torch.zeros_like(ukey, dtype=torch.bool)
            first = torch.full((ukey.numel(),), rows.numel(), dtype=torch.int64, device=dev)
            first.scatter_reduce_(0, inv, torch.arange(rows.numel(), device=dev), "amin")  # first row per anchor
            fixed = isinstance(generator, SeedStream)  # an explicit seed (torch.compile): no data-dependent branch
            if fixed or not bool(found.all()):  # new anchors: a filtered uniform cache
                new = (~found).nonzero().flatten()
                init = self._fresh(P, rows[first[new]], side, self.cache_size, generator, E)
                keys = torch.cat([keys, ukey[new]])
                cache = torch.cat([cache, init])
                order = keys.argsort()
                keys, cache = keys[order], cache[order]
                pos = torch.searchsorted(keys, ukey)
            slot = pos[inv]  # cache row of each positive
            anchor, target = anchors(P[rows], side)
            # 1) negatives: uniform from the cache (entries equal to the row's own entity skipped)
            c_rows = cache[slot]
            c_rows_ok = torch.where(c_rows != target[:, None], c_rows, torch.full_like(c_rows, -1))
            j = (uniform((rows.numel(), self.num_negatives), generator, dev) * self.cache_size).long()
            j = j.clamp_max(self.cache_size - 1)
            picked = c_rows_ok.gather(1, j)
            if fixed or bool((picked < 0).any()):  # rare: the row's own entity is cached -> redraw from the rest
                alt, ok = uniform_pool_draw(c_rows_ok, self.num_negatives, generator)
                picked = torch.where(picked < 0, alt, picked)
            ids[rows], valid[rows] = picked, picked >= 0
            # 2) cache refresh by importance sampling over cache ∪ fresh (one update per distinct anchor)
            r1 = rows[first]
            a1, t1 = anchors(P[r1], side)
            fresh = self._fresh(P, r1, side, self.num_fresh, generator, E)
            cand = torch.cat([cache[slot[first]], fresh], 1)
            sc = scorer.score_candidates(a1, cand.clamp_min(0), side).detach().double() / self.temperature
            V.finite(self._op, "the scorer's scores", sc)  # a NaN score would be cached as the hardest
            u = uniform(cand.shape, generator, dev).clamp(1e-300, 1.0)
            gkey = sc - torch.log(-torch.log(u))  # Gumbel-top-k = sampling without replacement ∝ exp(score/T)
            srt, o = cand.sort(1)
            dup = torch.zeros_like(cand, dtype=torch.bool)
            dup.scatter_(1, o[:, 1:], srt[:, 1:] == srt[:, :-1])
            bad = dup | (cand < 0) | (cand == t1[:, None])
            gkey = torch.where(bad, torch.full_like(gkey, float("-inf")), gkey)
            top = gkey.topk(self.cache_size, 1).indices
            newc = cand.gather(1, top)
            newc = torch.where(gkey.gather(1, top) > float("-inf"), newc, cache[slot[first]])
            cache[slot[first]] = newc
            self._keys[side], self._cache[side] = keys, cache
        return Negatives(ids, valid, None, row_side)


SCHEDULES = ("constant", "linear", "step")


def scheduled(schedule: str, start: float, end: float, warmup_steps: int, step: int) -> float:
    """A fraction at ``step``: ``"constant"`` (end), ``"linear"`` (start → end over warmup_steps) or ``"step"``
    (start until warmup_steps, then end)."""
    if schedule == "constant":
        return end
    if schedule == "step":
        return start if step < warmup_steps else end
    if warmup_steps == 0:
        return end
    return start + (end - start) * min(1.0, step / warmup_steps)


@register("mixed")
class MixedSampler(Sampler):
    """A curriculum mix: a fraction f(step) of the n negatives from a ``hard`` sampler (default ``"topk"``),
    the rest from an ``easy`` one (default ``"uniform"``), both filtered.

    ``schedule``: ``"constant"`` (f = ``end``), ``"linear"`` (``start`` → ``end`` over ``warmup_steps`` calls)
    or ``"step"`` (``start`` until ``warmup_steps`` calls, then ``end``): "random early, hard later". The
    step is the number of ``sample`` calls (``set_step`` overrides it, e.g. to count epochs). ``hard_options``
    / ``easy_options`` are passed to the sub-samplers. The hard columns come first in each row.
    """

    requires_scorer = True

    def __init__(self, *, hard: str = "topk", easy: str = "uniform", schedule: str = "linear", start: float = 0.0,
                 end: float = 0.5, warmup_steps: int = 1000, hard_options: dict | None = None,
                 easy_options: dict | None = None, **kw):
        super().__init__(**kw)
        op = self._op
        self.schedule = V.choice(op, "schedule", schedule, SCHEDULES)
        self.start = V.real(op, "start", start, minimum=0.0, maximum=1.0)
        self.end = V.real(op, "end", end, minimum=0.0, maximum=1.0)
        self.warmup_steps = V.integer(op, "warmup_steps", warmup_steps, minimum=0)
        common = dict(num_negatives=self.num_negatives, known=self.known, num_entities=self.num_entities,
                      num_sources=self.num_sources if self.num_entities is not None else None,
                      num_relations=self.num_relations, side=self.side)
        if hard == "mixed" or easy == "mixed":
            raise ValueError(f"{op}: 'hard' and 'easy' must be other samplers, not 'mixed'")
        self.hard = create(hard, **common, **(hard_options or {}))
        self.easy = create(easy, **common, **(easy_options or {}))
        self.requires_scorer = self.hard.requires_scorer or self.easy.requires_scorer  # khop + uniform need none

    def set_step(self, step: int) -> None:
        self.step = int(step)

    def fraction(self, step: int | None = None) -> float:
        return scheduled(self.schedule, self.start, self.end, self.warmup_steps, self.step if step is None else step)

    def num_hard(self, step: int | None = None) -> int:
        return int(math.floor(self.fraction(step) * self.num_negatives + 0.5))

    def state_dict(self) -> dict:
        return {"step": self.step, "hard": self.hard.state_dict(), "easy": self.easy.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.step = int(state["step"])
        self.hard.load_state_dict(state["hard"])
        self.easy.load_state_dict(state["easy"])

    def _sample(self, P, scorer, generator):
        n = self.num_negatives
        k = self.num_hard()
        parts = []
        if k > 0:
            parts.append((self.hard._sample(P, scorer, generator), k))
            self.hard.step += 1
        if k < n:
            parts.append((self.easy._sample(P, scorer, generator), n - k))
            self.easy.step += 1
        ids = torch.cat([p.ids[:, :m] for p, m in parts], 1)
        valid = torch.cat([p.valid[:, :m] for p, m in parts], 1)
        sides = [p.side for p, _ in parts]
        if all(s is None for s in sides):
            side = None
        else:
            side = torch.cat([p.side_matrix(P)[:, :m] for p, m in parts], 1)
        return Negatives(ids, valid, None, side)
