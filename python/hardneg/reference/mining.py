"""Reference implementations of the mining family (top-K mining, score-proportional sampling)."""
from __future__ import annotations

import torch

from hardneg._random import uniform
from hardneg.metrics import pairwise, score_matrix


def scores(query: torch.Tensor, candidates: torch.Tensor, metric: str) -> torch.Tensor:
    """Score matrix [B, N] in float64 (:func:`hardneg.metrics.score_matrix`). Larger means more similar."""
    return score_matrix(query, candidates, metric, dtype=torch.float64)


def pair_scores(query: torch.Tensor, candidates: torch.Tensor, ids: torch.Tensor, metric: str) -> torch.Tensor:
    """Scores of query b against candidates[ids[b, j]] -> [B, n] float64 (ids -1 give NaN)."""
    out = pairwise(query.double()[:, None, :], candidates.double()[ids.clamp_min(0)], metric)
    return out.masked_fill(ids < 0, float("nan"))


def exclusion_mask(exclude, B: int, start: int, stop: int, device) -> torch.Tensor:
    """Dense bool [B, stop-start]: True where the id is excluded for that row."""
    mask = torch.zeros(B, stop - start, dtype=torch.bool, device=device)
    if exclude is None:
        return mask
    indptr, indices = exclude
    counts = indptr[1:] - indptr[:-1]
    rows = torch.repeat_interleave(torch.arange(B, device=device), counts)
    keep = (indices >= start) & (indices < stop)
    mask[rows[keep], indices[keep] - start] = True
    return mask


def _order(scores: torch.Tensor, ids: torch.Tensor, tie_break: torch.Tensor | None = None) -> torch.Tensor:
    """Permutation per row sorting by (score desc, id asc), or (score desc, tie_break[id] asc, id asc)."""
    order = torch.argsort(ids, dim=1, stable=True)
    if tie_break is not None:
        keys = tie_break[torch.gather(ids, 1, order)]
        order = torch.gather(order, 1, torch.argsort(keys, dim=1, stable=True))
    s = torch.gather(scores, 1, order)
    by_score = torch.argsort(-s, dim=1, stable=True)
    return torch.gather(order, 1, by_score)


def topk_mine(query, candidates, k: int, *, metric: str = "dot", exclude=None, tie_break=None, chunk: int = 4096):
    """Top-k candidates per query by score, skipping excluded ids; (score desc, id asc), or with ``tie_break``
    ([N] integer keys) (score desc, key asc, id asc); float64 inside.

    Returns (scores float32 [B, k], ids int64 [B, k]), padded with (-inf, -1).
    """
    B, N = query.shape[0], candidates.shape[0]
    device = query.device
    best_s = torch.empty(B, 0, dtype=torch.float64, device=device)
    best_i = torch.empty(B, 0, dtype=torch.int64, device=device)
    for start in range(0, N, chunk):
        stop = min(N, start + chunk)
        s = scores(query, candidates[start:stop], metric)
        s = s.masked_fill(exclusion_mask(exclude, B, start, stop, device), float("-inf"))
        ids = torch.arange(start, stop, device=device).expand(B, -1)
        cs = torch.cat([best_s, s], 1)
        ci = torch.cat([best_i, ids], 1)
        order = _order(cs, ci, tie_break)[:, :k]
        best_s = torch.gather(cs, 1, order)
        best_i = torch.gather(ci, 1, order)
    out_s = torch.full((B, k), float("-inf"), dtype=torch.float64, device=device)
    out_i = torch.full((B, k), -1, dtype=torch.int64, device=device)
    out_s[:, : best_s.shape[1]] = best_s
    out_i[:, : best_i.shape[1]] = best_i
    dead = torch.isneginf(out_s)
    out_i[dead] = -1
    return out_s.to(torch.float32), out_i


def mlp_scores(query, candidates, weight, bias: float = 0.0, offsets=None) -> torch.Tensor:
    """[B, N] float64 scores of the MLP link decoder ``weight · relu(query_b + candidates_j [+ o_bj]) + bias``;
    ``offsets`` ``(indptr [B+1], ids [E], values [E, d])`` adds values[e] inside the ReLU of its (row, id)."""
    q, c, w = query.double(), candidates.double(), weight.double()
    s = torch.relu(q[:, None, :] + c[None, :, :]) @ w + float(bias)
    if offsets is not None and offsets[1].numel():
        ptr, ids, vals = offsets
        rows = torch.repeat_interleave(torch.arange(q.shape[0], device=q.device), ptr[1:] - ptr[:-1])
        s[rows, ids] = torch.relu(q[rows] + c[ids] + vals.double()) @ w + float(bias)
    return s


def mlp_topk_mine(query, candidates, weight, k: int, *, bias: float = 0.0, exclude=None, offsets=None,
                  tie_break=None):
    """Top-k candidates per query by the MLP decoder's score (:func:`mlp_scores`), skipping excluded ids, in the
    order of :func:`topk_mine`; the whole [B, N, d] hidden layer in float64.

    Returns (scores float32 [B, k], ids int64 [B, k]), padded with (-inf, -1).
    """
    B, N = query.shape[0], candidates.shape[0]
    s = mlp_scores(query, candidates, weight, bias, offsets)
    s = s.masked_fill(exclusion_mask(exclude, B, 0, N, query.device), float("-inf"))
    ids = torch.arange(N, device=query.device).expand(B, -1)
    order = _order(s, ids, tie_break)[:, :k]
    out_s = torch.full((B, k), float("-inf"), dtype=torch.float64, device=query.device)
    out_i = torch.full((B, k), -1, dtype=torch.int64, device=query.device)
    out_s[:, :order.shape[1]] = torch.gather(s, 1, order)
    out_i[:, :order.shape[1]] = order
    out_i[torch.isneginf(out_s)] = -1
    return out_s.to(torch.float32), out_i


def logits(s: torch.Tensor, weighting: str, temperature: float) -> torch.Tensor:
    """log of the unnormalised sampling weight: softmax -> s/T, softplus -> log(softplus(s))/T."""
    s = s.to(torch.float64)
    if weighting == "softmax":
        return s / temperature
    sp = torch.nn.functional.softplus(s)
    return torch.where(torch.isneginf(s), s, torch.log(sp) / temperature)


def log_probs(query, candidates, *, metric="dot", weighting="softmax", temperature=1.0, exclude=None):
    """Exact log p(c) [B, N] float64 (excluded: -inf; rows with nothing admissible: all -inf)."""
    B, N = query.shape[0], candidates.shape[0]
    s = scores(query, candidates, metric)
    s = s.masked_fill(exclusion_mask(exclude, B, 0, N, query.device), float("-inf"))
    lg = logits(s, weighting, temperature)
    lse = torch.logsumexp(lg, dim=1, keepdim=True)
    lp = lg - lse
    return torch.where(torch.isneginf(lse), torch.full_like(lp, float("-inf")), lp)


def sample_by_score(
    query, candidates, num_samples: int, *, metric="dot", weighting="softmax", temperature=1.0, exclude=None,
    replacement=False, generator=None,
):
    """Materialised reference: exact p over all candidates, then Gumbel-top-k / multinomial.

    Returns (ids int64 [B, n], log_prob float32 [B, n]); padding -1 / -inf.
    """
    lp = log_probs(query, candidates, metric=metric, weighting=weighting, temperature=temperature, exclude=exclude)
    ids = sample_from_weights(lp.exp(), num_samples, replacement=replacement, generator=generator, log_weights=lp)
    out_lp = torch.gather(lp, 1, ids.clamp_min(0)).to(torch.float32)
    out_lp[ids < 0] = float("-inf")
    return ids, out_lp


def sample_from_weights(weights, n: int, *, replacement: bool, generator=None, log_weights=None):
    """Draw n indices per row with probability ∝ weights (Gumbel-top-k without replacement).

    Rows with fewer positive weights than n (without replacement), or none (with), are padded with -1.
    """
    B, M = weights.shape
    device = weights.device
    lw = weights.to(torch.float64).log() if log_weights is None else log_weights.to(torch.float64)
    if M == 0 or B == 0:
        return torch.full((B, n), -1, dtype=torch.int64, device=device)
    if not replacement:
        u = uniform((B, M), generator, device).clamp(1e-300, 1.0)
        keys = lw - torch.log(-torch.log(u))
        kk = min(n, M)
        top = torch.topk(keys, kk, dim=1)
        ids = top.indices
        ids[torch.isneginf(top.values)] = -1
        if kk < n:
            ids = torch.cat([ids, torch.full((B, n - kk), -1, dtype=torch.int64, device=device)], 1)
        return ids
    # with replacement: inverse CDF in float64
    lse = torch.logsumexp(lw, dim=1, keepdim=True)
    p = torch.where(torch.isneginf(lse), torch.zeros_like(lw), (lw - lse).exp())
    cdf = torch.cumsum(p, dim=1)
    u = uniform((B, n), generator, device) * cdf[:, -1:]
    ids = torch.searchsorted(cdf, u, right=True).clamp_max(M - 1)
    # never land on a zero-weight id because of rounding at the top end
    ok = torch.gather(p, 1, ids) > 0
    if not bool(ok.all()):
        last = torch.where(p > 0, torch.arange(M, device=device), -1).max(dim=1).values
        ids = torch.where(ok, ids, last[:, None].expand_as(ids))
    ids[torch.isneginf(lse).expand_as(ids)] = -1
    return ids
