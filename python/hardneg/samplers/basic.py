"""Samplers that need no scorer: uniform, Bernoulli, type-constrained (all over ``ops.corrupt``), in-batch.

>>> import torch, hardneg
>>> from hardneg import samplers
>>> known = hardneg.KnownSet.from_triples(torch.tensor([[0, 0, 1], [0, 0, 2]]), 4, 1)
>>> s = samplers.create("uniform", num_negatives=3, known=known, side="tail")
>>> neg = s.sample(torch.tensor([[0, 0, 1]]), generator=torch.Generator().manual_seed(0))
>>> neg.ids.tolist(), neg.valid.tolist()    # tails 1 and 2 are known: only 0 and 3 are admissible
([[0, 0, 0]], [[True, True, True]])
"""
from __future__ import annotations

import torch

from .. import _validate as V
from ..known import Domain
from ..ops import corrupt
from .._random import SeedStream, generator_device, uniform
from ..metrics import anchors
from .base import Negatives, Sampler, draw_with_replacement, register, side_groups


class _CorruptSampler(Sampler):
    _forced_side_mode: str | None = None

    def __init__(self, *, max_tries: int = 32, **kw):
        super().__init__(**kw)
        self.max_tries = V.integer(self._op, "max_tries", max_tries, minimum=1)

    def _domain(self, P):
        return None

    def _sample(self, P, scorer, generator):
        side_mode = self._forced_side_mode or self._side_mode(P)
        if self._bipartite() and side_mode not in ("tail", "head"):  # heads and tails from their own id spaces
            return self._per_side(P, scorer, generator)
        E = self._entities(scorer, "head" if side_mode == "head" else "tail")
        neg, valid = corrupt(P, self.num_negatives, E, side=side_mode, known=self.known, domain=self._domain(P),
                             num_relations=self.num_relations, generator=generator, max_tries=self.max_tries)
        return from_corrupt(P, neg, valid, side_mode)

    def _per_side(self, P, scorer, generator):
        row_side = self._row_sides(P, generator)
        ids = torch.full((P.shape[0], self.num_negatives), -1, dtype=torch.int64, device=P.device)
        valid = torch.zeros(ids.shape, dtype=torch.bool, device=P.device)
        for side, col, rows in side_groups(P, row_side):
            neg, ok = corrupt(P[rows], self.num_negatives, self._entities(scorer, side), side=side, known=self.known,
                              domain=self._domain(P), num_relations=self.num_relations, generator=generator,
                              max_tries=self.max_tries)
            ids[rows], valid[rows] = from_corrupt(P[rows], neg, ok, side).ids, ok
        return Negatives(ids, valid, None, row_side)


def from_corrupt(P: torch.Tensor, neg: torch.Tensor, valid: torch.Tensor, side_mode: str) -> Negatives:
    """Negatives from ``ops.corrupt`` output: the replaced entity and which column was replaced."""
    tail = P.shape[1] - 1
    if side_mode == "tail":
        return Negatives(neg[..., tail], valid, None, None)
    if side_mode == "head":
        return Negatives(neg[..., 0], valid, None, torch.zeros(P.shape[0], dtype=torch.int64, device=P.device))
    side = torch.where(neg[..., 0] != P[:, None, 0], 0, tail).to(torch.int64)
    ids = torch.where(side == 0, neg[..., 0], neg[..., tail])
    return Negatives(ids, valid, None, side)


@register("uniform")
class UniformSampler(_CorruptSampler):
    """Uniform corruption of the head or tail (per ``side``), filtered by ``known``: exactly uniform over the
    admissible entities (bounded rejection, then exact enumeration; see :func:`hardneg.ops.corrupt`)."""


@register("bernoulli")
class BernoulliSampler(_CorruptSampler):
    """Bernoulli corruption (Wang et al. 2014): replace the head with probability tph / (tph + hpt) of the
    relation, computed from ``known`` (required), otherwise the tail; filtered and uniform over admissible ids."""

    _forced_side_mode = "bernoulli"

    def __init__(self, **kw):
        super().__init__(**kw)
        # the side is what this sampler chooses: an explicit other side would be silently ignored
        if self.side not in (None, "bernoulli"):
            raise ValueError(f"{self._op}: 'side' is chosen per relation by Bernoulli sampling; pass side=None or "
                             f"'bernoulli' (got {self.side!r}; for a fixed side use the 'uniform' sampler)")

    def _sample(self, P, scorer, generator):
        if self.known is None or self.known.kind != "triples":
            raise ValueError(f"{self._op}: Bernoulli sampling needs known=KnownSet.from_triples(train, ...) to "
                             f"compute tph/hpt per relation")
        return super()._sample(P, scorer, generator)


@register("typed")
class TypedSampler(_CorruptSampler):
    """Type-constrained corruption: a replacement head (tail) is drawn only from the entities seen as heads
    (tails) of that relation. The domain comes from ``domain=`` (a :class:`hardneg.Domain`) or, by default, from
    the triples in ``known`` (required then). Filtered; rows whose admissible domain is empty are invalid."""

    def __init__(self, *, domain: Domain | None = None, **kw):
        super().__init__(**kw)
        self.domain = domain

    def _domain(self, P):
        if self.domain is None:
            if self.known is None or self.known.kind != "triples":
                raise ValueError(f"{self._op}: type-constrained sampling needs domain=... or "
                                 f"known=KnownSet.from_triples(train, ...)")
            self.domain = self.known.domain()
        return self.domain


@register("in_batch")
class InBatchSampler(Sampler):
    """In-batch negatives: the replacement entity is the same-side entity of another positive of the batch
    (each other row equally likely, i.i.d.), skipping known positives and the row's own entity.

    Cheap (no extra embeddings to look up beyond the batch). Exact: draws are rejected against ``known`` a few
    rounds, then rows still short enumerate the admissible rows of the batch and draw from them; a row is
    invalid only when no other positive of the batch gives an admissible negative (e.g. B = 1).
    """

    def __init__(self, *, rounds: int = 2, **kw):
        super().__init__(**kw)
        self.rounds = V.integer(self._op, "rounds", rounds, minimum=0)

    def _admissible(self, P, rows, side, cand_ent):
        anchor, target = anchors(P[rows], side)
        ok = cand_ent != target[:, None]
        if self.known is not None:
            ok &= ~self.known.mask(anchor, cand_ent, side=side)
        return ok

    def _sample(self, P, scorer, generator):
        B, n, dev = P.shape[0], self.num_negatives, P.device
        tailc = P.shape[1] - 1
        row_side = self._row_sides(P, generator)
        ids = torch.full((B, n), -1, dtype=torch.int64, device=dev)
        valid = torch.zeros(B, n, dtype=torch.bool, device=dev)
        if B < 2:
            return Negatives(ids, valid, None, row_side)
        fixed = isinstance(generator, SeedStream)
        for side, col, rows in side_groups(P, row_side):
            pool = P[:, col]
            got_ids = torch.full((rows.numel(), n), -1, dtype=torch.int64, device=dev)
            got = torch.zeros(rows.numel(), dtype=torch.int64, device=dev)
            m = 2 * n + 8
            for _ in range(self.rounds):
                j = (uniform((rows.numel(), m), generator, dev) * (B - 1)).long().clamp_max(B - 2)
                j = j + (j >= rows[:, None]).long()  # skip the row itself
                ent = pool[j]
                ok = self._admissible(P, rows, side, ent)
                # keep the first (n - got) admissible draws of each row, in draw order
                rank = ok.long().cumsum(1) - 1 + got[:, None]
                keep = ok & (rank < n)
                r_idx = torch.arange(rows.numel(), device=dev)[:, None].expand_as(keep)
                got_ids[r_idx[keep], rank[keep]] = ent[keep]
                got = (got + keep.sum(1)).clamp_max(n)
                if not fixed and bool((got >= n).all()):
                    break
            # an explicit seed (torch.compile) does fixed work: every round, and the fallback for every row
            short = torch.arange(rows.numel(), device=dev) if fixed else (got < n).nonzero().flatten()
            if fixed or short.numel():  # exact fallback: enumerate the batch for these rows
                cand = pool[None, :].expand(short.numel(), B)
                ok = self._admissible(P, rows[short], side, cand)
                ok[torch.arange(short.numel(), device=dev), rows[short]] = False
                has = ok.any(1)
                w = ok.double()
                w[~has] = 1.0
                draw = draw_with_replacement(w, n, generator)
                fill = pool[draw]
                pos = torch.arange(n, device=dev)[None, :] >= got[short][:, None]
                cur = got_ids[short]
                cur = torch.where(pos, fill, cur)
                cur = torch.where(~has[:, None] & pos, -1, cur)
                got_ids[short] = cur
                got[short] = torch.where(has, n, got[short])
            ids[rows] = got_ids
            valid[rows] = got_ids >= 0
        return Negatives(ids, valid, None, row_side)
