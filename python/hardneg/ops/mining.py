"""Mining family: fused top-K similarity mining and loss-proportional sampling over all candidates.

Shapes: ``B`` queries, ``N`` candidates, ``d`` features, ``k``/``n`` results per query.

Metrics (larger score = more similar = harder negative), shared by every op here:

* ``"dot"``: q·c. DistMult and ComplEx reduce to this once the caller forms the query vector
  (DistMult: h∘r; ComplEx: the complex product h∘r laid out as [Re | Im] with the candidate as [Re | -Im]
  so that the real part of ⟨h, r, conj(t)⟩ is a plain inner product).
* ``"cos"``: q·c / (max(|q|, 1e-12) max(|c|, 1e-12)).
* ``"l2"``: −|q − c|² (squared Euclidean distance, negated; TransE-style with L2).
* ``"l1"``: −|q − c|₁.
* ``"rotate"``: rows are complex vectors stored as [real half | imaginary half]; −Σⱼ |qⱼ − cⱼ| with the
  modulus per complex dimension (RotatE, the query being h∘r).

``exclude`` is a CSR pair ``(indptr int64 [B+1], indices int64)`` of ids never to return for each query
(known positives, the user's history, the query node itself). Rows may be unsorted or hold duplicates;
they are normalised once per call. On CUDA inputs the range checks force a device sync; they always run.
"""
from __future__ import annotations

import torch

from hardneg import _validate as V
from hardneg import reference as _ref
from hardneg._backend import core, num_threads, register, resolve

__all__ = ["topk_mine", "sample_by_score", "sample_from_weights"]

WEIGHTINGS = ("softmax", "softplus")


def _prepare(op, query, candidates, metric, exclude, check_finite=True):
    q = V.floating(op, "query", query, 2, "[B, d]")
    c = V.floating(op, "candidates", candidates, 2, "[N, d]")
    V.same_device(op, ("query", "candidates"), q, c)
    if q.shape[1] != c.shape[1]:
        raise ValueError(
            f"{op}: 'query' and 'candidates' must have the same d (got query [{q.shape[0]}, {q.shape[1]}], "
            f"candidates [{c.shape[0]}, {c.shape[1]}])"
        )
    if q.dtype != c.dtype:
        raise TypeError(f"{op}: 'query' and 'candidates' must have the same dtype (got {q.dtype} and {c.dtype})")
    if q.device.type == "cpu" and q.dtype in (torch.float16, torch.bfloat16):
        pass  # accepted: upcast to float32 for the CPU kernels below
    metric = V.choice(op, "metric", metric, V.METRICS)
    if metric == "rotate" and q.shape[1] % 2:
        raise ValueError(f"{op}: metric 'rotate' needs an even d ([real | imag] halves) (got d={q.shape[1]})")
    if q.shape[1] == 0:
        raise ValueError(f"{op}: d must be >= 1 (got query {list(q.shape)})")
    if check_finite:
        V.finite(op, "query", q)
        V.finite(op, "candidates", c)
    ex = None
    if exclude is not None:
        ex = V.csr(op, "exclude", exclude, q.shape[0], c.shape[0], q.device)
    return q, c, metric, ex


def topk_mine(query, candidates, k, *, metric="dot", exclude=None, backend=None):
    """Top-k most similar candidates per query, never returning excluded ids, without materialising B×N.

    Args:
        query: [B, d] float32 (float16/bfloat16 too; accumulated in float32; upcast on CPU).
        candidates: [N, d], same dtype and device as ``query``.
        k: results per query, >= 1; k > N is allowed (padding).
        metric: one of ``"dot"``, ``"cos"``, ``"l2"``, ``"l1"``, ``"rotate"`` (module docstring).
        exclude: optional CSR ``(indptr [B+1], indices)`` of ids to skip per query.
        backend: None (best for the device), ``"reference"``, ``"cpu"`` or ``"triton"``.

    Returns:
        ``(scores, ids)``: float32 [B, k] and int64 [B, k]. Each row is sorted by descending score, ties to
        the smaller id; a row with fewer than k admissible candidates is padded with id −1 and score −inf.

    Raises:
        TypeError: non-tensor inputs, non-floating or mismatched dtypes, non-int k, non-integer CSR.
        ValueError: wrong ndim, mismatched d or device, k <= 0, unknown metric or backend, odd d with
            ``"rotate"``, malformed CSR (length, non-monotone indptr, ids out of range), NaN/Inf inputs.

    Example:
        >>> import torch, hardneg
        >>> q, c = torch.randn(4, 8), torch.randn(100, 8)
        >>> s, i = hardneg.ops.topk_mine(q, c, 5, exclude=(torch.tensor([0, 1, 1, 1, 2]), torch.tensor([7, 3])))
        >>> s.shape, i.shape
        (torch.Size([4, 5]), torch.Size([4, 5]))
    """
    op = "topk_mine"
    k = V.integer(op, "k", k, minimum=1)
    q, c, metric, ex = _prepare(op, query, candidates, metric, exclude)
    name, fn = resolve(op, backend, q.device)
    B = q.shape[0]
    if B == 0:
        return (torch.empty(0, k, dtype=torch.float32, device=q.device),
                torch.empty(0, k, dtype=torch.int64, device=q.device))
    if c.shape[0] == 0:
        return (torch.full((B, k), float("-inf"), dtype=torch.float32, device=q.device),
                torch.full((B, k), -1, dtype=torch.int64, device=q.device))
    return fn(q, c, k, metric, ex)


@register("topk_mine", "reference")
def _topk_reference(q, c, k, metric, ex):
    return _ref.topk_mine(q, c, k, metric=metric, exclude=ex)


def _f32_rows(x: torch.Tensor) -> torch.Tensor:
    x = x.to(torch.float32)
    return x if x.stride(1) == 1 else x.contiguous()


def _csr_ptrs(ex):
    if ex is None:
        return 0, 0, None
    indptr, indices = ex
    indptr = indptr.contiguous()
    indices = indices.contiguous() if indices.numel() else torch.zeros(1, dtype=torch.int64, device=indptr.device)
    return indptr.data_ptr(), indices.data_ptr(), (indptr, indices)


@register("topk_mine", "cpu")
def _topk_cpu(q, c, k, metric, ex):
    q, c = _f32_rows(q), _f32_rows(c)
    B, d = q.shape
    scores = torch.empty(B, k, dtype=torch.float32)
    ids = torch.empty(B, k, dtype=torch.int64)
    p, i, _keep = _csr_ptrs(ex)
    core().topk_mine_cpu(q.data_ptr(), B, q.stride(0), c.data_ptr(), c.shape[0], c.stride(0), d,
                         V.METRIC_CODE[metric], k, p, i, scores.data_ptr(), ids.data_ptr(), num_threads())
    return scores, ids


@register("topk_mine", "triton")
def _topk_triton(q, c, k, metric, ex):
    from hardneg.kernels.mining.topk_mine import topk_mine_triton

    return topk_mine_triton(q, c, k, V.METRIC_CODE[metric], ex)


# --------------------------------------------------------------------------------------------------------------


def _seed_from(generator, device) -> int:
    """A 63-bit seed drawn from ``generator`` (or the default generator of ``device``)."""
    if generator is not None:
        return int(torch.randint(0, 2**63 - 1, (1,), generator=generator, device=generator.device).item())
    return int(torch.randint(0, 2**63 - 1, (1,)).item())


def sample_by_score(query, candidates, num_samples, *, metric="dot", weighting="softmax", temperature=1.0,
                    exclude=None, replacement=False, generator=None, backend=None):
    """Draw negatives in proportion to their score-based weight, exactly, in one fused pass over candidates.

    ``weighting="softmax"``: p(c) ∝ exp(score/T) (self-adversarial / NSCaching style).
    ``weighting="softplus"``: p(c) ∝ softplus(score)^(1/T), the BCE loss the candidate would incur as a
    negative, ENS's proxy for the per-negative gradient norm. Excluded ids have probability 0.

    Without replacement the result is an exact sequential draw of n distinct ids (Gumbel-top-k), in draw
    order; with replacement the n draws are i.i.d. from p.

    Randomness comes only from ``generator`` (a seed is drawn from it): the same seed gives the same samples
    on the same backend and machine, whatever the thread count. The CPU and GPU streams do NOT agree with
    each other (the CPU kernel draws at reservoir events with exponential jumps; the Triton kernel draws one
    Philox Gumbel per (row, candidate)); both sample the same distribution exactly.

    Args:
        query, candidates, metric, exclude: as :func:`topk_mine`.
        num_samples: n >= 1. Without replacement, rows with fewer admissible candidates than n are padded.
        weighting: ``"softmax"`` or ``"softplus"``.
        temperature: T > 0, finite.
        replacement: i.i.d. draws (True) or distinct ids (False).
        generator: optional ``torch.Generator``.
        backend: None, ``"reference"`` (materialises B×N; small N only), ``"cpu"`` or ``"triton"``.

    Returns:
        ``(ids, log_prob)``: int64 [B, n] and float32 [B, n]; ``log_prob`` is log p(id) under the full
        normalised distribution over all admissible candidates (the normaliser is computed in the same pass).
        Padding: id −1, log_prob −inf.

    Raises:
        TypeError / ValueError: everything :func:`topk_mine` rejects, plus num_samples <= 0, temperature <= 0
        or non-finite, an unknown weighting, a generator that is not a ``torch.Generator``.

    Example:
        >>> import torch, hardneg
        >>> g = torch.Generator().manual_seed(0)
        >>> ids, lp = hardneg.ops.sample_by_score(torch.randn(2, 8), torch.randn(50, 8), 4, generator=g)
        >>> ids.shape, lp.shape
        (torch.Size([2, 4]), torch.Size([2, 4]))
    """
    op = "sample_by_score"
    n = V.integer(op, "num_samples", num_samples, minimum=1)
    weighting = V.choice(op, "weighting", weighting, WEIGHTINGS)
    temperature = V.positive_float(op, "temperature", temperature)
    if not isinstance(replacement, bool):
        raise TypeError(f"{op}: 'replacement' must be a bool (got {V.describe(replacement)})")
    V.generator(op, generator)
    q, c, metric, ex = _prepare(op, query, candidates, metric, exclude)
    name, fn = resolve(op, backend, q.device)
    B = q.shape[0]
    if B == 0 or c.shape[0] == 0:
        return (torch.full((B, n), -1, dtype=torch.int64, device=q.device),
                torch.full((B, n), float("-inf"), dtype=torch.float32, device=q.device))
    return fn(q, c, n, metric, weighting, temperature, ex, replacement, generator)


@register("sample_by_score", "reference")
def _sample_reference(q, c, n, metric, weighting, temperature, ex, replacement, generator):
    return _ref.sample_by_score(q, c, n, metric=metric, weighting=weighting, temperature=temperature, exclude=ex,
                                replacement=replacement, generator=generator)


@register("sample_by_score", "cpu")
def _sample_cpu(q, c, n, metric, weighting, temperature, ex, replacement, generator):
    q, c = _f32_rows(q), _f32_rows(c)
    B, d = q.shape
    ids = torch.empty(B, n, dtype=torch.int64)
    lp = torch.empty(B, n, dtype=torch.float32)
    p, i, _keep = _csr_ptrs(ex)
    core().sample_by_score_cpu(q.data_ptr(), B, q.stride(0), c.data_ptr(), c.shape[0], c.stride(0), d,
                               V.METRIC_CODE[metric], n, WEIGHTINGS.index(weighting), 1.0 / temperature,
                               replacement, _seed_from(generator, q.device), p, i, ids.data_ptr(), lp.data_ptr(),
                               num_threads())
    return ids, lp


@register("sample_by_score", "triton")
def _sample_triton(q, c, n, metric, weighting, temperature, ex, replacement, generator):
    from hardneg.kernels.mining.sample_by_score import sample_by_score_triton

    return sample_by_score_triton(q, c, n, V.METRIC_CODE[metric], WEIGHTINGS.index(weighting), temperature, ex,
                                  replacement, _seed_from(generator, q.device))


def sample_from_weights(weights, n, *, replacement, generator=None):
    """Draw n column indices per row with probability ∝ ``weights`` (for samplers that already hold weights,
    e.g. uniform over a row's top-K pool, or an NSCaching cache).

    Without replacement: an exact sequential draw of distinct indices (Gumbel-top-k), padded with −1 where a
    row has fewer than n positive weights. With replacement: i.i.d. draws; rows whose weights are all zero
    give −1. Pure torch on the weights' device (no B×N problem here: the weights are already materialised).

    Args:
        weights: [B, M] floating, finite, >= 0.
        n: >= 1.
        replacement: bool (keyword-only, required).
        generator: optional ``torch.Generator``.

    Returns:
        int64 [B, n].

    Raises:
        TypeError: non-tensor / non-floating weights, non-bool replacement, bad generator.
        ValueError: weights not 2-D, negative / NaN / Inf weights, n <= 0.

    Example:
        >>> import torch, hardneg
        >>> hardneg.ops.sample_from_weights(torch.ones(2, 5), 3, replacement=False).shape
        torch.Size([2, 3])
    """
    op = "sample_from_weights"
    w = V.floating(op, "weights", weights, 2, "[B, M]")
    n = V.integer(op, "n", n, minimum=1)
    if not isinstance(replacement, bool):
        raise TypeError(f"{op}: 'replacement' must be a bool (got {V.describe(replacement)})")
    V.generator(op, generator)
    if w.numel():
        if bool(torch.isnan(w).any()) or bool(torch.isinf(w).any()):
            raise ValueError(f"{op}: 'weights' must be finite (got NaN/Inf in {V.describe(w)})")
        if bool((w < 0).any()):
            raise ValueError(f"{op}: 'weights' must be >= 0 (got min {float(w.min())})")
    return _ref.sample_from_weights(w, n, replacement=replacement, generator=generator)
