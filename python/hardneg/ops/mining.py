"""Mining family: fused top-K similarity mining and loss-proportional sampling over all candidates.

Shapes: ``B`` queries, ``N`` candidates, ``d`` features, ``k``/``n`` results per query.

Metrics (larger score = more similar = harder negative), shared by every op here and defined once in
:mod:`hardneg.metrics`:

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
they are normalised once per call. Their ids are range-checked on every call; on CUDA inputs that is one
device synchronisation (:mod:`hardneg._validate`).
"""
from __future__ import annotations

import math
import sys

import torch

from hardneg import _validate as V
from hardneg import reference as _ref
from hardneg._backend import core, num_threads, register, resolve
from hardneg._constants import METRICS, WEIGHTINGS, code
from hardneg._random import as_generator, compile_seed, seed_from

__all__ = ["topk_mine", "mlp_topk_mine", "sample_by_score", "sample_from_weights"]

CSR = tuple[torch.Tensor, torch.Tensor]  # (indptr int64 [B+1], indices int64)


def csr_args(exclude):
    """(indptr, indices) of an ``exclude`` CSR pair, or (None, None): the custom ops' two optional tensors."""
    return (None, None) if exclude is None else (exclude[0], exclude[1])


def _library():
    """:mod:`hardneg.ops._library` (the custom ops and their backward passes; imported late: it imports us)."""
    from hardneg.ops import _library as lib

    return lib


def _sharded(candidates) -> bool:
    """A :class:`hardneg.distributed.ShardedCandidates` (none can exist before that module is imported)."""
    mod = sys.modules.get("hardneg.distributed")
    return mod is not None and isinstance(candidates, mod.ShardedCandidates)


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
    metric = V.choice(op, "metric", metric, METRICS)
    if metric == "rotate" and q.shape[1] % 2:
        raise ValueError(f"{op}: metric 'rotate' needs an even d ([real | imag] halves) (got d={q.shape[1]})")
    if q.shape[1] == 0:
        raise ValueError(f"{op}: d must be >= 1 (got query {list(q.shape)})")
    if check_finite:  # NaN/Inf in either, then the float32 score bound (one min/max reduction each)
        V.score_range(op, q, c, metric)
    ex = None
    if exclude is not None:
        ex = V.csr(op, "exclude", exclude, q.shape[0], c.shape[0], q.device)
    return q, c, metric, ex


def topk_mine(query: torch.Tensor, candidates: torch.Tensor, k: int, *, metric: str = "dot",
              exclude: CSR | None = None, tie_break: torch.Tensor | None = None,
              backend: str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-k most similar candidates per query, never returning excluded ids, without materialising B×N.

    Args:
        query: [B, d] float32 (float16/bfloat16 too; accumulated in float32; upcast on CPU).
        candidates: [N, d], same dtype and device as ``query``; or a
            :class:`hardneg.distributed.ShardedCandidates` (rows split across ranks; a collective call returning
            global ids, bit-identical to this op on the concatenated table; communication O(B·k·world_size)).
        k: results per query, >= 1; k > N is allowed (padding).
        metric: one of ``"dot"``, ``"cos"``, ``"l2"``, ``"l1"``, ``"rotate"`` (module docstring).
        exclude: optional CSR ``(indptr [B+1], indices)`` of ids to skip per query.
        tie_break: optional integer [N] keys (int64 or int32) on the candidates' device: candidates with equal
            scores rank by the smaller key (then the smaller id) instead of by the smaller id. A random
            permutation (``torch.randperm(N)``) breaks ties uniformly at random, e.g. among the identical
            embeddings of cold-start nodes, without reordering the table (the CPU kernel compares keys; the
            Triton path mines the table in key order). Not with a ``ShardedCandidates``.
        backend: None (best for the device), ``"reference"``, ``"cpu"`` or ``"triton"``.

    Returns:
        ``(scores, ids)``: float32 [B, k] and int64 [B, k]. Each row is sorted by descending score, ties to
        the smaller id (the smaller ``tie_break`` key when given); a row with fewer than k admissible
        candidates is padded with id −1 and score −inf.

    Raises:
        TypeError: non-tensor inputs, non-floating or mismatched dtypes, non-int k, non-integer CSR or
            ``tie_break``.
        ValueError: wrong ndim, mismatched d or device, k <= 0, unknown metric or backend, odd d with
            ``"rotate"``, malformed CSR (length, non-monotone indptr, ids out of range), NaN/Inf inputs,
            ``tie_break`` not of length N or on another device, ``tie_break`` with a ``ShardedCandidates``.

    Example:
        >>> import torch, hardneg
        >>> q, c = torch.randn(4, 8), torch.randn(100, 8)
        >>> s, i = hardneg.ops.topk_mine(q, c, 5, exclude=(torch.tensor([0, 1, 1, 1, 2]), torch.tensor([7, 3])))
        >>> s.shape, i.shape
        (torch.Size([4, 5]), torch.Size([4, 5]))
    """
    op = "topk_mine"
    if _sharded(candidates):
        if tie_break is not None:
            raise ValueError(f"{op}: 'tie_break' is not supported with a ShardedCandidates table (got "
                             f"{V.describe(tie_break)})")
        from hardneg import distributed

        return distributed.topk_mine(query, candidates, k, metric=metric, exclude=exclude, backend=backend)
    if torch.compiler.is_compiling():  # traced: the custom op (it runs this function, checks and all)
        return _library().topk_mine(query, candidates, k, metric, *csr_args(exclude), backend, tie_break)
    k = V.integer(op, "k", k, minimum=1)
    q, c, metric, ex = _prepare(op, query, candidates, metric, exclude)
    tie = None if tie_break is None else _tie_keys(op, tie_break, c)
    V.alloc(op, "the output (scores, ids)", (q.shape[0], k), 12, q.device)
    name, fn = resolve(op, backend, q.device)
    B = q.shape[0]
    if B == 0:
        return (torch.empty(0, k, dtype=torch.float32, device=q.device),
                torch.empty(0, k, dtype=torch.int64, device=q.device))
    if c.shape[0] == 0:
        return (torch.full((B, k), float("-inf"), dtype=torch.float32, device=q.device),
                torch.full((B, k), -1, dtype=torch.int64, device=q.device))
    out = fn(q, c, k, metric, ex) if tie is None else fn(q, c, k, metric, ex, tie_break=tie)
    return _library().attach_grad(op, q, c, out, metric=metric)


def mine_cached_table(op: str, query: torch.Tensor, table: torch.Tensor, k: int, table_magnitude: float,
                      exclude: CSR, tie_break: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Internal (not exported): :func:`topk_mine` (metric ``"dot"``) against a table its caller checked when it
    made it, for a caller that mines one table many times (ENS's cached candidates, refreshed every R calls):
    ``table`` float32 [N, d],
    contiguous, finite, its largest |entry| ``table_magnitude`` (:func:`hardneg._validate.magnitude`); ``exclude``
    a CSR whose rows are sorted, unique and in [0, N) by construction; ``tie_break`` contiguous int64 [N] or None.
    Only the queries are checked here (NaN/Inf and the float32 score bound, one reduction); errors name ``op``.
    Anything else (a CUDA table, another dtype, tracing, a query that requires grad) goes through
    :func:`topk_mine` and all its checks. Results are :func:`topk_mine`'s."""
    if (torch.compiler.is_compiling() or query.device.type != "cpu" or query.dtype != torch.float32
            or table.dtype != torch.float32 or query.requires_grad):
        return topk_mine(query, table, k, metric="dot", exclude=exclude, tie_break=tie_break)
    V.score_bound(op, query.shape[1], V.magnitude(op, "query", query), table_magnitude, "dot")
    if query.shape[0] == 0 or table.shape[0] == 0:
        return topk_mine(query, table, k, metric="dot", exclude=exclude, tie_break=tie_break)
    return _topk_cpu(query, table, k, "dot", exclude, tie_break=tie_break)


def _tie_keys(op: str, tie_break, c: torch.Tensor, n: int | None = None) -> torch.Tensor:
    """``tie_break`` checked (integer [N] on the candidates' device; ``n`` instead of N when the ids are not the
    table's rows) as a contiguous int64 tensor."""
    t = V.tensor(op, "tie_break", tie_break, ndim=1, dtypes=V.INDEX_DTYPES, kind="integer tensor",
                 what="of tie keys [N]")
    n = c.shape[0] if n is None else n
    if t.shape[0] != n:
        raise ValueError(f"{op}: 'tie_break' must have one key per candidate ({n}; got {V.describe(t)})")
    if t.device != c.device:
        raise ValueError(f"{op}: 'tie_break' must be on the candidates' device {c.device} (got {t.device})")
    return t.to(torch.int64).contiguous()


def _in_key_order(fn, q, c, k, metric, ex, tie_break):
    """Mining with tie keys through a kernel that breaks ties by id: the table in (key, id) order, the exclusion
    ids and the results mapped between the two orders (a gather of the table; the Triton path)."""
    N = c.shape[0]
    order = torch.argsort(tie_break, stable=True)  # equal keys keep id order
    pos = torch.empty_like(order)
    pos[order] = torch.arange(N, device=order.device)
    if ex is not None:  # the one CSR normalisation: rows sorted and unique again after the mapping
        ex = V.normalize_csr(ex[0], pos[ex[1]], ex[0].numel() - 1, N)
    s, i = fn(q, c[order], k, metric, ex)
    return s, torch.where(i >= 0, order[i.clamp_min(0)], i)


@register("topk_mine", "reference")
def _topk_reference(q, c, k, metric, ex, tie_break=None):
    return _ref.topk_mine(q, c, k, metric=metric, exclude=ex, tie_break=tie_break)


def _f32_rows(x: torch.Tensor) -> torch.Tensor:
    x = x.to(torch.float32)  # expanded (stride-0) rows are valid inputs: the kernels want stride(0) >= d
    return x if x.stride(1) == 1 and x.stride(0) >= x.shape[1] else x.contiguous()


def _problem(q, c, metric, ex) -> tuple[dict, tuple]:
    """The CPU mining kernels' problem arguments (float32 rows, exclusion CSR), and the tensors they point to."""
    q, c = _f32_rows(q), _f32_rows(c)
    keep = (q, c)
    indptr = indices = 0
    if ex is not None:
        ptr, idx = ex[0].contiguous(), ex[1].contiguous()
        if not idx.numel():  # a valid pointer for an empty id list
            idx = torch.zeros(1, dtype=torch.int64, device=ptr.device)
        keep += (ptr, idx)
        indptr, indices = ptr.data_ptr(), idx.data_ptr()
    args = dict(query=q.data_ptr(), num_queries=q.shape[0], query_stride=q.stride(0), candidates=c.data_ptr(),
                num_candidates=c.shape[0], candidate_stride=c.stride(0), dim=q.shape[1],
                metric=code(METRICS, metric), exclude_indptr=indptr, exclude_indices=indices,
                num_threads=num_threads())
    return args, keep


@register("topk_mine", "cpu")
def _topk_cpu(q, c, k, metric, ex, tie_break=None):
    B = q.shape[0]
    scores = torch.empty(B, k, dtype=torch.float32)
    ids = torch.empty(B, k, dtype=torch.int64)
    args, _keep = _problem(q, c, metric, ex)
    core().topk_mine_cpu(**args, k=k, out_scores=scores.data_ptr(), out_ids=ids.data_ptr(),
                         tie_break=0 if tie_break is None else tie_break.data_ptr())
    return scores, ids


@register("topk_mine", "triton")
def _topk_triton(q, c, k, metric, ex, tie_break=None):
    from hardneg.kernels.mining.topk_mine import topk_mine_triton

    def mine(q, c, k, metric, ex):
        return topk_mine_triton(q, c, k, code(METRICS, metric), ex)

    return mine(q, c, k, metric, ex) if tie_break is None else _in_key_order(mine, q, c, k, metric, ex, tie_break)


# --------------------------------------------------------------------------------------------------------------
def mlp_topk_mine(query: torch.Tensor, candidates: torch.Tensor, weight: torch.Tensor, k: int, *,
                  bias: float = 0.0, exclude: CSR | None = None, offsets=None,
                  candidate_index: torch.Tensor | None = None, tie_break: torch.Tensor | None = None,
                  backend: str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-k candidates per query by an MLP link decoder's score, never returning excluded ids, without the
    [B, N, d] hidden layer (the decoder of TGN, TGAT and DyGLib, ``MergeLayer``: ``w·relu(A z_s + B z_d + b) + c``,
    with the two projections computed once per side).

    ``score(b, j) = weight · relu(query[b] + candidates[j] + o_bj) + bias``, where ``o_bj`` is 0 except for the
    (row, id) pairs in ``offsets``: a per-pair term inside the ReLU (a decoder's pair features, e.g. how often the
    source met the candidate; :class:`hardneg.tasks.temporal.models.TGN`'s ``pair_history``). A fused top-k over
    every candidate, as :func:`topk_mine` does for the similarity metrics: the CPU kernel scores 6 queries × 16
    candidates per register block (the tile pipeline of the mining family), the Triton kernel the same tiles on
    the GPU. The CPU kernel scores the offset pairs in the same pass; the Triton path excludes them from its pass,
    scores them on their own and merges.

    Args:
        query: [B, d] float (the projected sources, their bias included).
        candidates: [N, d], same dtype and device (the projected destinations).
        weight: [d], the output layer's weights, same device.
        k: results per query, >= 1; k > N is allowed (padding).
        bias: the output layer's bias (a float), added to every score; it does not change the ranking.
        exclude: optional CSR ``(indptr [B+1], indices)`` of ids to skip per query (wins over ``offsets``).
        offsets: optional ``(indptr [B+1], ids [E], values [E, d])``: query b's pairs are ids
            ``indptr[b]:indptr[b+1]``, each with its own vector (a pair listed twice must repeat its values).
        candidate_index: optional integer [N] on the candidates' device: candidate j's vector is row
            ``candidate_index[j]`` of ``candidates``, which then holds only the distinct rows (U of them). Ids,
            ``exclude``, ``offsets`` and ``tie_break`` are in [0, N). The CPU kernel scores each distinct row once
            per query (the identical embeddings of nodes without history: half of UCI's destination table); the
            other backends gather the rows first.
        tie_break: optional integer [N] keys on the candidates' device, as for :func:`topk_mine`.
        backend: None (best for the device), ``"reference"``, ``"cpu"`` or ``"triton"``.

    Returns:
        ``(scores, ids)``: float32 [B, k] and int64 [B, k], each row by descending score, ties to the smaller
        ``tie_break`` key (else the smaller id), padded with (−inf, −1). The scores carry no gradient: mining
        selects; score the chosen ids with the model to train on them.

    Raises:
        TypeError: non-tensor or non-floating inputs, mismatched dtypes, non-int k, non-float bias, a malformed
            ``offsets`` (not a 3-tuple, integer ids, floating values), non-integer CSR or ``tie_break``.
        ValueError: wrong shapes (``weight`` not [d], ``offsets`` values not [E, d]), another device, k <= 0,
            unknown backend, malformed CSR, offset ids out of range, an offset pair repeated with other values, NaN/Inf inputs,
            scores that could overflow float32, a bad ``tie_break``.

    Example:
        >>> import torch, hardneg
        >>> a, c, w = torch.randn(4, 8), torch.randn(100, 8), torch.randn(8)
        >>> s, i = hardneg.ops.mlp_topk_mine(a, c, w, 5, exclude=(torch.tensor([0, 1, 1, 1, 2]), torch.tensor([7, 3])))
        >>> s.shape, i.shape
        (torch.Size([4, 5]), torch.Size([4, 5]))
    """
    op = "mlp_topk_mine"
    if torch.compiler.is_compiling():  # traced: the custom op (it runs this function, checks and all)
        o = (None, None, None) if offsets is None else tuple(offsets)
        return _library().mlp_topk_mine(query, candidates, weight, k, float(bias), *csr_args(exclude), *o,
                                        candidate_index, tie_break, backend)
    k = V.integer(op, "k", k, minimum=1)
    q, c, _, _ = _prepare(op, query, candidates, "dot", None, check_finite=False)
    B, N, d = q.shape[0], c.shape[0], q.shape[1]
    index = None
    if candidate_index is not None:
        index = V.tensor(op, "candidate_index", candidate_index, ndim=1, dtypes=V.INDEX_DTYPES,
                         kind="integer tensor", what="of rows of 'candidates' [N]")
        if index.device != c.device:
            raise ValueError(f"{op}: 'candidate_index' must be on the candidates' device {c.device} (got "
                             f"{index.device})")
        index = V.ids(op, "candidate_index", index, c.shape[0], what="rows of 'candidates'").contiguous()
        N = index.numel()
    ex = None if exclude is None else V.csr(op, "exclude", exclude, B, N, q.device)
    w = V.floating(op, "weight", weight, 1, "[d]")
    if w.shape[0] != d:
        raise ValueError(f"{op}: 'weight' must be [d] = [{d}] like the rows of 'query' (got {V.describe(w)})")
    V.same_device(op, ("query", "weight"), q, w)
    if isinstance(bias, bool) or not isinstance(bias, (int, float)):
        raise TypeError(f"{op}: 'bias' must be a float (got {V.describe(bias)})")
    bias = float(bias)
    if not math.isfinite(bias):
        raise ValueError(f"{op}: 'bias' must be finite (got {bias})")
    off = None if offsets is None else _offsets(op, offsets, B, N, d, q)
    _decoder_bound(op, q, c, w, None if off is None else off[2], bias)
    tie = None if tie_break is None else _tie_keys(op, tie_break, c, N)
    V.alloc(op, "the output (scores, ids)", (B, k), 12, q.device)
    name, fn = resolve(op, backend, q.device)
    if B == 0 or N == 0:
        return (torch.full((B, k), float("-inf"), dtype=torch.float32, device=q.device),
                torch.full((B, k), -1, dtype=torch.int64, device=q.device))
    with torch.no_grad():
        s, i = fn(q.detach(), c.detach(), w.detach(), k, ex, off, tie, index)
    return torch.where(i >= 0, s + bias, s) if bias else s, i


def mine_decoder_table(op: str, query: torch.Tensor, candidates: torch.Tensor, weight: torch.Tensor, k: int,
                       exclude: CSR | None, offsets, tie_break: torch.Tensor | None,
                       candidate_index: torch.Tensor | None = None) -> torch.Tensor:
    """Internal (not exported): the ids [B, k] of :func:`mlp_topk_mine` (bias 0) for a caller that builds its
    inputs itself every step (ENS's score pool: the decoder's projections of its own tables): an ``exclude`` CSR
    whose rows are sorted, unique and in [0, N); ``offsets`` from
    :meth:`~hardneg.tasks.temporal.models.TemporalModel.pair_offsets` (sorted by row, each (row, id) once, ids in
    [0, N)); ``tie_break`` a contiguous int64 permutation or None; ``candidate_index`` a contiguous int64 [N] of
    rows of ``candidates`` or None. Only NaN/Inf and the float32 bound are checked here (one reduction per
    tensor); errors name ``op``. Anything else (CUDA, another dtype, tracing, k > N) goes through
    :func:`mlp_topk_mine` and all its checks."""
    N = candidates.shape[0] if candidate_index is None else candidate_index.numel()
    if (torch.compiler.is_compiling() or query.device.type != "cpu" or query.dtype != torch.float32
            or candidates.dtype != torch.float32 or k > N or not query.shape[0]):
        return mlp_topk_mine(query, candidates, weight, k, exclude=exclude, offsets=offsets,
                             candidate_index=candidate_index, tie_break=tie_break)[1]
    _decoder_bound(op, query, candidates, weight, None if offsets is None else offsets[2])
    return _mlp_cpu(query, candidates, weight, k, exclude, offsets, tie_break, candidate_index)[1]


def _decoder_bound(op, q, c, w, offset_values=None, bias: float = 0.0) -> None:
    """The NaN/Inf check of the decoder's inputs (the :func:`hardneg._validate.finite` error) and the float32 bound
    on its scores, |w·relu(q + c + o)| + |bias| <= d max|w| (max|q| + max|c| + max|o|) + |bias|: one reduction per
    tensor."""
    mq, mc, mw = (V.magnitude(op, n, x) for n, x in (("query", q), ("candidates", c), ("weight", w)))
    mo = 0.0 if offset_values is None else V.magnitude(op, "offsets values", offset_values)
    d = q.shape[1]
    if not d * mw * (mq + mc + mo) + abs(bias) <= V._F32_MAX:
        raise ValueError(f"{op}: scores could overflow float32: 'query' has entries up to {mq:.3g}, "
                         f"'candidates' up to {mc:.3g}, 'weight' up to {mw:.3g} (d={d}); rescale the inputs")


def _offsets(op, offsets, B, N, d, q):
    """``offsets`` checked: (indptr int64 [B+1], ids int64 [E], values [E, d] in the query's dtype)."""
    if not isinstance(offsets, (tuple, list)) or len(offsets) != 3:
        raise TypeError(f"{op}: 'offsets' must be a tuple (indptr, ids, values) (got {V.describe(offsets)})")
    ptr, ids = V.csr_structure(op, "offsets", offsets[:2], B, q.device)
    vals = V.floating(op, "offsets values", offsets[2], 2, "[E, d]")
    if vals.shape != (ids.numel(), d):
        raise ValueError(f"{op}: 'offsets' values must be [E, d] = [{ids.numel()}, {d}], one row per id (got "
                         f"{V.describe(vals)})")
    if vals.device != q.device:
        raise ValueError(f"{op}: 'offsets' values must be on {q.device} like the other inputs (got {vals.device})")
    ids = V.ids(op, "offsets", ids, N)
    rows = torch.repeat_interleave(torch.arange(B, device=q.device), ptr[1:] - ptr[:-1])
    key = rows * N + ids
    if key.numel() > 1:  # sorted by (row, id); a repeated pair must repeat its values, and is kept once
        order = torch.argsort(key, stable=True)
        key, ids, vals = key[order], ids[order], vals[order]
        dup = key[1:] == key[:-1]
        if bool(dup.any()):
            if not torch.equal(vals[1:][dup], vals[:-1][dup]):
                raise ValueError(f"{op}: 'offsets' lists a (row, id) pair twice with different values")
            first = torch.cat([dup.new_ones(1), ~dup])
            rows, ids, vals = rows[first], ids[first], vals[first]
            ptr = torch.zeros_like(ptr)
            ptr[1:] = torch.cumsum(torch.bincount(rows, minlength=B), 0)
    return ptr, ids, vals.to(q.dtype)


def _merge_offsets(kernel, q, c, w, k, ex, off, tie):
    """A kernel without offsets run with the offset pairs excluded, their exact scores merged in: the top k of
    every pair is the top k of (the kernel's top k over the other pairs) ∪ (the offset pairs)."""
    if off is None or not off[1].numel():
        return kernel(q, c, w, k, ex, tie)
    B, N = q.shape[0], c.shape[0]
    ptr, ids, vals = off
    counts = ptr[1:] - ptr[:-1]
    rows = torch.repeat_interleave(torch.arange(B, device=q.device), counts)
    keep = torch.ones_like(ids, dtype=torch.bool)
    if ex is not None and ex[1].numel():  # excluded pairs stay excluded
        erows = torch.repeat_interleave(torch.arange(B, device=q.device), ex[0][1:] - ex[0][:-1])
        keep = ~torch.isin(rows * N + ids, erows * N + ex[1])
        both = torch.cat([erows, rows]), torch.cat([ex[1], ids])
    else:
        both = rows, ids
    cnt = torch.bincount(both[0], minlength=B)
    uptr = torch.zeros(B + 1, dtype=torch.int64, device=q.device)
    uptr[1:] = torch.cumsum(cnt, 0)
    order = torch.argsort(both[0], stable=True)
    ks, ki = kernel(q, c, w, k, V.normalize_csr(uptr, both[1][order], B, N), tie)
    qf, cf, wf = q.float(), c.float(), w.float()
    so = (torch.relu(qf[rows] + cf[ids] + vals.float()) * wf).sum(-1)
    so = torch.where(keep, so, torch.full_like(so, float("-inf")))
    width = int(counts.max())
    slot = torch.arange(ids.numel(), device=q.device) - ptr[:-1][rows]
    es = torch.full((B, width), float("-inf"), device=q.device)
    ei = torch.full((B, width), -1, dtype=torch.int64, device=q.device)
    es[rows, slot], ei[rows, slot] = so, torch.where(keep, ids, -1)
    s, i = torch.cat([ks, es], 1), torch.cat([ki, ei], 1)
    big = torch.iinfo(torch.int64).max  # padding (id -1) ranks last among equal (-inf) scores
    by = torch.argsort(torch.where(i >= 0, i, big), dim=1, stable=True)  # id asc, then key asc, then score desc
    if tie is not None:
        key = torch.where(i >= 0, tie[i.clamp_min(0)], big)
        by = torch.gather(by, 1, torch.argsort(torch.gather(key, 1, by), dim=1, stable=True))
    order = torch.gather(by, 1, torch.argsort(torch.gather(s, 1, by), dim=1, descending=True, stable=True))
    order = order[:, :k]
    s, i = torch.gather(s, 1, order), torch.gather(i, 1, order)
    return s, torch.where(torch.isneginf(s), torch.full_like(i, -1), i)


@register("mlp_topk_mine", "reference")
def _mlp_reference(q, c, w, k, ex, off, tie, index=None):
    return _ref.mlp_topk_mine(q, c if index is None else c[index], w, k, exclude=ex, offsets=off, tie_break=tie)


@register("mlp_topk_mine", "cpu")
def _mlp_cpu(q, c, w, k, ex, off, tie, index=None):
    """The C++ kernel; it scores the offset pairs exactly itself, in the same pass, and each distinct row of an
    indexed table once per query."""
    B = q.shape[0]
    scores = torch.empty(B, k, dtype=torch.float32)
    ids = torch.empty(B, k, dtype=torch.int64)
    args, _keep = _problem(q, c, "dot", ex)
    del args["metric"]
    w = w.to(torch.float32).contiguous()
    optr = oidx = oval = 0
    if off is not None and off[1].numel():
        off = (off[0].contiguous(), off[1].contiguous(), off[2].to(torch.float32).contiguous())
        optr, oidx, oval = (x.data_ptr() for x in off)
    index = None if index is None else index.to(torch.int64).contiguous()
    core().mlp_topk_mine_cpu(**args, weight=w.data_ptr(), k=k, offset_indptr=optr, offset_indices=oidx,
                             offset_values=oval, candidate_index=0 if index is None else index.data_ptr(),
                             num_ids=0 if index is None else index.numel(), out_scores=scores.data_ptr(),
                             out_ids=ids.data_ptr(), tie_break=0 if tie is None else tie.data_ptr())
    return scores, ids


def _mlp_triton_kernel(q, c, w, k, ex, tie):
    from hardneg.kernels.mining.mlp_topk_mine import mlp_topk_mine_triton

    def mine(q, c, k, metric, ex):
        return mlp_topk_mine_triton(q, c, w, k, ex)

    return mine(q, c, k, "mlp", ex) if tie is None else _in_key_order(mine, q, c, k, "mlp", ex, tie)


@register("mlp_topk_mine", "triton")
def _mlp_triton(q, c, w, k, ex, off, tie, index=None):
    return _merge_offsets(_mlp_triton_kernel, q, c if index is None else c[index], w, k, ex, off, tie)




def sample_by_score(query: torch.Tensor, candidates: torch.Tensor, num_samples: int, *, metric: str = "dot",
                    weighting: str = "softmax", temperature: float = 1.0, exclude: CSR | None = None,
                    replacement: bool = False, generator: torch.Generator | None = None,
                    backend: str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
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
        query, candidates, metric, exclude: as :func:`topk_mine` (a ``ShardedCandidates`` too: an exact draw from
            the same distribution, not the same draw; :func:`hardneg.distributed.sample_by_score`).
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
    if _sharded(candidates):
        from hardneg import distributed

        return distributed.sample_by_score(query, candidates, num_samples, metric=metric, weighting=weighting,
                                           temperature=temperature, exclude=exclude, replacement=replacement,
                                           generator=generator, backend=backend)
    if torch.compiler.is_compiling():
        return _library().sample_by_score(query, candidates, num_samples, metric, weighting, temperature,
                                          *csr_args(exclude), replacement, compile_seed(op, generator), backend)
    n = V.integer(op, "num_samples", num_samples, minimum=1)
    weighting = V.choice(op, "weighting", weighting, WEIGHTINGS)
    temperature = V.positive_float(op, "temperature", temperature)
    if not isinstance(replacement, bool):
        raise TypeError(f"{op}: 'replacement' must be a bool (got {V.describe(replacement)})")
    V.generator(op, generator)
    generator = as_generator(generator)  # a SeedStream: the generator of its next sub-seed
    q, c, metric, ex = _prepare(op, query, candidates, metric, exclude)
    V.alloc(op, "the output (ids, log_prob)", (q.shape[0], n), 12, q.device)
    name, fn = resolve(op, backend, q.device)
    B = q.shape[0]
    if B == 0 or c.shape[0] == 0:
        return (torch.full((B, n), -1, dtype=torch.int64, device=q.device),
                torch.full((B, n), float("-inf"), dtype=torch.float32, device=q.device))
    return _library().attach_grad(op, q, c, fn(q, c, n, metric, weighting, temperature, ex, replacement, generator),
                                  metric=metric, exclude=ex, weighting=weighting, temperature=temperature)


@register("sample_by_score", "reference")
def _sample_reference(q, c, n, metric, weighting, temperature, ex, replacement, generator):
    return _ref.sample_by_score(q, c, n, metric=metric, weighting=weighting, temperature=temperature, exclude=ex,
                                replacement=replacement, generator=generator)


@register("sample_by_score", "cpu")
def _sample_cpu(q, c, n, metric, weighting, temperature, ex, replacement, generator):
    B = q.shape[0]
    ids = torch.empty(B, n, dtype=torch.int64)
    lp = torch.empty(B, n, dtype=torch.float32)
    args, _keep = _problem(q, c, metric, ex)
    core().sample_by_score_cpu(**args, num_samples=n, weighting=code(WEIGHTINGS, weighting),
                               inv_temp=1.0 / temperature, replacement=replacement, seed=seed_from(generator),
                               out_ids=ids.data_ptr(), out_log_prob=lp.data_ptr())
    return ids, lp


@register("sample_by_score", "triton")
def _sample_triton(q, c, n, metric, weighting, temperature, ex, replacement, generator):
    from hardneg.kernels.mining.sample_by_score import sample_by_score_triton

    return sample_by_score_triton(q, c, n, code(METRICS, metric), code(WEIGHTINGS, weighting), temperature, ex,
                                  replacement, seed_from(generator))


def sample_from_weights(weights: torch.Tensor, n: int, *, replacement: bool,
                        generator: torch.Generator | None = None) -> torch.Tensor:
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
    if torch.compiler.is_compiling():
        return _library().sample_from_weights(weights, n, replacement, compile_seed(op, generator))
    w = V.floating(op, "weights", weights, 2, "[B, M]")
    n = V.integer(op, "n", n, minimum=1)
    if not isinstance(replacement, bool):
        raise TypeError(f"{op}: 'replacement' must be a bool (got {V.describe(replacement)})")
    V.generator(op, generator)
    generator = as_generator(generator)  # a SeedStream: the generator of its next sub-seed
    V.alloc(op, "the output", (w.shape[0], n), 8, w.device)
    if w.numel():
        if bool(torch.isnan(w).any()) or bool(torch.isinf(w).any()):
            raise ValueError(f"{op}: 'weights' must be finite (got NaN/Inf in {V.describe(w)})")
        if bool((w < 0).any()):
            raise ValueError(f"{op}: 'weights' must be >= 0 (got min {float(w.min())})")
    return _ref.sample_from_weights(w, n, replacement=replacement, generator=generator)
