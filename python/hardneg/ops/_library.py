"""Every public op as a ``torch.library`` custom op under ``hardneg::``, so ``torch.compile`` sees through it.

Each custom op is a thin layer over its public function in :mod:`hardneg.ops`: the implementation calls that
function (validation and backend choice stay there, in one place, so the errors are the same), and a fake
implementation gives the exact output shapes and dtypes for tracing. (Only an argument the op's schema
cannot take at all, a list where a tensor goes, is rejected before that, by torch's dispatcher, with torch's
message.) Call them as ``torch.ops.hardneg.<op>`` (or through the names here):

* ``topk_mine(query, candidates, k, metric, exclude_indptr, exclude_indices, backend, tie_break) -> (scores, ids)``
* ``mlp_topk_mine(query, candidates, weight, k, bias, exclude_indptr, exclude_indices, offset_indptr, offset_ids,
  offset_values, candidate_index, tie_break, backend) -> (scores, ids)``
* ``sample_by_score(query, candidates, num_samples, metric, weighting, temperature, exclude_indptr,
  exclude_indices, replacement, seed, backend) -> (ids, log_prob)``
* ``sample_from_weights(weights, n, replacement, seed) -> ids``
* ``corrupt(positives, num_negatives, num_entities, side, known, domain_head_indptr, domain_head_ids,
  domain_tail_indptr, domain_tail_ids, num_relations, seed, backend, max_tries) -> (negatives, valid)``
* ``known_contains(known, keys, before, inclusive, backend) -> bool [B]``
* ``known_mask(known, anchor, candidates, side, backend) -> bool [B, n]``
* ``known_exclusion(known, anchor, side, backend) -> (indptr [B+1], indices [m])`` (m is data-dependent)
* ``temporal_neighbors(graph, nodes, times, k, strategy, inclusive, window, seed, backend)
  -> (nbrs, eids, times, valid)``
* ``temporal_assemble(graph, nodes, times, k, event_times, features, strategy, seed, backend)
  -> (nbrs, eids, dt, valid, feats)`` (``feats`` [B, k, 0] without features)
* ``enclosing_subgraphs(indptr, indices, num_nodes, pairs, num_hops, max_nodes_per_hop, seed, backend)
  -> (nodes, node_ptr, edge_index, edge_ptr, labels)`` (sizes data-dependent)
* ``spmm(indptr, indices, values, x, num_rows, symmetric, backend) -> [num_rows, D]`` (differentiable in x)
* ``time_encode(dt, weight, bias, backend) -> [*dt.shape, τ]`` (differentiable in dt, weight and bias)

Randomness: the random ops take an explicit integer ``seed`` in place of a ``torch.Generator`` (a compiled
graph cannot hold one): ``op(..., seed=s)`` returns exactly what the public function returns with
``generator=torch.Generator().manual_seed(s)``.

``known`` and ``graph`` are the ``.handle`` of a :class:`hardneg.KnownSet` / :class:`hardneg.TemporalGraph`
(:class:`hardneg._opaque.Handle`, an opaque reference object: torch >= 2.10; on older torch the five ops that take
one are not registered)::

    neg, valid = torch.ops.hardneg.corrupt(positives, 64, num_entities, "both", known.handle, seed=step)

Autograd: ``scores`` of ``topk_mine`` is differentiable with respect to ``query`` and ``candidates``: the
backward gathers the k selected candidates and differentiates the metric (:func:`hardneg.metrics.pairwise`),
for every metric, at O(B·k·d). ``log_prob`` of ``sample_by_score`` is differentiable with respect to the
scores, hence ``query`` and ``candidates``: ∂ log p(i) = ∂ logit(i) − Σ_j p(j) ∂ logit(j) over the admissible
candidates, which the backward recomputes as a [B, N] float64 score matrix (the reference's cost: small N
only). Padded slots (id −1) get zero gradient. The public functions are differentiable the same way: when
``query`` or ``candidates`` requires grad they attach these backward passes to their outputs
(:func:`attach_grad`), without a second forward pass.
"""
from __future__ import annotations

import torch
from torch.library import custom_op

from hardneg._opaque import HAS_OPAQUE, Handle
from hardneg.metrics import pairwise, score_matrix
from hardneg.ops import filtering as _filtering
from hardneg.graph import CSRGraph
from hardneg.ops import mining as _mining
from hardneg.ops import sparse as _sparse
from hardneg.ops import subgraph as _subgraph
from hardneg.ops import temporal as _temporal
from hardneg.reference import temporal as _ref_temporal
from hardneg.reference.mining import exclusion_mask, logits

__all__ = ["topk_mine", "mlp_topk_mine", "sample_by_score", "sample_from_weights", "corrupt", "known_contains",
           "known_mask", "known_exclusion", "temporal_neighbors", "temporal_assemble", "enclosing_subgraphs",
           "spmm", "time_encode", "topk_scores", "score_log_prob", "attach_grad", "OPS"]

Tensor = torch.Tensor


def _generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _csr(indptr: Tensor | None, indices: Tensor | None):
    if indptr is None and indices is None:
        return None
    return (indptr, indices)


def _fresh(*outs):
    """Custom-op outputs never share storage with each other (the public functions' empty fast paths may)."""
    seen: set[int] = set()
    res = []
    for o in outs:
        key = o.untyped_storage().data_ptr()
        res.append(o.clone() if key in seen else o)
        seen.add(key)
    return tuple(res) if len(res) > 1 else res[0]


# ------------------------------------------------------------------------------------------------ gradients
def _compute_dtype(x: Tensor) -> torch.dtype:
    return torch.promote_types(x.dtype, torch.float32)


def _topk_backward(query, candidates, ids, metric, grad, need_q=True, need_c=True):
    """∂(Σ grad · metric(query_b, candidates[ids_b])) / ∂(query, candidates); padded ids get zero gradient."""
    dt = _compute_dtype(query)
    valid = ids >= 0
    sel = ids.clamp_min(0)
    g = torch.where(valid, grad, torch.zeros_like(grad)).to(dt)
    fn = lambda q, c: pairwise(q[:, None, :], c[sel], metric)  # noqa: E731
    _, vjp = torch.func.vjp(fn, query.detach().to(dt), candidates.detach().to(dt))
    gq, gc = vjp(g)
    return (gq.to(query.dtype) if need_q else None), (gc.to(candidates.dtype) if need_c else None)


def _log_prob_backward(query, candidates, ids, metric, weighting, temperature, exclude, grad,
                       need_q=True, need_c=True):
    """∂(Σ grad · log p(ids)) / ∂(query, candidates) with p the exact normalised sampling distribution over the
    admissible candidates (as :func:`hardneg.reference.mining.log_probs`), in float64; padded ids give zero."""
    B, N = query.shape[0], candidates.shape[0]
    valid = ids >= 0
    sel = ids.clamp_min(0)
    g = torch.where(valid, grad, torch.zeros_like(grad)).to(torch.float64)
    excluded = exclusion_mask(exclude, B, 0, N, query.device)
    # rows with nothing admissible have only padded ids: unmask them so that logsumexp stays finite (their
    # gradient is zero anyway), never NaN
    excluded = excluded & ~excluded.all(1, keepdim=True)

    def fn(q, c):
        lg = logits(score_matrix(q, c, metric, dtype=torch.float64), weighting, temperature)
        lg = lg.masked_fill(excluded, float("-inf"))
        return lg.gather(1, sel) - torch.logsumexp(lg, 1, keepdim=True)

    _, vjp = torch.func.vjp(fn, query.detach().to(torch.float64), candidates.detach().to(torch.float64))
    gq, gc = vjp(g)
    return (gq.to(query.dtype) if need_q else None), (gc.to(candidates.dtype) if need_c else None)


# ------------------------------------------------------------------------------------------------ mining
@custom_op("hardneg::topk_mine", mutates_args=())
def topk_mine(query: Tensor, candidates: Tensor, k: int, metric: str = "dot", exclude_indptr: Tensor | None = None,
              exclude_indices: Tensor | None = None, backend: str | None = None,
              tie_break: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """:func:`hardneg.ops.topk_mine` as a custom op (exclusion CSR as two optional tensors)."""
    with torch.no_grad():
        return _fresh(*_mining.topk_mine(query, candidates, k, metric=metric,
                                         exclude=_csr(exclude_indptr, exclude_indices), tie_break=tie_break,
                                         backend=backend))


@topk_mine.register_fake
def _(query, candidates, k, metric="dot", exclude_indptr=None, exclude_indices=None, backend=None, tie_break=None):
    B = query.shape[0]
    return query.new_empty((B, k), dtype=torch.float32), query.new_empty((B, k), dtype=torch.int64)


def _topk_setup(ctx, inputs, output):
    query, candidates, _k, metric = inputs[:4]
    ctx.save_for_backward(query, candidates, output[1])
    ctx.metric = metric


def _topk_grad(ctx, grad_scores, _grad_ids):
    query, candidates, ids = ctx.saved_tensors
    gq, gc = _topk_backward(query, candidates, ids, ctx.metric, grad_scores, *ctx.needs_input_grad[:2])
    return gq, gc, None, None, None, None, None, None


topk_mine.register_autograd(_topk_grad, setup_context=_topk_setup)


@custom_op("hardneg::mlp_topk_mine", mutates_args=())
def mlp_topk_mine(query: Tensor, candidates: Tensor, weight: Tensor, k: int, bias: float = 0.0,
                  exclude_indptr: Tensor | None = None, exclude_indices: Tensor | None = None,
                  offset_indptr: Tensor | None = None, offset_ids: Tensor | None = None,
                  offset_values: Tensor | None = None, candidate_index: Tensor | None = None,
                  tie_break: Tensor | None = None, backend: str | None = None) -> tuple[Tensor, Tensor]:
    """:func:`hardneg.ops.mlp_topk_mine` as a custom op (the exclusion CSR and the offsets as optional tensors;
    the offsets are all three or none)."""
    parts = (offset_indptr, offset_ids, offset_values)
    offsets = None if all(x is None for x in parts) else parts
    with torch.no_grad():
        return _fresh(*_mining.mlp_topk_mine(query, candidates, weight, k, bias=bias,
                                             exclude=_csr(exclude_indptr, exclude_indices), offsets=offsets,
                                             candidate_index=candidate_index, tie_break=tie_break, backend=backend))


@mlp_topk_mine.register_fake
def _(query, candidates, weight, k, bias=0.0, exclude_indptr=None, exclude_indices=None, offset_indptr=None,
      offset_ids=None, offset_values=None, candidate_index=None, tie_break=None, backend=None):
    B = query.shape[0]
    return query.new_empty((B, k), dtype=torch.float32), query.new_empty((B, k), dtype=torch.int64)


@custom_op("hardneg::topk_scores", mutates_args=())
def topk_scores(query: Tensor, candidates: Tensor, ids: Tensor, scores: Tensor, metric: str) -> Tensor:
    """``scores`` (the output of a top-k mining call over ``query`` and ``candidates`` that returned ``ids``),
    made differentiable with respect to ``query`` and ``candidates`` without recomputing it."""
    return scores.clone()


@topk_scores.register_fake
def _(query, candidates, ids, scores, metric):
    return torch.empty_like(scores)


def _topk_scores_setup(ctx, inputs, output):
    query, candidates, ids, _scores, metric = inputs
    ctx.save_for_backward(query, candidates, ids)
    ctx.metric = metric


def _topk_scores_grad(ctx, grad):
    query, candidates, ids = ctx.saved_tensors
    gq, gc = _topk_backward(query, candidates, ids, ctx.metric, grad, *ctx.needs_input_grad[:2])
    return gq, gc, None, None, None


topk_scores.register_autograd(_topk_scores_grad, setup_context=_topk_scores_setup)


@custom_op("hardneg::sample_by_score", mutates_args=())
def sample_by_score(query: Tensor, candidates: Tensor, num_samples: int, metric: str = "dot",
                    weighting: str = "softmax", temperature: float = 1.0, exclude_indptr: Tensor | None = None,
                    exclude_indices: Tensor | None = None, replacement: bool = False, seed: int = 0,
                    backend: str | None = None) -> tuple[Tensor, Tensor]:
    """:func:`hardneg.ops.sample_by_score` as a custom op, with ``generator=torch.Generator().manual_seed(seed)``."""
    with torch.no_grad():
        return _fresh(*_mining.sample_by_score(
            query, candidates, num_samples, metric=metric, weighting=weighting, temperature=temperature,
            exclude=_csr(exclude_indptr, exclude_indices), replacement=replacement, generator=_generator(seed),
            backend=backend))


@sample_by_score.register_fake
def _(query, candidates, num_samples, metric="dot", weighting="softmax", temperature=1.0, exclude_indptr=None,
      exclude_indices=None, replacement=False, seed=0, backend=None):
    B = query.shape[0]
    return (query.new_empty((B, num_samples), dtype=torch.int64),
            query.new_empty((B, num_samples), dtype=torch.float32))


def _sample_setup(ctx, inputs, output):
    query, candidates, _n, metric, weighting, temperature, indptr, indices = inputs[:8]
    ctx.save_for_backward(query, candidates, output[0], indptr, indices)
    ctx.args = (metric, weighting, temperature)


def _sample_grad(ctx, _grad_ids, grad_lp):
    query, candidates, ids, indptr, indices = ctx.saved_tensors
    gq, gc = _log_prob_backward(query, candidates, ids, *ctx.args, _csr(indptr, indices), grad_lp,
                                *ctx.needs_input_grad[:2])
    return (gq, gc) + (None,) * 9


sample_by_score.register_autograd(_sample_grad, setup_context=_sample_setup)


@custom_op("hardneg::score_log_prob", mutates_args=())
def score_log_prob(query: Tensor, candidates: Tensor, ids: Tensor, log_prob: Tensor, metric: str, weighting: str,
                   temperature: float, exclude_indptr: Tensor | None, exclude_indices: Tensor | None) -> Tensor:
    """``log_prob`` (the output of a score-proportional sampling call that drew ``ids``), made differentiable
    with respect to ``query`` and ``candidates`` without recomputing it."""
    return log_prob.clone()


@score_log_prob.register_fake
def _(query, candidates, ids, log_prob, metric, weighting, temperature, exclude_indptr, exclude_indices):
    return torch.empty_like(log_prob)


def _score_log_prob_setup(ctx, inputs, output):
    query, candidates, ids, _lp, metric, weighting, temperature, indptr, indices = inputs
    ctx.save_for_backward(query, candidates, ids, indptr, indices)
    ctx.args = (metric, weighting, temperature)


def _score_log_prob_grad(ctx, grad):
    query, candidates, ids, indptr, indices = ctx.saved_tensors
    gq, gc = _log_prob_backward(query, candidates, ids, *ctx.args, _csr(indptr, indices), grad,
                                *ctx.needs_input_grad[:2])
    return (gq, gc) + (None,) * 7


score_log_prob.register_autograd(_score_log_prob_grad, setup_context=_score_log_prob_setup)


def attach_grad(op: str, query: Tensor, candidates: Tensor, out: tuple, *, metric: str, exclude=None,
                weighting: str = "softmax", temperature: float = 1.0) -> tuple:
    """The public mining functions' outputs with their differentiable part attached when ``query`` or
    ``candidates`` requires grad (``topk_mine``: scores; ``sample_by_score``: log_prob); else ``out``."""
    if not (torch.is_grad_enabled() and (query.requires_grad or candidates.requires_grad)):
        return out
    indptr, indices = _mining.csr_args(exclude)
    if op == "topk_mine":
        scores, ids = out
        return topk_scores(query, candidates, ids, scores, metric), ids
    ids, lp = out
    return ids, score_log_prob(query, candidates, ids, lp, metric, weighting, temperature, indptr, indices)


@custom_op("hardneg::sample_from_weights", mutates_args=())
def sample_from_weights(weights: Tensor, n: int, replacement: bool, seed: int = 0) -> Tensor:
    """:func:`hardneg.ops.sample_from_weights` as a custom op, with
    ``generator=torch.Generator().manual_seed(seed)``."""
    return _mining.sample_from_weights(weights, n, replacement=replacement, generator=_generator(seed))


@sample_from_weights.register_fake
def _(weights, n, replacement, seed=0):
    return weights.new_empty((weights.shape[0], n), dtype=torch.int64)


# ------------------------------------------------------------------------------------------------ filtering
OPS = ["topk_mine", "mlp_topk_mine", "topk_scores", "sample_by_score", "score_log_prob", "sample_from_weights"]


@custom_op("hardneg::enclosing_subgraphs", mutates_args=())
def enclosing_subgraphs(indptr: Tensor, indices: Tensor, num_nodes: int, pairs: Tensor, num_hops: int = 2,
                        max_nodes_per_hop: int = 0, seed: int = 0, backend: str | None = None
                        ) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """:func:`hardneg.ops.enclosing_subgraphs` on the CSR graph ``(indptr, indices)`` as a custom op, with
    ``generator=torch.Generator().manual_seed(seed)``: ``(nodes, node_ptr, edge_index, edge_ptr, labels)``."""
    g = CSRGraph(indptr, indices, num_nodes, undirected=True)
    out = _subgraph.enclosing_subgraphs(g, pairs, num_hops, max_nodes_per_hop=max_nodes_per_hop,
                                        generator=_generator(seed), backend=backend)
    return _fresh(out.nodes, out.node_ptr, out.edge_index, out.edge_ptr, out.labels)


@enclosing_subgraphs.register_fake
def _(indptr, indices, num_nodes, pairs, num_hops=2, max_nodes_per_hop=0, seed=0, backend=None):
    ctx = torch.library.get_ctx()
    t, e = ctx.new_dynamic_size(), ctx.new_dynamic_size()  # nodes and entries depend on the graph
    P = pairs.shape[0]  # pairs are [P, 2] (the public function rejects anything else)
    i64 = dict(dtype=torch.int64)
    return (pairs.new_empty((t,), **i64), pairs.new_empty((P + 1,), **i64), pairs.new_empty((2, e), **i64),
            pairs.new_empty((P + 1,), **i64), pairs.new_empty((t,), **i64))


OPS.append("enclosing_subgraphs")


# ------------------------------------------------------------------------------------------------ sparse
@custom_op("hardneg::spmm", mutates_args=())
def spmm(indptr: Tensor, indices: Tensor, values: Tensor, x: Tensor, num_rows: int, symmetric: bool = False,
         backend: str | None = None) -> Tensor:
    """:func:`hardneg.ops.spmm` on the CSR matrix ``(indptr, indices, values)`` of shape [num_rows, x.shape[0]]."""
    adj = torch.sparse_csr_tensor(indptr, indices, values, (num_rows, x.shape[0]))
    with torch.no_grad():
        return _sparse.spmm(adj, x, symmetric=symmetric, backend=backend)


@spmm.register_fake
def _(indptr, indices, values, x, num_rows, symmetric=False, backend=None):
    return x.new_empty((num_rows, x.shape[1]))


def _spmm_setup(ctx, inputs, output):
    indptr, indices, values, x, num_rows, symmetric, backend = inputs
    ctx.save_for_backward(indptr, indices, values)
    ctx.cols, ctx.rows, ctx.symmetric, ctx.backend = x.shape[0], num_rows, symmetric, backend


def _spmm_grad(ctx, grad):
    t = _sparse.backward_csr(*ctx.saved_tensors, ctx.rows, ctx.cols, ctx.symmetric)
    gx = spmm(*t, grad.contiguous(), ctx.cols, ctx.symmetric, ctx.backend)
    return None, None, None, gx, None, None, None


spmm.register_autograd(_spmm_grad, setup_context=_spmm_setup)
OPS.append("spmm")


# ------------------------------------------------------------------------------------------------ time encoding
@custom_op("hardneg::time_encode", mutates_args=())
def time_encode(dt: Tensor, weight: Tensor, bias: Tensor | None = None, backend: str | None = None) -> Tensor:
    """:func:`hardneg.ops.time_encode` (differentiable in dt, weight and bias)."""
    with torch.no_grad():
        return _temporal.time_encode(dt, weight, bias, backend=backend)


@time_encode.register_fake
def _(dt, weight, bias=None, backend=None):
    return dt.new_empty((*dt.shape, weight.shape[0]), dtype=torch.float32)


def _time_encode_setup(ctx, inputs, output):
    dt, weight, bias, _backend = inputs
    ctx.save_for_backward(dt, weight, bias)


def _time_encode_grad(ctx, grad):
    """The sin of the same float32 phase from the reference (torch: traceable), then the eager op's backward."""
    dt, weight, bias = ctx.saved_tensors
    t, w = dt.reshape(-1).to(torch.float32), weight.reshape(-1).to(torch.float32)
    _, sin = _ref_temporal.time_encode(t, w, None if bias is None else bias.to(torch.float32), True)
    needs = ctx.needs_input_grad
    gdt, gw, gb = _temporal.time_encode_backward(grad.reshape(sin.shape), sin, t, w, needs[0], needs[1],
                                                 bias is not None and needs[2])
    return (None if gdt is None else gdt.reshape(dt.shape).to(dt.dtype),
            None if gw is None else gw.reshape(weight.shape).to(weight.dtype),
            None if gb is None else gb.to(bias.dtype), None)


time_encode.register_autograd(_time_encode_grad, setup_context=_time_encode_setup)
OPS.append("time_encode")

if HAS_OPAQUE:
    from torch._library.opaque_object import _resolve_opaque_type_info, register_opaque_type

    from hardneg.known import KnownSet
    from hardneg.temporal import TemporalGraph

    register_opaque_type(Handle, typ="reference")

    def _obj(handle):
        """The known set / graph behind a handle (or behind the fake handle tracing passes to a fake impl)."""
        return getattr(handle, "real_obj", handle).obj

    def _handle(op, name, handle, cls):
        if not isinstance(getattr(handle, "obj", None), cls):
            raise TypeError(f"{op}: '{name}' must be the .handle of a hardneg.{cls.__name__} "
                            f"(got {type(handle).__name__})")
        return handle.obj

    _HANDLE = _resolve_opaque_type_info(Handle).class_name
    # written out: infer_schema takes an opaque type but not an optional one (torch 2.13)
    _CORRUPT_SCHEMA = (f"(Tensor positives, SymInt num_negatives, SymInt num_entities, str side=\"tail\", "
                       f"{_HANDLE}? known=None, Tensor? domain_head_indptr=None, Tensor? domain_head_ids=None, "
                       f"Tensor? domain_tail_indptr=None, Tensor? domain_tail_ids=None, SymInt? num_relations=None, "
                       f"SymInt seed=0, str? backend=None, SymInt max_tries=32) -> (Tensor, Tensor)")

    @custom_op("hardneg::corrupt", mutates_args=(), schema=_CORRUPT_SCHEMA)
    def corrupt(positives: Tensor, num_negatives: int, num_entities: int, side: str = "tail",
                known: Handle | None = None, domain_head_indptr: Tensor | None = None,
                domain_head_ids: Tensor | None = None, domain_tail_indptr: Tensor | None = None,
                domain_tail_ids: Tensor | None = None, num_relations: int | None = None, seed: int = 0,
                backend: str | None = None, max_tries: int = 32) -> tuple[Tensor, Tensor]:
        """:func:`hardneg.ops.corrupt` as a custom op (``domain`` as four optional tensors, the head and tail
        CSR pairs), with ``generator=torch.Generator().manual_seed(seed)``."""
        parts = (domain_head_indptr, domain_head_ids, domain_tail_indptr, domain_tail_ids)
        domain = None
        if any(p is not None for p in parts):
            domain = {"head": (parts[0], parts[1]), "tail": (parts[2], parts[3])}
        known = None if known is None else _handle("corrupt", "known", known, KnownSet)
        return _fresh(*_filtering.corrupt(positives, num_negatives, num_entities, side=side, known=known,
                                          domain=domain, num_relations=num_relations, generator=_generator(seed),
                                          backend=backend, max_tries=max_tries))

    @corrupt.register_fake
    def _(positives, num_negatives, num_entities, side="tail", known=None, domain_head_indptr=None,
          domain_head_ids=None, domain_tail_indptr=None, domain_tail_ids=None, num_relations=None, seed=0,
          backend=None, max_tries=32):
        B, w = positives.shape
        return (positives.new_empty((B, num_negatives, w), dtype=torch.int64),
                positives.new_empty((B, num_negatives), dtype=torch.bool))

    @custom_op("hardneg::known_contains", mutates_args=())
    def known_contains(known: Handle, keys: Tensor, before: Tensor | None = None, inclusive: bool = False,
                       backend: str | None = None) -> Tensor:
        """:func:`hardneg.ops.known_contains` as a custom op."""
        K = _handle("known_contains", "known", known, KnownSet)
        return _filtering.known_contains(K, keys, before=before, inclusive=inclusive, backend=backend)

    @known_contains.register_fake
    def _(known, keys, before=None, inclusive=False, backend=None):
        return keys.new_empty((keys.shape[0],), dtype=torch.bool)

    @custom_op("hardneg::known_mask", mutates_args=())
    def known_mask(known: Handle, anchor: Tensor, candidates: Tensor, side: str = "tail",
                   backend: str | None = None) -> Tensor:
        """:func:`hardneg.ops.known_mask` as a custom op."""
        K = _handle("known_mask", "known", known, KnownSet)
        return _filtering.known_mask(K, anchor, candidates, side=side, backend=backend)

    @known_mask.register_fake
    def _(known, anchor, candidates, side="tail", backend=None):
        return candidates.new_empty(candidates.shape, dtype=torch.bool)

    @custom_op("hardneg::known_exclusion", mutates_args=())
    def known_exclusion(known: Handle, anchor: Tensor, side: str = "tail",
                        backend: str | None = None) -> tuple[Tensor, Tensor]:
        """:func:`hardneg.ops.known_exclusion` as a custom op (the id count is data-dependent)."""
        K = _handle("known_exclusion", "known", known, KnownSet)
        return _fresh(*_filtering.known_exclusion(K, anchor, side=side, backend=backend))

    @known_exclusion.register_fake
    def _(known, anchor, side="tail", backend=None):
        m = torch.library.get_ctx().new_dynamic_size()
        return (anchor.new_empty((anchor.shape[0] + 1,), dtype=torch.int64),
                anchor.new_empty((m,), dtype=torch.int64))

    @custom_op("hardneg::temporal_neighbors", mutates_args=())
    def temporal_neighbors(graph: Handle, nodes: Tensor, times: Tensor, k: int, strategy: str = "recent",
                           inclusive: bool = False, window: float | None = None, seed: int = 0,
                           backend: str | None = None) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """:func:`hardneg.ops.temporal_neighbors` as a custom op, with
        ``generator=torch.Generator().manual_seed(seed)``."""
        G = _handle("temporal_neighbors", "graph", graph, TemporalGraph)
        return _fresh(*_temporal.temporal_neighbors(G, nodes, times, k, strategy=strategy, inclusive=inclusive,
                                                    window=window, generator=_generator(seed), backend=backend))

    @temporal_neighbors.register_fake
    def _(graph, nodes, times, k, strategy="recent", inclusive=False, window=None, seed=0, backend=None):
        B = nodes.numel()
        i64 = nodes.new_empty((B, k), dtype=torch.int64)
        return (i64, torch.empty_like(i64), nodes.new_empty((B, k), dtype=_obj(graph).time_dtype),
                nodes.new_empty((B, k), dtype=torch.bool))

    @custom_op("hardneg::temporal_assemble", mutates_args=())
    def temporal_assemble(graph: Handle, nodes: Tensor, times: Tensor, k: int, event_times: Tensor | None = None,
                          features: Tensor | None = None, strategy: str = "recent", seed: int = 0,
                          backend: str | None = None) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        """:func:`hardneg.ops.temporal_assemble` as a custom op, with
        ``generator=torch.Generator().manual_seed(seed)``; edge ids are always returned and, without
        ``features``, ``feats`` is an empty [B, k, 0] tensor."""
        G = _handle("temporal_assemble", "graph", graph, TemporalGraph)
        nbrs, eids, dt, valid, feats = _temporal.temporal_assemble(
            G, nodes, times, k, event_times=event_times, features=features, strategy=strategy,
            generator=_generator(seed), backend=backend)
        if feats is None:
            feats = dt.new_zeros((*dt.shape, 0))
        return _fresh(nbrs, eids, dt, valid, feats)

    @temporal_assemble.register_fake
    def _(graph, nodes, times, k, event_times=None, features=None, strategy="recent", seed=0, backend=None):
        B = nodes.numel()
        i64 = nodes.new_empty((B, k), dtype=torch.int64)
        F = 0 if features is None else features.shape[1]
        return (i64, torch.empty_like(i64), nodes.new_empty((B, k), dtype=torch.float32),
                nodes.new_empty((B, k), dtype=torch.bool), nodes.new_empty((B, k, F), dtype=torch.float32))

    OPS += ["corrupt", "known_contains", "known_mask", "known_exclusion", "temporal_neighbors", "temporal_assemble"]
