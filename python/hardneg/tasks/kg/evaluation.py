"""Filtered link-prediction evaluation (head and tail ranking against all entities).

For each test triple (h, r, t): the tail query (h, r, ?) scores every entity; every *other* known tail of
(h, r) (from the filter set, usually train + valid + test) is removed; the rank of t among what is left is
counted with a tie policy: ``"optimistic"`` (1 + #strictly better), ``"pessimistic"`` (1 + #better or equal,
other than t) or ``"realistic"`` (their mean, PyKEEN's default and ours). The head query (?, r, t) likewise.
MRR, MR and Hits@k average over both sides (and per side under ``"head"`` / ``"tail"``).

Computed in chunks of ``batch_size`` queries: memory is O(batch_size · E) scores plus the filter CSR rows of
the chunk from :class:`hardneg.KnownSet` (never a dense [queries × positives] mask).
"""
from __future__ import annotations

import torch

from ... import _validate as V
from ...known import KnownSet
from ...ops.mining import _sharded
from ...samplers.scorers import pairwise

TIES = ("optimistic", "pessimistic", "realistic")


def all_scores(q: torch.Tensor, C: torch.Tensor, metric: str) -> torch.Tensor:
    """[b, N] scores of queries against every candidate, in the model dtype (for ranking)."""
    if metric == "dot":
        return q @ C.T
    if metric == "cos":
        return pairwise(q[:, None, :], C[None], "cos")
    if metric == "l2":
        return -torch.cdist(q, C).pow(2)
    if metric == "l1":
        return -torch.cdist(q, C, p=1.0)
    out = torch.empty(q.shape[0], C.shape[0], dtype=q.dtype, device=q.device)
    step = max(1, (1 << 24) // max(1, q.shape[0] * q.shape[1]))
    for s in range(0, C.shape[0], step):
        out[:, s : s + step] = pairwise(q[:, None, :], C[None, s : s + step], metric)
    return out


@torch.no_grad()
def ranks(scorer, triples, filter_known: KnownSet | None, *, side="tail", batch_size=256, tie="realistic"):
    """Filtered ranks (float64 [M]) of the true entity for each triple on ``side``."""
    op = "ranks"
    tie = V.choice(op, "tie", tie, TIES)
    side = V.choice(op, "side", side, ("head", "tail"))
    batch_size = V.integer(op, "batch_size", batch_size, minimum=1)
    C = scorer.candidate_vectors(side)
    triples = _check_triples(op, scorer, triples, filter_known, C.shape[0])
    sharded = _sharded(C)  # a row-sharded table: every rank ranks the same triples against its own rows
    rows, lo = (C.local, C.lo) if sharded else (C, 0)
    V.finite(op, f"scorer.candidate_vectors({side!r})", rows)
    M = triples.shape[0]
    out = torch.empty(M, dtype=torch.float64)
    for s in range(0, M, batch_size):
        tr = triples[s : s + batch_size].to(rows.device)
        anchor, target = (tr[:, :2], tr[:, 2]) if side == "tail" else (tr[:, 1:], tr[:, 0])
        sc = all_scores(scorer.query_vectors(anchor, side), rows, scorer.metric).float()
        V.finite(op, "scores", sc)  # NaN scores would rank the true entity first (every comparison is False)
        here = (target >= lo) & (target < lo + sc.shape[1])  # the true entity is one of these columns
        col = (target - lo).clamp(0, max(0, sc.shape[1] - 1))[:, None]
        true = torch.where(here[:, None], sc.gather(1, col) if sc.shape[1] else sc.new_zeros(col.shape), 0.0)
        if sharded:
            true = C.all_reduce(true)  # exactly one rank holds it
        if filter_known is not None:
            ptr, idx = filter_known.exclusion(anchor.to(filter_known.device), side=side)
            row = torch.repeat_interleave(torch.arange(tr.shape[0], device=ptr.device), ptr.diff())
            keep = (idx >= lo) & (idx < lo + sc.shape[1])
            sc[row[keep].to(sc.device), (idx[keep] - lo).to(sc.device)] = float("-inf")
        sc[here.nonzero()[:, 0], col[here, 0]] = float("-inf")  # t itself never counts against itself
        better = (sc > true).sum(1).double()
        equal = (sc == true).sum(1).double()
        if sharded:
            better, equal = C.all_reduce(torch.stack([better, equal])).unbind(0)
        opt = 1.0 + better
        pes = 1.0 + better + equal
        r = opt if tie == "optimistic" else pes if tie == "pessimistic" else 0.5 * (opt + pes)
        out[s : s + tr.shape[0]] = r.cpu()
    return out


def _check_triples(op, scorer, triples, filter_known, E):
    """int64 [M, 3] triples whose entity ids index the scorer's E candidates and whose relation ids index its
    relations (when it says how many), and a filter set over the same entities."""
    triples = V.tensor(op, "triples", triples, ndim=2, dtypes=V.INDEX_DTYPES, kind="integer tensor",
                       what="of (h, r, t) [M, 3]")
    if triples.shape[1] != 3:
        raise ValueError(f"{op}: 'triples' must be an int64 [M, 3] tensor (got {V.describe(triples)})")
    R = getattr(scorer, "num_relations", None)
    R = R if isinstance(R, int) else filter_known.num_relations if filter_known is not None else None
    if filter_known is not None and filter_known.num_entities != E:
        raise ValueError(f"{op}: 'filter_known' has {filter_known.num_entities} entities but the scorer has {E} "
                         f"candidates")
    return V.ids(op, "triples", triples, [E, R, E], what=("entity ids", "relation ids", "entity ids"))


def metrics_from_ranks(r: torch.Tensor, ks=(1, 3, 10)) -> dict:
    if r.numel() == 0:
        return {"mrr": float("nan"), "mr": float("nan"), **{f"hits@{k}": float("nan") for k in ks}, "count": 0}
    d = {"mrr": float((1.0 / r).mean()), "mr": float(r.mean())}
    for k in ks:
        d[f"hits@{k}"] = float((r <= k).double().mean())
    d["count"] = int(r.numel())
    return d


def inverse_triples(triples: torch.Tensor, num_relations: int) -> torch.Tensor:
    """(t, r + R, h) for each (h, r, t): the reciprocal triples (relation ids R..2R-1 are the inverses)."""
    return torch.stack([triples[:, 2], triples[:, 1] + num_relations, triples[:, 0]], 1)


@torch.no_grad()
def evaluate(scorer, triples, filter_known: KnownSet | None, *, batch_size=256, tie="realistic",
             sides=("head", "tail"), ks=(1, 3, 10), reciprocal: bool = False) -> dict:
    """Filtered MRR, MR and Hits@k over head and tail queries: ``{"mrr", "mr", "hits@1", "hits@3",
    "hits@10", "count", "tie", "head": {...}, "tail": {...}}``. ``filter_known=None`` gives raw ranks.

    ``reciprocal=True`` (a model trained with inverse relations, ``triples`` holding the original relation ids
    < R and the model and ``filter_known`` 2R): the head query (?, r, t) is asked as the tail query
    (t, r + R, ?), as the model was trained to answer it."""
    if isinstance(ks, (str, bytes)) or not isinstance(ks, (tuple, list)):
        raise TypeError(f"evaluate: 'ks' must be a tuple of ints >= 1 (got {V.describe(ks)})")
    for k in ks:
        V.integer("evaluate", "ks", k, minimum=1)
    per = side_ranks(scorer, triples, filter_known, batch_size=batch_size, tie=tie, sides=sides,
                     reciprocal=reciprocal)
    return summarize(per, tie, ks)


@torch.no_grad()
def side_ranks(scorer, triples, filter_known: KnownSet | None, *, batch_size=256, tie="realistic",
               sides=("head", "tail"), reciprocal: bool = False) -> dict:
    """``{side: float64 [M] filtered ranks}`` for :func:`evaluate` (arguments as there); the ranks of a split's
    slices, concatenated in order, are the ranks of the whole split (sharded evaluation)."""
    op = "evaluate"
    V.tensor(op, "triples", triples, ndim=2, dtypes=V.INDEX_DTYPES, kind="integer tensor", what="of (h, r, t) [M, 3]")
    if triples.shape[1] != 3:
        raise ValueError(f"evaluate: 'triples' must be an int64 [M, 3] tensor (got {V.describe(triples)})")
    V.integer(op, "batch_size", batch_size, minimum=1)
    V.choice(op, "tie", tie, TIES)
    if isinstance(sides, str) or not isinstance(sides, (tuple, list)) or not sides:
        raise TypeError(f"{op}: 'sides' must be a non-empty tuple of 'head' / 'tail' (got {V.describe(sides)})")
    for s_ in sides:
        V.choice(op, "sides", s_, ("head", "tail"))
    if filter_known is not None and not isinstance(filter_known, KnownSet):
        raise TypeError(f"evaluate: 'filter_known' must be a hardneg.KnownSet or None (got {V.describe(filter_known)})")
    if not isinstance(reciprocal, bool):
        raise TypeError(f"evaluate: 'reciprocal' must be a bool (got {V.describe(reciprocal)})")
    if bool(getattr(scorer, "reciprocal", False)) != reciprocal:
        raise ValueError("evaluate: the model was trained with reciprocal relations; pass reciprocal=True (head "
                         "queries use the inverse relations)" if not reciprocal else
                         "evaluate: reciprocal=True needs a model trained with reciprocal relations "
                         "(model.reciprocal is False)")
    was = getattr(scorer, "training", None)
    if was is not None:
        scorer.eval()
    try:
        if reciprocal:
            R = scorer.num_relations // 2
            V.ids(op, "triples[:, 1]", triples[:, 1], R, what="relation ids (the inverses are added here)")
            per = {s: ranks(scorer, triples if s == "tail" else inverse_triples(triples, R), filter_known,
                            side="tail", batch_size=batch_size, tie=tie) for s in sides}
        else:
            per = {s: ranks(scorer, triples, filter_known, side=s, batch_size=batch_size, tie=tie) for s in sides}
    finally:
        if was:
            scorer.train()
    return per


def summarize(per: dict, tie: str, ks=(1, 3, 10)) -> dict:
    """:func:`evaluate`'s dict from the per-side ranks of :func:`side_ranks`."""
    out = metrics_from_ranks(torch.cat(list(per.values())), ks)
    out["tie"] = tie
    for s, r in per.items():
        out[s] = metrics_from_ranks(r, ks)
    return out
