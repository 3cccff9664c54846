"""The scorer protocol: how a hard sampler sees a model.

A scorer exposes, for a side (``"tail"``: replace the tail of (h, r, ?); ``"head"``: replace the head of
(?, r, t)):

* ``query_vectors(anchor [B, 2], side) -> [B, d']``: anchor is (h, r) for the tail side and (r, t) for the
  head side (the convention of :meth:`hardneg.KnownSet.exclusion`); for a plain graph or a recommender the
  anchor may be ``[B]`` node / user ids;
* ``candidate_vectors(side) -> [N, d']``;
* ``metric``: one of the metrics :func:`hardneg.ops.topk_mine` knows,

such that ``score(anchor, c) == metric(query_vectors(anchor), candidate_vectors()[c])`` exactly. Hard samplers
mine with the model's own score, fused, never with a proxy. :func:`pairwise` evaluates a metric
differentiably in the model's dtype, so a model built on a scorer scores its training triples with exactly the
function the miner ranks by.
"""
from __future__ import annotations

import torch

from .. import _validate as V

SIDES = ("tail", "head")
COS_EPS = 1e-12


def pairwise(query: torch.Tensor, cand: torch.Tensor, metric: str) -> torch.Tensor:
    """metric(query[..., :], cand[..., :]) over the last dim, broadcasting (differentiable).

    dot: q·c; cos: q·c/(max|q|,eps)(max|c|,eps); l2: −|q−c|²; l1: −|q−c|₁; rotate: rows are complex
    [Re | Im], −Σⱼ|qⱼ−cⱼ|. Identical to the definitions :func:`hardneg.ops.topk_mine` uses.
    """
    if metric == "dot":
        return (query * cand).sum(-1)
    if metric == "cos":
        qn = query / query.norm(dim=-1, keepdim=True).clamp_min(COS_EPS)
        cn = cand / cand.norm(dim=-1, keepdim=True).clamp_min(COS_EPS)
        return (qn * cn).sum(-1)
    if metric == "l2":
        return -(query - cand).pow(2).sum(-1)
    if metric == "l1":
        return -(query - cand).abs().sum(-1)
    if metric == "rotate":
        m = query.shape[-1] // 2
        diff = query - cand
        re, im = diff[..., :m], diff[..., m:]
        # sqrt with a tiny floor: |z| has an infinite gradient at z = 0
        return -torch.sqrt(re * re + im * im + 1e-18).sum(-1)
    raise ValueError(f"pairwise: unknown metric {metric!r} (known: {list(V.METRICS)})")


def _side(op, side):
    return V.choice(op, "side", side, SIDES)


def _complex_mul(a, b, conj_b=False):
    m = a.shape[-1] // 2
    ar, ai, br, bi = a[..., :m], a[..., m:], b[..., :m], b[..., m:]
    if conj_b:
        bi = -bi
    return torch.cat([ar * br - ai * bi, ar * bi + ai * br], -1)


class Scorer:
    """Base class: subclasses define ``metric``, ``query_vectors`` and ``candidate_vectors``.

    Derived helpers (used by the samplers, the losses' callers and the models):

    * ``score_positives(positives [B, 3]) -> [B]``;
    * ``score_candidates(anchor, ids [B, n], side) -> [B, n]``;
    * ``score_negatives(positives, negatives) -> [B, n]`` for a :class:`hardneg.samplers.Negatives`.
    """

    metric: str = "dot"

    def query_vectors(self, anchor: torch.Tensor, side: str = "tail") -> torch.Tensor:
        raise NotImplementedError

    def candidate_vectors(self, side: str = "tail") -> torch.Tensor:
        raise NotImplementedError

    @property
    def num_candidates(self) -> int:
        return self.candidate_vectors("tail").shape[0]

    @property
    def device(self) -> torch.device:
        return self.candidate_vectors("tail").device

    def score_candidates(self, anchor, ids, side="tail") -> torch.Tensor:
        q = self.query_vectors(anchor, side)
        c = self.candidate_vectors(side)[ids.clamp_min(0)]
        return pairwise(q[:, None, :], c, self.metric)

    def score_positives(self, positives: torch.Tensor) -> torch.Tensor:
        anchor, target = _tail_anchor(positives)
        q = self.query_vectors(anchor, "tail")
        return pairwise(q, self.candidate_vectors("tail")[target], self.metric)

    def score_negatives(self, positives: torch.Tensor, negatives) -> torch.Tensor:
        """Scores [B, n] of the corrupted triples/pairs ``negatives`` (invalid slots get an arbitrary finite
        score; mask them with ``negatives.valid``)."""
        ids = negatives.ids.clamp_min(0)
        side = negatives.side
        tail_col = positives.shape[1] - 1
        if side is None:
            return self.score_candidates(_tail_anchor(positives)[0], ids, "tail")
        qt = self.query_vectors(_tail_anchor(positives)[0], "tail")
        qh = self.query_vectors(_head_anchor(positives)[0], "head")
        s = side if side.dim() == 2 else side[:, None].expand_as(ids)
        is_tail = (s == tail_col)[..., None]
        q = torch.where(is_tail, qt[:, None, :], qh[:, None, :])
        # tail and head candidates are the same table for every scorer here; read it once per side anyway
        ct, ch = self.candidate_vectors("tail"), self.candidate_vectors("head")
        c = ct[ids] if ct is ch else torch.where(is_tail, ct[ids], ch[ids])
        return pairwise(q, c, self.metric)


def _tail_anchor(p):
    if p.shape[1] == 3:
        return p[:, :2], p[:, 2]
    return p[:, 0], p[:, 1]


def _head_anchor(p):
    if p.shape[1] == 3:
        return p[:, 1:], p[:, 0]
    return p[:, 1], p[:, 0]


def _weight(op, name, w, ndim=2):
    w = V.floating(op, name, w, ndim, "")
    return w


def _as_table(w):
    return w.weight if isinstance(w, torch.nn.Embedding) else w


class _KGScorer(Scorer):
    def __init__(self, entity_weight, relation_weight):
        op = type(self).__name__
        self.entity_weight = _weight(op, "entity_weight", _as_table(entity_weight))
        self.relation_weight = _weight(op, "relation_weight", _as_table(relation_weight))
        V.same_device(op, ("entity_weight", "relation_weight"), self.entity_weight, self.relation_weight)

    def candidate_vectors(self, side="tail"):
        return self.entity_weight

    def _split(self, anchor, side):
        side = _side(type(self).__name__, side)
        if anchor.dim() != 2 or anchor.shape[1] != 2:
            raise ValueError(f"{type(self).__name__}.query_vectors: 'anchor' must be [B, 2] ((h, r) for the tail "
                             f"side, (r, t) for the head side) (got {V.describe(anchor)})")
        if side == "tail":
            return side, self.entity_weight[anchor[:, 0]], self.relation_weight[anchor[:, 1]]
        return side, self.entity_weight[anchor[:, 1]], self.relation_weight[anchor[:, 0]]


class DistMultScorer(_KGScorer):
    """DistMult: score(h, r, t) = Σ e_h ⊙ w_r ⊙ e_t (metric ``dot``; query e_h ⊙ w_r or e_t ⊙ w_r)."""

    metric = "dot"

    def query_vectors(self, anchor, side="tail"):
        side, e, r = self._split(anchor, side)
        return e * r


class ComplExScorer(_KGScorer):
    """ComplEx: score = Re(Σ e_h · w_r · conj(e_t)). Weights are real tables [n, 2d] laid out [Re | Im].

    Tail query: e_h · w_r; head query: conj(w_r) · e_t (both against [Re | Im] candidates with ``dot``)."""

    metric = "dot"

    def __init__(self, entity_weight, relation_weight):
        super().__init__(entity_weight, relation_weight)
        for name, w in (("entity_weight", self.entity_weight), ("relation_weight", self.relation_weight)):
            if w.shape[1] % 2:
                raise ValueError(f"ComplExScorer: '{name}' must have an even width [Re | Im] (got {V.describe(w)})")

    def query_vectors(self, anchor, side="tail"):
        side, e, r = self._split(anchor, side)
        if side == "tail":
            return _complex_mul(e, r)
        return _complex_mul(e, r, conj_b=True)  # e_t · conj(w_r)


class TransEScorer(_KGScorer):
    """TransE: score = −‖e_h + w_r − e_t‖ with p = 1 (metric ``l1``, exact) or p = 2 (metric ``l2``, which is the
    *squared* distance: the same ranking as the L2 norm, and the score the model trains with).

    Tail query: e_h + w_r; head query: e_t − w_r."""

    def __init__(self, entity_weight, relation_weight, p: int = 1):
        super().__init__(entity_weight, relation_weight)
        if p not in (1, 2):
            raise ValueError(f"TransEScorer: 'p' must be 1 or 2 (got {p!r})")
        self.p = p
        self.metric = "l1" if p == 1 else "l2"

    def query_vectors(self, anchor, side="tail"):
        side, e, r = self._split(anchor, side)
        return e + r if side == "tail" else e - r


class RotatEScorer(_KGScorer):
    """RotatE: score = −Σⱼ |e_h,j · exp(iθ_r,j) − e_t,j| (metric ``rotate``). ``entity_weight`` is [E, 2d]
    ([Re | Im]); ``relation_weight`` holds the phases θ [R, d]. Tail query e_h ∘ r; head query e_t ∘ conj(r)
    (|r| = 1, so ‖h∘r − t‖ = ‖h − t∘r̄‖). The margin γ of the RotatE loss is a constant shift and lives in the loss."""

    metric = "rotate"

    def __init__(self, entity_weight, relation_weight):
        super().__init__(entity_weight, relation_weight)
        if self.entity_weight.shape[1] != 2 * self.relation_weight.shape[1]:
            raise ValueError("RotatEScorer: 'entity_weight' must be [E, 2d] and 'relation_weight' (phases) [R, d] "
                             f"(got {V.describe(self.entity_weight)} and {V.describe(self.relation_weight)})")

    def query_vectors(self, anchor, side="tail"):
        side, e, theta = self._split(anchor, side)
        rot = torch.cat([torch.cos(theta), torch.sin(theta)], -1)
        return _complex_mul(e, rot, conj_b=(side == "head"))


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

    def __init__(self, node_weight, metric: str = "dot", candidate_weight=None):
        op = "EmbeddingScorer"
        self.node_weight = _weight(op, "node_weight", _as_table(node_weight))
        self.candidate_weight = self.node_weight if candidate_weight is None else _weight(
            op, "candidate_weight", _as_table(candidate_weight))
        V.same_device(op, ("node_weight", "candidate_weight"), self.node_weight, self.candidate_weight)
        if self.node_weight.shape[1] != self.candidate_weight.shape[1]:
            raise ValueError(f"{op}: 'node_weight' and 'candidate_weight' must have the same width "
                             f"(got {V.describe(self.node_weight)} and {V.describe(self.candidate_weight)})")
        self.metric = V.choice(op, "metric", metric, V.METRICS)

    def query_vectors(self, anchor, side="tail"):
        side = _side("EmbeddingScorer", side)
        if anchor.dim() == 2:
            anchor = anchor[:, 0] if side == "tail" else anchor[:, -1]
        return (self.node_weight if side == "tail" else self.candidate_weight)[anchor]

    def candidate_vectors(self, side="tail"):
        return self.candidate_weight if _side("EmbeddingScorer", side) == "tail" else self.node_weight

    @property
    def num_sources(self) -> int:
        return self.node_weight.shape[0]

    @property
    def num_destinations(self) -> int:
        return self.candidate_weight.shape[0]
