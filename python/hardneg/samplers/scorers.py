"""The concrete scorers: DistMult, ComplEx, TransE, RotatE and plain embeddings.

The protocol (``query_vectors``, ``candidate_vectors``, ``metric``) and the :class:`Scorer` base class live in
:mod:`hardneg.metrics`, below the samplers, so models and evaluation use them without importing upward;
``Scorer`` and ``pairwise`` are re-exported here (``hardneg.samplers.Scorer``, ``hardneg.samplers.pairwise``).
"""
from __future__ import annotations

import torch

from .. import _validate as V
from .._constants import METRICS, SIDES
from ..metrics import Scorer, complex_mul, pairwise
from ..ops.mining import _sharded

__all__ = ["Scorer", "pairwise", "DistMultScorer", "ComplExScorer", "TransEScorer", "RotatEScorer",
           "EmbeddingScorer"]

_complex_mul = complex_mul  # the models' import name until they move to hardneg.metrics
Table = torch.Tensor | torch.nn.Embedding  # a weight table, or the Embedding holding it


def _side(op, side):
    return V.choice(op, "side", side, SIDES)


def _weight(op, name, w, ndim=2):
    """A floating weight table, or a :class:`hardneg.distributed.ShardedCandidates` (rows split across ranks:
    mining over it is sharded, and rows gathered by id are assembled with one all-reduce)."""
    if _sharded(w):
        return w
    return V.floating(op, name, w, ndim, "")


def _as_table(w):
    return w.weight if isinstance(w, torch.nn.Embedding) else w


class _KGScorer(Scorer):
    def __init__(self, entity_weight: Table, relation_weight: Table):
        op = type(self).__name__
        self.entity_weight = _weight(op, "entity_weight", _as_table(entity_weight))
        self.relation_weight = _weight(op, "relation_weight", _as_table(relation_weight))
        V.same_device(op, ("entity_weight", "relation_weight"), self.entity_weight, self.relation_weight)

    def candidate_vectors(self, side: str = "tail") -> torch.Tensor:
        return self.entity_weight

    def _split(self, anchor, side):
        side = _side(type(self).__name__, side)
        if anchor.dim() != 2 or anchor.shape[1] != 2:
            raise ValueError(f"{type(self).__name__}.query_vectors: 'anchor' must be [B, 2] ((h, r) for the tail "
                             f"side, (r, t) for the head side) (got {V.describe(anchor)})")
        E, R = self.entity_weight.shape[0], self.relation_weight.shape[0]
        V.tensor(f"{type(self).__name__}.query_vectors", "anchor", anchor, dtypes=V.INDEX_DTYPES,
                 kind="integer tensor")
        anchor = V.ids(f"{type(self).__name__}.query_vectors", "anchor", anchor, [E, R] if side == "tail" else [R, E],
                       what=("entity ids", "relation ids") if side == "tail" else ("relation ids", "entity ids"))
        if side == "tail":
            return side, self.entity_weight[anchor[:, 0]], self.relation_weight[anchor[:, 1]]
        return side, self.entity_weight[anchor[:, 1]], self.relation_weight[anchor[:, 0]]


class DistMultScorer(_KGScorer):
    """DistMult: score(h, r, t) = Σ e_h ⊙ w_r ⊙ e_t (metric ``dot``; query e_h ⊙ w_r or e_t ⊙ w_r)."""

    metric = "dot"

    def query_vectors(self, anchor: torch.Tensor, side: str = "tail") -> torch.Tensor:
        side, e, r = self._split(anchor, side)
        return e * r


class ComplExScorer(_KGScorer):
    """ComplEx: score = Re(Σ e_h · w_r · conj(e_t)). Weights are real tables [n, 2d] laid out [Re | Im].

    Tail query: e_h · w_r; head query: conj(w_r) · e_t (both against [Re | Im] candidates with ``dot``)."""

    metric = "dot"

    def __init__(self, entity_weight: Table, relation_weight: Table):
        super().__init__(entity_weight, relation_weight)
        for name, w in (("entity_weight", self.entity_weight), ("relation_weight", self.relation_weight)):
            if w.shape[1] % 2:
                raise ValueError(f"ComplExScorer: '{name}' must have an even width [Re | Im] (got {V.describe(w)})")

    def query_vectors(self, anchor: torch.Tensor, side: str = "tail") -> torch.Tensor:
        side, e, r = self._split(anchor, side)
        if side == "tail":
            return complex_mul(e, r)
        return complex_mul(e, r, conj_b=True)  # e_t · conj(w_r)


class TransEScorer(_KGScorer):
    """TransE: score = −‖e_h + w_r − e_t‖ with p = 1 (metric ``l1``, exact) or p = 2 (metric ``l2``, which is the
    *squared* distance: the same ranking as the L2 norm, and the score the model trains with).

    Tail query: e_h + w_r; head query: e_t − w_r."""

    def __init__(self, entity_weight: Table, relation_weight: Table,
                 p: int = 1):
        super().__init__(entity_weight, relation_weight)
        if p not in (1, 2):
            raise ValueError(f"TransEScorer: 'p' must be 1 or 2 (got {p!r})")
        self.p = p
        self.metric = "l1" if p == 1 else "l2"

    def query_vectors(self, anchor: torch.Tensor, side: str = "tail") -> torch.Tensor:
        side, e, r = self._split(anchor, side)
        return e + r if side == "tail" else e - r


class RotatEScorer(_KGScorer):
    """RotatE: score = −Σⱼ |e_h,j · exp(iθ_r,j) − e_t,j| (metric ``rotate``). ``entity_weight`` is [E, 2d]
    ([Re | Im]); ``relation_weight`` holds the phases θ [R, d]. Tail query e_h ∘ r; head query e_t ∘ conj(r)
    (|r| = 1, so ‖h∘r − t‖ = ‖h − t∘r̄‖). The margin γ of the RotatE loss is a constant shift and lives in the loss."""

    metric = "rotate"

    def __init__(self, entity_weight: Table, relation_weight: Table):
        super().__init__(entity_weight, relation_weight)
        if self.entity_weight.shape[1] != 2 * self.relation_weight.shape[1]:
            raise ValueError("RotatEScorer: 'entity_weight' must be [E, 2d] and 'relation_weight' (phases) [R, d] "
                             f"(got {V.describe(self.entity_weight)} and {V.describe(self.relation_weight)})")

    def query_vectors(self, anchor: torch.Tensor, side: str = "tail") -> torch.Tensor:
        side, e, theta = self._split(anchor, side)
        rot = torch.cat([torch.cos(theta), torch.sin(theta)], -1)
        return complex_mul(e, rot, conj_b=(side == "head"))


class EmbeddingScorer(Scorer):
    """Plain graphs and recommenders: score(u, v) = metric(node_weight[u], candidate_weight[v]).

    ``candidate_weight`` defaults to ``node_weight`` (a homogeneous graph); give an item table for a
    user–item recommender: ``node_weight`` [U, d] (sources) and ``candidate_weight`` [I, d] (destinations) are
    separate id spaces of any sizes (U > I or U < I), matching a bipartite
    ``KnownSet.from_edges(edges, num_sources=U, num_destinations=I)``. Anchors are ``[B]`` ids, or ``[B, 2]``
    pairs (the column not being replaced is used). For the head side the roles swap: queries come from
    ``candidate_weight`` and candidates from ``node_weight``.

    Example (BPR matrix factorisation with more users than items):
        >>> import torch, hardneg
        >>> from hardneg import samplers
        >>> train = torch.tensor([[0, 1], [5, 0], [9, 2]])
        >>> known = hardneg.KnownSet.from_edges(train, num_sources=10, num_destinations=3)
        >>> scorer = samplers.EmbeddingScorer(torch.randn(10, 8), "dot", torch.randn(3, 8))
        >>> neg = samplers.create("topk", num_negatives=2, known=known).sample(train, scorer=scorer)
        >>> bool((neg.ids[neg.valid] < 3).all())
        True
    """

    def __init__(self, node_weight: Table, metric: str = "dot",
                 candidate_weight: Table | None = None):
        op = "EmbeddingScorer"
        self.node_weight = _weight(op, "node_weight", _as_table(node_weight))
        self.candidate_weight = self.node_weight if candidate_weight is None else _weight(
            op, "candidate_weight", _as_table(candidate_weight))
        V.same_device(op, ("node_weight", "candidate_weight"), self.node_weight, self.candidate_weight)
        if self.node_weight.shape[1] != self.candidate_weight.shape[1]:
            raise ValueError(f"{op}: 'node_weight' and 'candidate_weight' must have the same width "
                             f"(got {V.describe(self.node_weight)} and {V.describe(self.candidate_weight)})")
        self.metric = V.choice(op, "metric", metric, METRICS)

    def query_vectors(self, anchor: torch.Tensor, side: str = "tail") -> torch.Tensor:
        side = _side("EmbeddingScorer", side)
        if anchor.dim() == 2:
            anchor = anchor[:, 0] if side == "tail" else anchor[:, -1]
        table = self.node_weight if side == "tail" else self.candidate_weight
        V.tensor("EmbeddingScorer.query_vectors", "anchor", anchor, dtypes=V.INDEX_DTYPES, kind="integer tensor")
        return table[V.ids("EmbeddingScorer.query_vectors", "anchor", anchor, table.shape[0], what="node ids")]

    def candidate_vectors(self, side: str = "tail") -> torch.Tensor:
        return self.candidate_weight if _side("EmbeddingScorer", side) == "tail" else self.node_weight

    @property
    def num_sources(self) -> int:
        return self.node_weight.shape[0]

    @property
    def num_destinations(self) -> int:
        return self.candidate_weight.shape[0]
