"""The one pairwise-score implementation, and the scorer protocol built on it.

Metrics (larger score = more similar = harder negative), the definitions every kernel implements:

* ``"dot"``: q·c;
* ``"cos"``: q·c / (max(|q|, ε) max(|c|, ε)) with ε = :data:`COS_EPS`, as ``torch.nn.functional.normalize``;
* ``"l2"``: −|q − c|² (squared Euclidean distance, negated);
* ``"l1"``: −|q − c|₁;
* ``"rotate"``: rows are complex vectors [Re | Im]; −Σⱼ |qⱼ − cⱼ| (modulus per complex dimension).

:func:`pairwise` scores matching rows (differentiable, broadcasting); :func:`score_matrix` scores every query
against every candidate, chunked, in the dtype asked for (the references use float64, ranking the model's
dtype). Both follow the definitions above; :func:`score_matrix` takes the matrix forms (matmul, ``cdist``)
where a metric has one.

The scorer protocol: how a sampler, a model and an evaluation see the same score. A scorer exposes, for a
side (``"tail"``: replace the tail of (h, r, ?); ``"head"``: replace the head of (?, r, t)):

* ``query_vectors(anchor [B, 2], side) -> [B, d']``: anchor is (h, r) for the tail side and (r, t) for the
  head side (the convention of :meth:`hardneg.KnownSet.exclusion`, see :func:`anchors`); for a plain graph or
  a recommender the anchor may be ``[B]`` node / user ids;
* ``candidate_vectors(side) -> [N, d']``;
* ``metric``: one of the metrics above,

such that ``score(anchor, c) == pairwise(query_vectors(anchor), candidate_vectors()[c], metric)``. Hard samplers
mine with the model's own score, fused, never with a proxy.

Example:
    >>> import torch
    >>> from hardneg.metrics import pairwise, score_matrix
    >>> q, c = torch.tensor([[1.0, 0.0]]), torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    >>> score_matrix(q, c, "l2").tolist()
    [[-0.0, -5.0]]
    >>> pairwise(q, c[1:], "dot").tolist()
    [0.0]
"""
from __future__ import annotations

import torch

from hardneg import _validate as _V
from hardneg._constants import METRICS

__all__ = ["COS_EPS", "METRICS", "pairwise", "score_matrix", "complex_mul", "anchors", "Scorer"]

COS_EPS = 1e-12  # cos: x / max(|x|, eps), as torch.nn.functional.normalize (kernels: kNormEps, 1e-12)
_BROADCAST_BUDGET = 1 << 24  # elements of one [B, chunk, d] temporary in score_matrix


def pairwise(query: torch.Tensor, cand: torch.Tensor, metric: str) -> torch.Tensor:
    """metric(query[..., :], cand[..., :]) over the last dim, broadcasting (differentiable).

    Args:
        query: [..., d] floating.
        cand: [..., d], broadcastable against ``query``.
        metric: one of :data:`METRICS`.

    Returns:
        The broadcast shape without the last dim, in the inputs' dtype.

    Raises:
        ValueError: an unknown metric.
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
    raise ValueError(f"pairwise: unknown metric {metric!r} (known: {list(METRICS)})")


def score_matrix(q: torch.Tensor, C: torch.Tensor, metric: str, *, dtype: torch.dtype | None = None) -> torch.Tensor:
    """Scores [B, N] of every query against every candidate (for ranking against all candidates).

    Args:
        q: [B, d] floating. C: [N, d] floating.
        metric: one of :data:`METRICS`.
        dtype: compute and return in this dtype (default: ``q``'s); the references pass ``torch.float64``.

    Returns:
        [B, N]. Never a [B, N, d] temporary: metrics without a matrix form (``"rotate"``) go through
        :func:`pairwise` over candidate chunks of at most 2**24 / (B·d) rows.

    Raises:
        ValueError: an unknown metric.
    """
    dtype = dtype or q.dtype
    q, C = q.to(dtype), C.to(dtype)
    if metric == "dot":
        return q @ C.T
    if metric == "cos":
        qn = q / q.norm(dim=1, keepdim=True).clamp_min(COS_EPS)
        return qn @ (C / C.norm(dim=1, keepdim=True).clamp_min(COS_EPS)).T
    if metric == "l2":  # the direct difference, not |q|² + |c|² − 2q·c (cancellation)
        return -torch.cdist(q, C, p=2.0, compute_mode="donot_use_mm_for_euclid_dist").pow(2)
    if metric == "l1":
        return -torch.cdist(q, C, p=1.0)
    if metric not in METRICS:
        raise ValueError(f"score_matrix: unknown metric {metric!r} (known: {list(METRICS)})")
    out = torch.empty(q.shape[0], C.shape[0], dtype=dtype, device=q.device)
    step = max(1, _BROADCAST_BUDGET // max(1, q.shape[0] * q.shape[1]))
    for s in range(0, C.shape[0], step):
        out[:, s : s + step] = pairwise(q[:, None, :], C[None, s : s + step], metric)
    return out


def complex_mul(a: torch.Tensor, b: torch.Tensor, conj_b: bool = False) -> torch.Tensor:
    """a·b (or a·conj(b)) for complex vectors stored as real rows [Re | Im]."""
    m = a.shape[-1] // 2
    ar, ai, br, bi = a[..., :m], a[..., m:], b[..., :m], b[..., m:]
    if conj_b:
        bi = -bi
    return torch.cat([ar * br - ai * bi, ar * bi + ai * br], -1)


def anchors(positives: torch.Tensor, side: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(anchor, true entity) of each positive for ``side``: triples [B, 3] give ((h, r), t) for the tail side and
    ((r, t), h) for the head side; pairs [B, 2] give (u, v) and (v, u)."""
    if positives.shape[1] == 3:
        return (positives[:, :2], positives[:, 2]) if side == "tail" else (positives[:, 1:], positives[:, 0])
    return (positives[:, 0], positives[:, 1]) if side == "tail" else (positives[:, 1], positives[:, 0])


class Scorer:
    """Base class of the scorer protocol (module docstring): subclasses define ``metric``, ``query_vectors`` and
    ``candidate_vectors``; the scores of positives, candidates and negatives derive from them.

    * ``score_positives(positives [B, 3] or [B, 2]) -> [B]``;
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

    def score_candidates(self, anchor: torch.Tensor, ids: torch.Tensor, side: str = "tail") -> torch.Tensor:
        q = self.query_vectors(anchor, side)
        C = self.candidate_vectors(side)
        c = C[_V.ids("score_candidates", "ids", ids.clamp_min(0), C.shape[0], what="candidate ids")]
        return pairwise(q[:, None, :], c, self.metric)

    def score_positives(self, positives: torch.Tensor) -> torch.Tensor:
        anchor, target = anchors(positives, "tail")
        q = self.query_vectors(anchor, "tail")
        return pairwise(q, self.candidate_vectors("tail")[target], self.metric)

    def score_negatives(self, positives: torch.Tensor, negatives) -> torch.Tensor:
        """Scores [B, n] of the corrupted triples/pairs ``negatives`` (invalid slots get an arbitrary finite
        score; mask them with ``negatives.valid``). Generated vectors (``negatives.vectors``, e.g. DANS) are
        scored in place of the candidate entity's vector."""
        ids = negatives.ids.clamp_min(0)
        side = negatives.side
        tail_col = positives.shape[1] - 1
        vm = getattr(negatives, "vector_mask", None)
        if side is None:
            q = self.query_vectors(anchors(positives, "tail")[0], "tail")[:, None, :]
            c = self.candidate_vectors("tail")[ids]
        else:
            qt = self.query_vectors(anchors(positives, "tail")[0], "tail")
            qh = self.query_vectors(anchors(positives, "head")[0], "head")
            s = side if side.dim() == 2 else side[:, None].expand_as(ids)
            is_tail = (s == tail_col)[..., None]
            q = torch.where(is_tail, qt[:, None, :], qh[:, None, :])
            # tail and head candidates are the same table for every scorer here; read it once per side anyway
            ct, ch = self.candidate_vectors("tail"), self.candidate_vectors("head")
            c = ct[ids] if ct is ch else torch.where(is_tail, ct[ids], ch[ids])
        if vm is not None:
            c = torch.where(vm[..., None], negatives.vectors.to(c.dtype), c)
        return pairwise(q, c, self.metric)
