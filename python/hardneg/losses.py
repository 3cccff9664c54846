"""Losses over one positive score s⁺ [B] and n negative scores s⁻ [B, n], with validity masks and weights.

Every loss takes ``valid`` (bool [B, n]; invalid negatives contribute nothing) and optional per-negative
``weights`` [B, n] (importance weights from a sampler's ``log_prob``, or meta-learned weights; not
differentiated through). How the negatives of a row are combined:

* no weights: the mean over the row's valid negatives;
* weights, ``normalize=True`` (default): Σᵢ wᵢ ℓᵢ / Σᵢ wᵢ over valid negatives (self-normalised);
* weights, ``normalize=False``: Σᵢ wᵢ ℓᵢ as given (e.g. unbiased 1/(N·q) weights).

Rows with no valid negative contribute only their positive term (for margin/BPR, which are pairwise, nothing).
``reduction``: ``"mean"`` over rows (default), ``"sum"`` or ``"none"`` ([B]).
Scores follow "larger = more plausible"; distance models pass s = −d (the scorers already do).

Example:
    >>> import torch
    >>> from hardneg import losses
    >>> pos, neg = torch.tensor([2.0, 0.5]), torch.tensor([[0.0, 1.0], [0.5, -1.0]])
    >>> round(float(losses.margin_ranking(pos, neg, margin=1.0)), 4)
    0.25
    >>> valid = torch.tensor([[True, True], [True, False]])
    >>> round(float(losses.softplus(pos, neg, valid=valid)), 4)
    1.2891
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from . import _validate as V

REDUCTIONS = ("mean", "sum", "none")


def _prep(op, pos, neg, valid, weights):
    if not isinstance(pos, torch.Tensor) or not pos.is_floating_point():
        raise TypeError(f"{op}: 'pos' must be a floating tensor [B] (got {V.describe(pos)})")
    if not isinstance(neg, torch.Tensor) or not neg.is_floating_point():
        raise TypeError(f"{op}: 'neg' must be a floating tensor [B, n] (got {V.describe(neg)})")
    if pos.dim() != 1 or neg.dim() != 2 or neg.shape[0] != pos.shape[0]:
        raise ValueError(f"{op}: 'pos' must be [B] and 'neg' [B, n] (got {V.describe(pos)} and {V.describe(neg)})")
    if valid is None:
        valid = torch.ones(neg.shape, dtype=torch.bool, device=neg.device)
    elif not isinstance(valid, torch.Tensor) or valid.dtype != torch.bool or valid.shape != neg.shape:
        raise ValueError(f"{op}: 'valid' must be a bool tensor shaped like 'neg' {list(neg.shape)} (got {V.describe(valid)})")
    if weights is not None:
        if not isinstance(weights, torch.Tensor) or weights.shape != neg.shape:
            raise ValueError(f"{op}: 'weights' must be a tensor shaped like 'neg' {list(neg.shape)} (got {V.describe(weights)})")
        weights = weights.detach().to(neg.dtype)
        # a data-dependent check: eager only (under torch.compile it would break the graph)
        if not torch.compiler.is_compiling() and (
                bool((weights[valid] < 0).any()) or not bool(torch.isfinite(weights[valid]).all())):
            raise ValueError(f"{op}: 'weights' must be finite and >= 0 on valid negatives")
    return valid, weights


def _combine(terms, valid, weights, normalize):
    """Per-row combination of per-negative terms [B, n] -> [B]."""
    zero = torch.zeros_like(terms)
    t = torch.where(valid, terms, zero)
    if weights is None:
        w = valid.to(terms.dtype)
        return (t * w).sum(1) / w.sum(1).clamp_min(1.0)
    w = torch.where(valid, weights, zero)
    s = (t * w).sum(1)
    return s / w.sum(1).clamp_min(torch.finfo(terms.dtype).tiny) if normalize else s


def _reduce(op, x, reduction, rows=None):
    reduction = V.choice(op, "reduction", reduction, REDUCTIONS)
    if reduction == "none":
        return x
    if reduction == "sum":
        return x.sum()
    if rows is not None:
        return x.sum() / rows.sum().clamp_min(1)
    return x.mean() if x.numel() else x.sum()


def margin_ranking(pos: torch.Tensor, neg: torch.Tensor, *, valid: torch.Tensor | None = None, weights: torch.Tensor | None = None, margin: float = 1.0,
                   normalize: bool = True, reduction: str = "mean") -> torch.Tensor:
    """max(0, γ − s⁺ + s⁻ᵢ) combined over negatives; the mean over rows with at least one valid negative."""
    op = "margin_ranking"
    margin = V.real(op, "margin", margin)
    valid, weights = _prep(op, pos, neg, valid, weights)
    terms = F.relu(margin - pos[:, None] + neg)
    return _reduce(op, _combine(terms, valid, weights, normalize), reduction, valid.any(1))


def softplus(pos: torch.Tensor, neg: torch.Tensor, *, valid: torch.Tensor | None = None, weights: torch.Tensor | None = None, margin: float | None = None,
             normalize: bool = True, reduction: str = "mean") -> torch.Tensor:
    """Logistic loss: softplus(−s⁺) + combine(softplus(s⁻ᵢ)). With ``margin`` γ (distance models, s = −d):
    −log σ(γ + s⁺) − combine(log σ(−s⁻ᵢ − γ))."""
    op = "softplus"
    valid, weights = _prep(op, pos, neg, valid, weights)
    g = 0.0 if margin is None else V.real(op, "margin", margin)
    return _reduce(op, F.softplus(-(pos + g)) + _combine(F.softplus(neg + g), valid, weights, normalize), reduction)


def bce(pos: torch.Tensor, neg: torch.Tensor, *, valid: torch.Tensor | None = None, weights: torch.Tensor | None = None, label_smoothing: float = 0.0,
        normalize: bool = True, reduction: str = "mean") -> torch.Tensor:
    """Binary cross-entropy with logits: targets 1 − ε for the positive and ε for negatives
    (ε = ``label_smoothing``); BCE(s⁺, 1−ε) + combine(BCE(s⁻ᵢ, ε))."""
    op = "bce"
    valid, weights = _prep(op, pos, neg, valid, weights)
    eps = float(label_smoothing)
    if not 0.0 <= eps < 1.0:
        raise ValueError(f"{op}: 'label_smoothing' must be in [0, 1) (got {label_smoothing!r})")
    lp = F.binary_cross_entropy_with_logits(pos, torch.full_like(pos, 1.0 - eps), reduction="none")
    ln = F.binary_cross_entropy_with_logits(neg, torch.full_like(neg, eps), reduction="none")
    return _reduce(op, lp + _combine(ln, valid, weights, normalize), reduction)


def self_adversarial(pos: torch.Tensor, neg: torch.Tensor, *, valid: torch.Tensor | None = None, weights: torch.Tensor | None = None, margin: float = 0.0,
                     temperature: float = 1.0, reduction: str = "mean") -> torch.Tensor:
    """Self-adversarial negative sampling (SANS, RotatE): −log σ(γ + s⁺) − Σᵢ pᵢ log σ(−s⁻ᵢ − γ) with
    pᵢ = softmax(α·s⁻)ᵢ over the row's valid negatives (α = ``temperature``), detached; given ``weights``
    multiply pᵢ (then renormalised). For distance models s = −d, so this is −log σ(γ − d⁺) − Σ pᵢ log σ(d⁻ᵢ − γ)."""
    op = "self_adversarial"
    valid, weights = _prep(op, pos, neg, valid, weights)
    a = V.real(op, "temperature", temperature, minimum=0.0)
    logits = torch.where(valid, a * neg.detach(), torch.full_like(neg, float("-inf")))
    has = valid.any(1, keepdim=True)
    p = torch.softmax(torch.where(has, logits, torch.zeros_like(logits)), 1)
    p = torch.where(valid, p, torch.zeros_like(p))
    if weights is not None:
        p = p * torch.where(valid, weights, torch.zeros_like(weights))
        p = p / p.sum(1, keepdim=True).clamp_min(torch.finfo(p.dtype).tiny)
    g = V.real(op, "margin", margin)
    neg_term = (p * torch.where(valid, F.softplus(neg + g), torch.zeros_like(neg))).sum(1)
    return _reduce(op, F.softplus(-(pos + g)) + neg_term, reduction)


def infonce(pos: torch.Tensor, neg: torch.Tensor, *, valid: torch.Tensor | None = None, weights: torch.Tensor | None = None, temperature: float = 0.1,
            reduction: str = "mean") -> torch.Tensor:
    """InfoNCE: −log(e^{s⁺/τ} / (e^{s⁺/τ} + Σᵢ wᵢ e^{s⁻ᵢ/τ})) over valid negatives (wᵢ = 1 without weights;
    importance weights enter as log wᵢ added to the logits)."""
    op = "infonce"
    valid, weights = _prep(op, pos, neg, valid, weights)
    tau = V.positive_float(op, "temperature", temperature)
    ln = neg / tau
    if weights is not None:
        ln = ln + torch.log(weights.clamp_min(0))
    ln = torch.where(valid, ln, torch.full_like(ln, float("-inf")))
    logits = torch.cat([(pos / tau)[:, None], ln], 1)
    return _reduce(op, torch.logsumexp(logits, 1) - pos / tau, reduction)


def bpr(pos: torch.Tensor, neg: torch.Tensor, *, valid: torch.Tensor | None = None, weights: torch.Tensor | None = None, normalize: bool = True,
        reduction: str = "mean") -> torch.Tensor:
    """Bayesian personalised ranking: combine(−log σ(s⁺ − s⁻ᵢ)); the mean over rows with a valid negative."""
    op = "bpr"
    valid, weights = _prep(op, pos, neg, valid, weights)
    terms = F.softplus(-(pos[:, None] - neg))
    return _reduce(op, _combine(terms, valid, weights, normalize), reduction, valid.any(1))


def importance_weights(log_prob: torch.Tensor, valid: torch.Tensor | None = None, *, num_candidates: int | None = None,
                       self_normalize: bool = True) -> torch.Tensor:
    """Importance weights for negatives drawn from a proposal q (``log_prob`` [B, n]) towards the uniform
    distribution: wᵢ ∝ 1 / qᵢ. ``self_normalize=True`` returns w / Σ w per row (over valid draws); otherwise the
    unbiased 1 / (N·q), which needs ``num_candidates`` N."""
    if not isinstance(log_prob, torch.Tensor) or not log_prob.is_floating_point():
        raise TypeError(f"importance_weights: 'log_prob' must be a floating tensor (got {V.describe(log_prob)})")
    v = torch.isfinite(log_prob) if valid is None else valid & torch.isfinite(log_prob)
    if self_normalize:
        lw = torch.where(v, -log_prob, torch.full_like(log_prob, float("-inf")))
        w = torch.softmax(torch.where(v.any(1, keepdim=True), lw, torch.zeros_like(lw)), 1)
        return torch.where(v, w, torch.zeros_like(w))
    if num_candidates is None:
        raise ValueError("importance_weights: 'num_candidates' is required when self_normalize=False")
    w = torch.exp(-log_prob - math.log(num_candidates))
    return torch.where(v, w, torch.zeros_like(w))


LOSSES = {"margin": margin_ranking, "softplus": softplus, "bce": bce, "sans": self_adversarial,
          "infonce": infonce, "bpr": bpr}


def available() -> list[str]:
    return list(LOSSES)


class Loss(torch.nn.Module):
    """A loss by name (``available()``) with its options bound: ``Loss("sans", margin=9.0, temperature=1.0)``;
    call as ``loss(pos, neg, valid=..., weights=...)``."""

    def __init__(self, name: str, **options):
        super().__init__()
        if not isinstance(name, str) or name not in LOSSES:
            raise ValueError(f"Loss: unknown loss {name!r}; known losses: {available()}")
        self.name, self.options, self.fn = name, options, LOSSES[name]

    def forward(self, pos: torch.Tensor, neg: torch.Tensor, *, valid: torch.Tensor | None = None, weights: torch.Tensor | None = None,
                reduction: str = "mean") -> torch.Tensor:
        return self.fn(pos, neg, valid=valid, weights=weights, reduction=reduction, **self.options)

    def extra_repr(self):
        return f"{self.name}, {self.options}"


def create(name: str, **options) -> Loss:
    return Loss(name, **options)
