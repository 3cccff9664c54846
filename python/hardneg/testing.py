"""Test helpers shared by hardneg's own tests and usable by downstream projects.

One tolerance table, tie-aware top-k comparison (in the spirit of faiss's ``check_ref_knn_with_draws``) and
chi-square checks with strict thresholds so fixed-seed statistical tests never flake.
"""
from __future__ import annotations

import math

import torch

from hardneg.reference.mining import exclusion_mask, scores as ref_scores

# absolute score tolerance = TOL[dtype] * (1 + max |score|) * sqrt(d)
TOL = {torch.float64: 1e-9, torch.float32: 3e-6, torch.float16: 4e-3, torch.bfloat16: 2e-2}


def score_tolerance(dtype: torch.dtype, ref: torch.Tensor, d: int) -> float:
    finite = ref[torch.isfinite(ref)]
    scale = 1.0 + (float(finite.abs().max()) if finite.numel() else 0.0)
    return TOL.get(dtype, 1e-5) * scale * math.sqrt(max(d, 1))


def assert_topk_matches(query, candidates, k, metric, exclude, scores, ids, *, dtype=None, strict_ties=False,
                        tie_break=None, reference_scores=None):
    """Check (scores, ids) against the float64 reference, modulo ties within tolerance.

    Checks, per row: ids distinct, in range, never excluded, -1 only as trailing padding; the number of
    results is min(k, admissible); returned scores equal the reference score of their id; scores are sorted;
    nothing left out scores higher than the k-th returned score (beyond tolerance); exact ties (e.g.
    duplicated candidate rows) are resolved to the smaller id (with ``tie_break`` [N]: the smaller key, then
    the smaller id), in the order and, with ``strict_ties``, at the k boundary (use it where equal float64
    scores are also bitwise equal in float32, e.g. duplicated rows).
    ``reference_scores``: the float64 [B, N] scores to check against, for a score that is no ``metric``
    (:func:`hardneg.reference.mining.mlp_scores`); ``metric`` is then unused.
    """
    B, N = query.shape[0], candidates.shape[0]
    keys = torch.arange(N) if tie_break is None else tie_break.cpu().long()
    rank = torch.empty(N, dtype=torch.int64)  # each id's place in the tie order
    rank[torch.argsort(keys, stable=True)] = torch.arange(N)
    dtype = dtype or query.dtype
    assert scores.shape == (B, k) and ids.shape == (B, k), (scores.shape, ids.shape)
    assert scores.dtype == torch.float32 and ids.dtype == torch.int64
    scores, ids = scores.cpu().double(), ids.cpu()
    if B == 0:
        return
    if reference_scores is not None:
        S = reference_scores.cpu().double().clone()
    else:
        S = ref_scores(query.cpu(), candidates.cpu(), metric) if N else torch.empty(B, 0, dtype=torch.float64)
    ex = None if exclude is None else (exclude[0].cpu().long(), exclude[1].cpu().long())
    mask = exclusion_mask(ex, B, 0, N, "cpu") if N else torch.zeros(B, 0, dtype=torch.bool)
    S = S.masked_fill(mask, float("-inf"))
    tol = score_tolerance(dtype, S, query.shape[1])
    for b in range(B):
        row_ids, row_s = ids[b], scores[b]
        admissible = int((~mask[b]).sum())
        n_valid = min(k, admissible)
        assert bool((row_ids[:n_valid] >= 0).all()), f"row {b}: missing results {row_ids.tolist()}"
        assert bool((row_ids[n_valid:] == -1).all()), f"row {b}: expected padding after {n_valid}: {row_ids.tolist()}"
        assert bool(torch.isneginf(row_s[n_valid:]).all()), f"row {b}: padding scores must be -inf"
        got = row_ids[:n_valid]
        assert not got.numel() or int(got.max()) < N
        assert len(set(got.tolist())) == n_valid, f"row {b}: duplicate ids {got.tolist()}"
        if n_valid == 0:
            continue
        assert not bool(mask[b, got].any()), f"row {b}: excluded id returned {got.tolist()}"
        ref_at = S[b, got]
        err = (row_s[:n_valid] - ref_at).abs().max().item()
        assert err <= tol, f"row {b}: returned scores differ from reference by {err} > {tol}"
        assert bool((row_s[1:n_valid] <= row_s[:n_valid - 1] + tol).all()), f"row {b}: not sorted {row_s.tolist()}"
        chosen = torch.zeros(N, dtype=torch.bool)
        chosen[got] = True
        rest = S[b][~chosen & ~mask[b]]
        kth = ref_at.min().item()
        if rest.numel():
            assert rest.max().item() <= kth + tol, f"row {b}: a left-out candidate beats the k-th ({rest.max()} > {kth})"
        ref_sorted = torch.sort(S[b][~mask[b]], descending=True).values[:n_valid]
        diff = (torch.sort(ref_at, descending=True).values - ref_sorted).abs().max().item()
        assert diff <= tol, f"row {b}: top-k score multiset differs from reference by {diff}"
        # exact ties: first in the tie order (the smaller id, or key), and the first wins at the boundary
        for j in range(n_valid - 1):
            if ref_at[j] == ref_at[j + 1] and row_s[j] == row_s[j + 1]:
                assert rank[got[j]] < rank[got[j + 1]], f"row {b}: tie not in tie order: {got.tolist()}"
        left = (~chosen & ~mask[b]).nonzero().flatten()
        if strict_ties and left.numel():
            for i in got.tolist():
                same = left[S[b, left] == S[b, i]]
                assert not bool((rank[same] < rank[i]).any()), \
                    f"row {b}: tie at the boundary lost to a later one in the tie order ({i} kept, {same.tolist()} dropped)"


def chi2_quantile(df: int, p_upper: float = 1e-6) -> float:
    """Upper quantile of chi-square(df) (Wilson-Hilferty), e.g. p_upper=1e-6 for a never-flaking threshold."""
    # z for the normal upper tail via a few Newton steps on erfc
    z = 4.0
    for _ in range(50):
        f = 0.5 * math.erfc(z / math.sqrt(2)) - p_upper
        fp = -math.exp(-z * z / 2) / math.sqrt(2 * math.pi)
        z -= f / fp
    h = 2.0 / (9.0 * df)
    return df * (1 - h + z * math.sqrt(h)) ** 3


def chi2_stat(counts: torch.Tensor, probs: torch.Tensor, min_expected: float = 5.0) -> tuple[float, int]:
    """Pearson chi-square of counts against probs, pooling cells with expected < min_expected; (stat, df)."""
    counts = counts.double().flatten()
    probs = probs.double().flatten()
    total = counts.sum()
    assert not bool(((probs == 0) & (counts > 0)).any()), "samples landed on zero-probability cells"
    keep = probs > 0
    counts, probs = counts[keep], probs[keep] / probs[keep].sum()
    exp = probs * total
    order = torch.argsort(exp)
    counts, exp = counts[order], exp[order]
    # pool the smallest cells together until the pool reaches min_expected
    cut = int((torch.cumsum(exp, 0) < min_expected).sum())
    if cut > 0:
        counts = torch.cat([counts[: cut + 1].sum().view(1), counts[cut + 1 :]])
        exp = torch.cat([exp[: cut + 1].sum().view(1), exp[cut + 1 :]])
    stat = float(((counts - exp) ** 2 / exp).sum())
    return stat, max(1, counts.numel() - 1)


def assert_chi2(counts, probs, p_upper: float = 1e-6):
    stat, df = chi2_stat(counts, probs)
    crit = chi2_quantile(df, p_upper)
    assert stat < crit, f"chi-square {stat:.1f} >= {crit:.1f} (df={df}, p<{p_upper})"
    return stat, df
