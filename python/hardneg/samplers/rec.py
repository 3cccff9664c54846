"""Recommendation samplers: popularity-biased negatives and HardGNN's cosine top-K hard negatives.

Both work for any model and any positives (user–item pairs, edges or triples), like the other samplers.
"""
from __future__ import annotations

import torch

from .. import _validate as V
from .._constants import METRICS
from .._random import SeedStream, generator_device, uniform
from ..metrics import anchors
from ..ops import corrupt, sample_from_weights, topk_mine
from ..ops.mining import _sharded
from .base import (Negatives, Sampler, draw_with_replacement, exclusion_with_self, register, restrict_csr,
                   side_groups)
from .basic import from_corrupt
from .hard import _MiningSampler


@register("popularity")
class PopularitySampler(Sampler):
    """Popularity-biased negatives (word2vec's unigram^α, RecBole's ``popularity``): the replacement entity is drawn
    with probability ∝ count^``alpha``, where count is how often the entity occurs on the corrupted side of
    ``known`` (for a user–item set: how many users interacted with the item), or ∝ ``weights`` if given.

    Filtered exactly: draws forming a known positive (or the positive itself) are rejected and redrawn up to
    ``max_tries`` rounds; rows still short are sampled from their admissible entities enumerated exactly. So each
    negative follows the popularity distribution restricted to the row's admissible entities, and ``log_prob``
    is its exact log-probability under that restricted distribution (for importance weighting). Entities of
    weight 0 are never drawn; a row whose admissible entities all weigh 0 is invalid (−1).

    Needs ``known`` or ``weights``. Example:

    >>> import torch, hardneg
    >>> from hardneg import samplers
    >>> known = hardneg.KnownSet.from_edges(torch.tensor([[0, 1], [1, 1], [2, 0], [0, 2]]), 4)
    >>> s = samplers.create("popularity", num_negatives=3, known=known)
    >>> s.sample(torch.tensor([[0, 1], [2, 0]]), generator=torch.Generator().manual_seed(0)).ids.shape
    torch.Size([2, 3])
    """

    def __init__(self, *, alpha: float = 1.0, weights=None, max_tries: int = 8, **kw):
        super().__init__(**kw)
        op = self._op
        self.alpha = V.positive_float(op, "alpha", alpha)
        self.max_tries = V.integer(op, "max_tries", max_tries, minimum=1)
        if weights is not None:
            weights = V.floating(op, "weights", weights, 1, "[N]")
            if weights.numel() and (not bool(torch.isfinite(weights).all()) or bool((weights < 0).any())):
                raise ValueError(f"{op}: 'weights' must be finite and >= 0 (got {V.describe(weights)})")
            if self.num_entities is not None and weights.numel() != self.num_entities:
                raise ValueError(f"{op}: 'weights' must have num_entities={self.num_entities} entries "
                                 f"(got {weights.numel()})")
        elif self.known is None:
            raise ValueError(f"{op}: popularity needs known=KnownSet(...) (to count occurrences) or weights=")
        self.weights = weights
        self._w: dict[str, torch.Tensor] = {}

    def _side_weights(self, side: str, E: int, device) -> torch.Tensor:
        key = f"{side}:{device}"
        if key not in self._w:
            if self.weights is not None:
                if self.weights.numel() != E:
                    raise ValueError(f"{self._op}: 'weights' has {self.weights.numel()} entries but the {side} side "
                                     f"has {E} ids (weights are for the destinations of a bipartite graph)")
                w = self.weights.to(device=device, dtype=torch.float64)
            else:
                col = 2 if side == "tail" else 0
                w = torch.bincount(self.known.triples()[:, col], minlength=E)[:E].to(device, torch.float64)
            self._w[key] = w.pow(self.alpha)
        return self._w[key]

    def _sample(self, P, scorer, generator):
        B, n, dev = P.shape[0], self.num_negatives, P.device
        ids = torch.full((B, n), -1, dtype=torch.int64, device=dev)
        logp = torch.full((B, n), float("-inf"), dtype=torch.float32, device=dev)
        row_side = self._row_sides(P, generator)
        gdev = generator_device(generator)
        fixed = isinstance(generator, SeedStream)
        for side, col, rows in side_groups(P, row_side):
            E = self._entities(scorer, side)
            w = self._side_weights(side, E, dev)
            anchor, target = anchors(P[rows], side)
            ptr, ex = exclusion_with_self(self.known, anchor, target, side)
            key = torch.unique(torch.repeat_interleave(torch.arange(rows.numel(), device=dev), ptr.diff()) * E + ex)
            r, ex = key // E, key % E  # each excluded (row, entity) once: the positive may also be known
            mass = w.sum() - torch.zeros(rows.numel(), dtype=torch.float64, device=dev).index_add_(0, r, w[ex])
            ok_row = mass > 1e-12 * w.sum().clamp_min(1e-300)
            got = torch.full((rows.numel(), n), -1, dtype=torch.int64, device=dev)
            if fixed:  # an explicit seed (torch.compile): every round draws every slot, the open ones take it
                for _ in range(self.max_tries):
                    draw = sample_from_weights(w[None, :], rows.numel() * n, replacement=True,
                                               generator=generator).view(rows.numel(), n)
                    bad = (draw < 0) | (draw == target[:, None])
                    if self.known is not None:
                        bad |= self.known.mask(anchor, draw.clamp_min(0), side=side)
                    got = torch.where((got < 0) & ok_row[:, None] & ~bad, draw, got)
            elif float(w.sum()) > 0:
                for _ in range(self.max_tries):
                    todo = (got < 0) & ok_row[:, None]
                    m = int(todo.sum())
                    if m == 0:
                        break
                    draw = torch.multinomial(w.to(gdev), m, replacement=True, generator=generator).to(dev)
                    tr = todo.nonzero()
                    bad = draw == target[tr[:, 0]]
                    if self.known is not None:
                        bad |= self.known.mask(anchor[tr[:, 0]], draw[:, None], side=side).squeeze(1)
                    got[tr[:, 0], tr[:, 1]] = torch.where(bad, -1, draw)
            short = ((got < 0).any(1) & ok_row).nonzero().flatten()
            if fixed or short.numel():  # exact: the admissible entities of these rows, enumerated
                wr = w[None, :].repeat(short.numel(), 1)
                sel = torch.isin(r, short)
                loc = torch.searchsorted(short, r[sel])
                wr[loc, ex[sel]] = 0.0
                fill = draw_with_replacement(wr, n, generator)
                g = got[short]
                got[short] = torch.where(g < 0, fill, g)
            valid = got >= 0
            lp = torch.log(w[got.clamp_min(0)]) - torch.log(mass.clamp_min(1e-300))[:, None]
            ids[rows] = got
            logp[rows] = torch.where(valid, lp, torch.full_like(lp, float("-inf"))).to(logp.dtype)
        return Negatives(ids, ids >= 0, logp, row_side)


@register("hardgnn")
class HardGNNSampler(_MiningSampler):
    """HardGNN's hard negatives: for each positive, the ``k`` entities most similar to the query (by ``metric``,
    cosine as in HardGNN) among those never seen with the anchor — fused :func:`hardneg.ops.topk_mine` with the
    anchor's known positives and the positive itself as ``exclude`` — in columns 0..k-1; filtered uniform
    negatives pad the slots of rows with fewer than k admissible entities and fill columns k..n-1 when
    ``k < num_negatives``. ``k`` defaults to ``num_negatives`` (all hard) and must not exceed it.

    For a recommender the query is the user's short-term (or sequence) embedding; the rec task hands the sampler
    a scorer built on it and adds HardGNN's InfoNCE term at weight λ (``infonce_weight``).

    ``candidates`` (M) sets where the k are mined:

    * ``None`` (default): the whole catalogue, so the k hard negatives are the k nearest unseen items overall.
      The hard columns are then a deterministic function of the scores (two seeds differ only in the uniform
      columns and in the sides drawn).
    * M: each call first draws M distinct ids uniformly (from ``generator``), shared by every row of the call,
      and mines the k nearest unseen items among them. HardGNN's released code does this with M = 300 (one
      random 300-item subset per batch, searched with FAISS). The k are then the nearest of a random M / E share
      of the catalogue: milder than the catalogue-wide nearest. On SASRec / Games this turns every cell of the
      K × λ grid from a loss into a win over uniform on full-ranking Recall@20 (K > 3 still loses the 1 + 100
      sampled protocol); on the SelfGNN-style model both lose (bench/RESULTS.md,
      "HardGNN with a candidate subset"). M >= E mines the whole catalogue. Rows with fewer than k admissible
      ids in the subset pad with uniform negatives, as above.

    Raises:
        TypeError: ``k`` or ``candidates`` not an int.
        ValueError: ``k`` > ``num_negatives`` or < 1, ``candidates`` < 1, an unknown ``metric``, ``candidates``
            with a row-sharded table (:class:`hardneg.distributed.ShardedCandidates`: the subset needs every row
            on each rank).
    """

    def __init__(self, *, k: int | None = None, metric: str = "cos", candidates: int | None = None, **kw):
        super().__init__(**kw)
        self.k = self.num_negatives if k is None else V.integer(self._op, "k", k, minimum=1)
        if self.k > self.num_negatives:
            raise ValueError(f"{self._op}: 'k' ({self.k}) must be <= num_negatives ({self.num_negatives})")
        self.metric = V.choice(self._op, "metric", metric, METRICS)
        self.candidates = None if candidates is None else V.integer(self._op, "candidates", candidates, minimum=1)

    def _sample(self, P, scorer, generator):
        ids, valid = self._alloc(P)
        n, k = self.num_negatives, self.k
        row_side = self._row_sides(P, generator)
        for side, col, rows in side_groups(P, row_side):
            _, _, q, C, ex = self._queries(P, rows, side, scorer)
            if self.candidates is not None and _sharded(C):
                raise ValueError(f"{self._op}: 'candidates' needs the whole candidate table on this rank (got a "
                                 f"row-sharded {type(C).__name__}); use candidates=None to mine the sharded table")
            if self.candidates is not None and self.candidates < C.shape[0]:
                sub = uniform((C.shape[0],), generator, C.device).argsort()[:self.candidates]
                _, h = topk_mine(q, C[sub], k, metric=self.metric, exclude=restrict_csr(ex, sub, C.shape[0]),
                                 backend=self.backend)
                hard = torch.where(h >= 0, sub[h.clamp_min(0)], h)
            else:
                _, hard = topk_mine(q, C, k, metric=self.metric, exclude=ex, backend=self.backend)
            neg, ok = corrupt(P[rows], n, self._entities(scorer, side), side=side, known=self.known,
                              num_relations=self.num_relations, generator=generator)
            uni = from_corrupt(P[rows], neg, ok, side)
            cols = torch.cat([hard, torch.full((rows.numel(), n - k), -1, dtype=torch.int64, device=P.device)], 1)
            take = cols >= 0
            ids[rows] = torch.where(take, cols, uni.ids)
            valid[rows] = take | uni.valid
        return Negatives(ids, valid, None, row_side)

