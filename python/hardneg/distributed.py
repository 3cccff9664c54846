"""Sharded candidates over ``torch.distributed``: mining and sampling over a table split by rows across ranks.

Each rank of a process group holds rows [lo, hi) of an [N, d] candidate table, in rank order
(:class:`ShardedCandidates`). :func:`hardneg.ops.topk_mine` and :func:`hardneg.ops.sample_by_score` accept a
``ShardedCandidates`` wherever they accept a candidate tensor and return global ids; the samplers (``topk``,
``score``, ``nmiss``, ``dns``, ``nscaching``) and the scorers accept one as their candidate table.

Shapes: ``B`` queries, ``N`` candidates (global), ``d`` features, ``k``/``n`` results per query, ``W`` ranks.

The queries, ``k``/``n``, the options and the exclusions must be the same on every rank (replicated
queries: every rank mines its own shard for all B queries). These are collective calls: every rank of the
group must make them, in the same order. Communication per call is O(B·k·W) (one all-gather of each rank's
[B, k] result); nothing of size N or B·N ever crosses the network.

:class:`ShardedEmbedding` is the trainable form: a row-sharded ``nn.Module`` table whose lookups, gradients and
mining work with per-rank batches (data-parallel training, ``entity_layout: sharded`` in the KG task). The
replicated layout (DDP over a whole model) is in :mod:`hardneg.training.parallel` (``torchrun --nproc_per_node W
-m hardneg train ...``).
"""
from __future__ import annotations

import contextlib

import torch
import torch.distributed as dist

from hardneg import _validate as V
from hardneg._constants import METRICS, WEIGHTINGS
from hardneg._random import as_generator, seed_from
from hardneg.metrics import pairwise
from hardneg.ops import mining as _mining

__all__ = ["ShardedCandidates", "ShardedEmbedding", "topk_mine", "sample_by_score", "require_group",
           "sharded_embeddings"]

_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
#: a large odd 63-bit constant; rank r samples its shard with seed (s + r·_MIX) mod 2^63
_MIX = 0x5851F42D4C957F2D & (2**63 - 1)


def require_group(op: str, group=None):
    """RuntimeError unless ``torch.distributed`` is available and its default process group is initialised."""
    if not dist.is_available():
        raise RuntimeError(f"{op}: this torch build has no torch.distributed")
    if not dist.is_initialized():
        raise RuntimeError(f"{op}: no torch.distributed process group is initialised; call "
                           f"torch.distributed.init_process_group (or launch with torchrun) first")
    return group


def _all_gather(x: torch.Tensor, group) -> torch.Tensor:
    """[W, *x.shape]: every rank's ``x`` in rank order (same shape on every rank)."""
    out = [torch.empty_like(x) for _ in range(dist.get_world_size(group))]
    dist.all_gather(out, x.contiguous(), group=group)
    return torch.stack(out)


class ShardedCandidates:
    """An [N, d] candidate table split by rows across the ranks of a process group, in rank order.

    Build it with :meth:`from_local` (each rank gives its own rows; the ranges are their prefix sums), or
    directly with explicit ranges, which are checked to tile [0, N) in rank order. Construction is collective
    (one all-gather of 5 integers per rank).

    Args:
        local_rows: this rank's rows, [hi − lo, d] floating (may be empty).
        lo, hi: this rank's global row range [lo, hi).
        num_rows: N, the global number of rows.
        group: the process group (None: the default group).

    Attributes:
        local, lo, hi, num_rows, group, rank, world_size, ranges (``[(lo, hi)]`` of every rank), shape
        (the global ``torch.Size([N, d])``), dtype, device.

    Raises:
        RuntimeError: no initialised process group.
        TypeError: ``local_rows`` not a floating tensor; ranks with different dtypes.
        ValueError: ``local_rows`` not 2-D or its length not hi − lo; ranks with different d or N; ranges that do
            not tile [0, N) in rank order.

    Example (on every rank, after ``init_process_group``)::

        table = hardneg.distributed.ShardedCandidates.from_local(my_rows)
        scores, ids = hardneg.ops.topk_mine(queries, table, 32)   # global ids
    """

    def __init__(self, local_rows: torch.Tensor, lo: int, hi: int, num_rows: int, *, group=None):
        op = "ShardedCandidates"
        require_group(op, group)
        c = V.floating(op, "local_rows", local_rows, 2, "[hi - lo, d]")
        lo, hi = V.integer(op, "lo", lo, minimum=0), V.integer(op, "hi", hi, minimum=0)
        num_rows = V.integer(op, "num_rows", num_rows, minimum=0)
        if hi - lo != c.shape[0]:
            raise ValueError(f"{op}: 'local_rows' must have hi - lo = {hi - lo} rows (got {V.describe(c)})")
        self.local, self.lo, self.hi, self.num_rows, self.group = c, lo, hi, num_rows, group
        #: False: the queries are the same on every rank (the ops' contract). True: each rank brings its own
        #: queries (data-parallel training over a :class:`ShardedEmbedding`); they are all-gathered and mined
        #: together, and each rank gets the results of its own.
        self.per_rank_queries = False
        self.rank, self.world_size = dist.get_rank(group), dist.get_world_size(group)
        mine = torch.tensor([lo, hi, num_rows, c.shape[1], _DTYPES.index(c.dtype)], dtype=torch.int64)
        info = _all_gather(mine.to(self._comm_device()), group).cpu().tolist()
        for r, (_, _, n_r, d_r, t_r) in enumerate(info):
            if d_r != c.shape[1]:
                raise ValueError(f"{op}: every rank must hold rows of the same width d (got d={c.shape[1]} on rank "
                                 f"{self.rank}, d={d_r} on rank {r})")
            if t_r != _DTYPES.index(c.dtype):
                raise TypeError(f"{op}: every rank must hold the same dtype (got {c.dtype} on rank {self.rank}, "
                                f"{_DTYPES[t_r]} on rank {r})")
            if n_r != num_rows:
                raise ValueError(f"{op}: every rank must give the same num_rows (got {num_rows} on rank "
                                 f"{self.rank}, {n_r} on rank {r})")
        self.ranges = [(a, b) for a, b, *_ in info]
        edge = 0
        for r, (a, b) in enumerate(self.ranges):
            if a != edge or b < a:
                raise ValueError(f"{op}: the shard ranges must tile [0, {num_rows}) in rank order (got {self.ranges}: "
                                 f"rank {r} starts at {a}, expected {edge})")
            edge = b
        if edge != num_rows:
            raise ValueError(f"{op}: the shard ranges must cover [0, {num_rows}) (got {self.ranges}, ending at {edge})")

    @classmethod
    def from_local(cls, local_rows: torch.Tensor, group=None) -> "ShardedCandidates":
        """Each rank's own rows, in rank order: rank r holds global rows [Σ_{s<r} n_s, Σ_{s≤r} n_s)."""
        op = "ShardedCandidates.from_local"
        require_group(op, group)
        c = V.floating(op, "local_rows", local_rows, 2, "[n_local, d]")
        dev = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend(group) == "nccl" else "cpu"
        counts = _all_gather(torch.tensor([c.shape[0]], dtype=torch.int64, device=dev), group).flatten().cpu()
        rank = dist.get_rank(group)
        lo = int(counts[:rank].sum())
        return cls(c, lo, lo + c.shape[0], int(counts.sum()), group=group)

    def _comm_device(self) -> torch.device:
        return self.local.device if dist.get_backend(self.group) == "nccl" else torch.device("cpu")

    # the tensor-like surface the samplers and scorers use ----------------------------------------------------
    @property
    def shape(self) -> torch.Size:
        return torch.Size([self.num_rows, self.local.shape[1]])

    @property
    def dtype(self) -> torch.dtype:
        return self.local.dtype

    @property
    def device(self) -> torch.device:
        return self.local.device

    ndim = 2

    def dim(self) -> int:
        return 2

    def size(self, i: int | None = None):
        return self.shape if i is None else self.shape[i]

    def __len__(self) -> int:
        return self.num_rows

    def detach(self) -> "ShardedCandidates":
        return self._with(self.local.detach())

    def contiguous(self) -> "ShardedCandidates":
        return self._with(self.local.contiguous())

    def _with(self, local: torch.Tensor) -> "ShardedCandidates":
        if local is self.local:
            return self
        out = object.__new__(ShardedCandidates)
        out.__dict__.update(self.__dict__)
        out.local = local
        return out

    def __getitem__(self, ids) -> torch.Tensor:
        """Rows at global ``ids`` (any shape; the same ids on every rank), as a replicated [*ids.shape, d] tensor:
        each rank fills the rows it owns and one all-reduce (sum) assembles them. Collective; O(|ids|·d) bytes.
        Exact: every row is one rank's value plus zeros."""
        op = "ShardedCandidates[ids]"
        require_group(op, self.group)
        if not isinstance(ids, torch.Tensor) or ids.dtype in (torch.bool, *_DTYPES):
            raise TypeError(f"{op}: index with an integer tensor of global ids (got {V.describe(ids)})")
        ids = V.ids(op, "ids", ids, self.num_rows, device=self.device)
        mine = (ids >= self.lo) & (ids < self.hi)
        out = torch.zeros(*ids.shape, self.local.shape[1], dtype=self.dtype, device=self.device)
        out[mine] = self.local[ids[mine] - self.lo]
        if self._comm_device() != out.device:
            buf = out.to(self._comm_device())
            dist.all_reduce(buf, group=self.group)
            return buf.to(out.device)
        dist.all_reduce(out, group=self.group)
        return out

    def all_reduce(self, x: torch.Tensor) -> torch.Tensor:
        """The sum of ``x`` over the ranks (collective; a new tensor on ``x``'s device)."""
        buf = x.to(self._comm_device(), copy=True)
        dist.all_reduce(buf, group=self.group)
        return buf.to(x.device)

    def __repr__(self) -> str:
        return (f"ShardedCandidates(N={self.num_rows}, d={self.local.shape[1]}, rank {self.rank}/{self.world_size} "
                f"holds [{self.lo}, {self.hi}), dtype={self.dtype}, device={self.device})")


# ------------------------------------------------------------------------------------- the trainable layout


class ShardedRows(ShardedCandidates):
    """The candidate-table view of a :class:`ShardedEmbedding` (its ``weight``): mining sees this rank's rows
    (detached), queries are per rank, and ``rows[ids]`` is the embedding's differentiable lookup."""

    def __getitem__(self, ids) -> torch.Tensor:
        return self.owner.lookup(ids)


class ShardedEmbedding(torch.nn.Module):
    """A trainable [N, d] embedding table split by rows across the ranks of a process group (row-sharded layout).

    Rank r of W holds rows [⌊rN/W⌋, ⌊(r+1)N/W⌋) as the parameter ``local``; nothing of size N·d exists on any
    rank. Made for data-parallel training where each rank has its own batch:

    * ``lookup(ids)`` (also ``emb(ids)`` and ``emb.weight[ids]``) is collective: the ranks all-gather the ids
      they need, every rank fills the rows it owns of the union U, one all-reduce assembles them, and each rank
      gets its own rows, differentiable. O(|U|·d) bytes per lookup, |U| ≤ Σ_r |ids_r|.
    * ``weight`` is a :class:`ShardedCandidates` view (``per_rank_queries``): the hard samplers mine over it with
      the sharded :func:`hardneg.ops.topk_mine` / :func:`hardneg.ops.sample_by_score`.
    * after ``backward``, :meth:`reduce_gradients` (collective; the training engine calls it) all-reduces the
      gradient of each lookup's rows, divides by W (DistributedDataParallel's averaging) and stores on ``local``
      only the rows this rank owns: a sparse gradient (``sparse_grad=True``, for SGD / Adagrad / SparseAdam,
      O(touched rows)) or a dense one of this rank's rows (Adam and the rest).

    With a dense gradient, or with SGD / Adagrad without weight decay, training equals one process with the
    whole table and the combined batch, within float tolerance (the sparse updates of rows a step did not touch
    are exactly the dense ones: zero).

    Limits (kept simple on purpose): every rank must make the same sequence of lookups (true of one training
    step run by all ranks); the table is split evenly by id, not by load; each lookup is two all-gathers (id
    counts, ids) plus one all-reduce of |U|·d values (``prefetch`` makes a step's lookups one; nothing overlaps
    with compute); rows are fetched in full precision; gradient clipping over the sharded rows is not supported
    (each rank sees only its rows' norm).

    Args:
        num_rows: N. dim: d.
        group: the process group (None: the default group).
        sparse_grad: store sparse gradients on ``local`` (default True).
        dtype, device: of ``local``.

    Raises:
        RuntimeError: no initialised process group.
        ValueError / TypeError: a bad ``num_rows`` / ``dim``; ids out of [0, N) (:meth:`lookup`, on every rank).

    Example (every rank, under ``torchrun``)::

        emb = hardneg.distributed.ShardedEmbedding(10_000_000, 64)   # each rank allocates only its rows
        torch.nn.init.normal_(emb.local, std=0.1)
        loss = (emb(my_ids) * targets).sum(); loss.backward(); emb.reduce_gradients(); opt.step()
    """

    def __init__(self, num_rows: int, dim: int, *, group=None, sparse_grad: bool = True,
                 dtype: torch.dtype = torch.float32, device=None):
        super().__init__()
        op = "ShardedEmbedding"
        require_group(op, group)
        num_rows = V.integer(op, "num_rows", num_rows, minimum=1)
        dim = V.integer(op, "dim", dim, minimum=1)
        if not isinstance(sparse_grad, bool):
            raise TypeError(f"{op}: 'sparse_grad' must be a bool (got {V.describe(sparse_grad)})")
        W, r = dist.get_world_size(group), dist.get_rank(group)
        lo, hi = r * num_rows // W, (r + 1) * num_rows // W
        self.local = torch.nn.Parameter(torch.zeros(hi - lo, dim, dtype=dtype, device=device))
        self.num_rows, self.dim, self.lo, self.hi, self.group = num_rows, dim, lo, hi, group
        self.sparse_grad = sparse_grad
        self._table = ShardedCandidates(self.local.detach(), lo, hi, num_rows, group=group)  # checks d, dtype
        self._pending: list = []
        self._block = None  # (sorted ids, their rows) inside prefetch()

    @classmethod
    def from_full(cls, weight: torch.Tensor, *, group=None, sparse_grad: bool = True) -> "ShardedEmbedding":
        """This rank's rows of a full [N, d] table that every rank holds identically (e.g. after a seeded
        init): the sharded model then starts exactly where the single-process one does."""
        w = V.floating("ShardedEmbedding.from_full", "weight", weight, 2, "[N, d]")
        out = cls(w.shape[0], w.shape[1], group=group, sparse_grad=sparse_grad, dtype=w.dtype, device=w.device)
        with torch.no_grad():
            out.local.copy_(w[out.lo : out.hi])
        return out

    # ------------------------------------------------------------------ views
    @property
    def world_size(self) -> int:
        return dist.get_world_size(self.group)

    @property
    def weight(self) -> ShardedRows:
        """The table as a :class:`ShardedCandidates` (this rank's rows, detached; no communication)."""
        out = object.__new__(ShardedRows)
        out.__dict__.update(self._table.__dict__)
        out.local, out.per_rank_queries, out.owner = self.local.detach(), True, self
        return out

    # ------------------------------------------------------------------ lookup and gradients
    def lookup(self, ids: torch.Tensor) -> torch.Tensor:
        """Rows at global ``ids`` (any shape, per rank), [*ids.shape, d]. Collective (see the class)."""
        op = "ShardedEmbedding.lookup"
        require_group(op, self.group)
        if not isinstance(ids, torch.Tensor) or ids.dtype not in V.INDEX_DTYPES:
            raise TypeError(f"{op}: 'ids' must be an integer tensor of global row ids (got {V.describe(ids)})")
        flat = ids.to(device=self.local.device, dtype=torch.int64).reshape(-1).contiguous()
        if self._block is None:
            U, rows = self._fetch(op, flat)
            return rows[torch.searchsorted(U, flat)].reshape(*ids.shape, self.dim)
        U, rows = self._block  # inside prefetch(): a local gather from the block's rows
        pos = torch.searchsorted(U, flat).clamp_max(max(0, U.numel() - 1))
        if flat.numel() and (not U.numel() or not bool((U[pos] == flat).all())):
            raise ValueError(f"{op}: inside prefetch(ids), every lookup must be of prefetched ids (got "
                             f"{int((~torch.isin(flat, U)).sum())} others)")
        return rows[pos].reshape(*ids.shape, self.dim)

    forward = lookup

    def _fetch(self, op: str, flat: torch.Tensor):
        """(U, rows [|U|, d]): the sorted union of every rank's ``flat`` ids and their rows (collective; ``rows`` is
        a leaf recorded for :meth:`reduce_gradients` when gradients are on)."""
        mine = torch.unique(flat)
        counts = _gather(torch.tensor([mine.numel()], device=flat.device), self._table).flatten().cpu().tolist()
        union = _cat_ranks(mine, counts, self._table)
        if union.numel():  # the same check on every rank, so a bad id raises everywhere instead of a hang
            lo_id, hi_id = torch.stack(torch.aminmax(union)).tolist()
            if lo_id < 0 or hi_id >= self.num_rows:
                edges = [0] + torch.tensor(counts).cumsum(0).tolist()
                bad = [r for r in range(len(counts)) if counts[r] and not bool(
                    ((union[edges[r] : edges[r + 1]] >= 0) & (union[edges[r] : edges[r + 1]] < self.num_rows)).all())]
                raise ValueError(f"{op}: 'ids' must be row ids in [0, {self.num_rows}) (got min {lo_id}, max {hi_id}; "
                                 f"from rank(s) {bad})")
        U = torch.unique(union)
        with torch.no_grad():
            rows = ShardedCandidates.__getitem__(self.weight, U)  # [|U|, d]: owners fill, one all-reduce
        if torch.is_grad_enabled() and self.local.requires_grad:
            rows.requires_grad_(True)
            self._pending.append((U, rows))
        return U, rows

    @contextlib.contextmanager
    def prefetch(self, ids: torch.Tensor):
        """Look up the rows of ``ids`` once (collective) and serve every lookup inside the block from them, with no
        communication: one step's positives, negatives and regulariser then cost one all-gather pair and one
        all-reduce, and one gradient all-reduce. A lookup of an id outside ``ids`` raises ValueError (it cannot
        fall back to a collective lookup, which the other ranks would not join)."""
        op = "ShardedEmbedding.prefetch"
        if self._block is not None:
            raise RuntimeError(f"{op}: blocks do not nest")
        require_group(op, self.group)
        if not isinstance(ids, torch.Tensor) or ids.dtype not in V.INDEX_DTYPES:
            raise TypeError(f"{op}: 'ids' must be an integer tensor of global row ids (got {V.describe(ids)})")
        self._block = self._fetch(op, ids.to(device=self.local.device, dtype=torch.int64).reshape(-1).contiguous())
        try:
            yield self
        finally:
            self._block = None

    def reduce_gradients(self) -> None:
        """Collective, after ``backward``: the summed gradient of every lookup since the last call, averaged over
        the W ranks, lands on ``local`` (sparse or dense, added to what is there). A no-op without lookups."""
        pending, self._pending = self._pending, []
        if not pending:
            return
        W, idx, val = self.world_size, [], []
        for U, rows in pending:
            g = rows.grad if rows.grad is not None else torch.zeros_like(rows)
            g = self._table.all_reduce(g.detach()) / W
            own = (U >= self.lo) & (U < self.hi)
            idx.append(U[own] - self.lo)
            val.append(g[own])
        grad = torch.sparse_coo_tensor(torch.cat(idx)[None], torch.cat(val), self.local.shape,
                                       check_invariants=False).coalesce()  # ids in range by construction
        if not self.sparse_grad:
            grad = grad.to_dense()
        if self.local.grad is not None:
            grad = self.local.grad + grad
            grad = grad.coalesce() if grad.is_sparse else grad
        self.local.grad = grad

    def full(self) -> torch.Tensor:
        """The whole [N, d] table on every rank (collective; O(N·d) memory and bytes: for export and tests)."""
        with torch.no_grad():
            return ShardedCandidates.__getitem__(self.weight, torch.arange(self.num_rows, device=self.local.device))

    def extra_repr(self) -> str:
        return f"N={self.num_rows}, d={self.dim}, rows [{self.lo}, {self.hi}) of {self.world_size} ranks"


def sharded_embeddings(module: torch.nn.Module) -> list:
    """``[(name, ShardedEmbedding)]`` inside ``module`` (the engine reduces their gradients after each backward
    and keeps them out of DistributedDataParallel)."""
    return [(n, m) for n, m in module.named_modules() if isinstance(m, ShardedEmbedding)]


# ----------------------------------------------------------------------------------------------------- ops


def _prepare(op, query, sharded: ShardedCandidates, exclude):
    """(queries, this rank's slice of the exclusions as local ids, rows): ``rows`` is None for replicated queries,
    or the slice of this rank's own queries in the stack of every rank's (a table with ``per_rank_queries``)."""
    require_group(op, sharded.group)
    q = V.floating(op, "query", query, 2, "[B, d]")
    V.same_device(op, ("query", "candidates"), q, sharded.local)
    if q.shape[1] != sharded.shape[1]:
        raise ValueError(f"{op}: 'query' and 'candidates' must have the same d (got query {list(q.shape)}, "
                         f"candidates (sharded) {list(sharded.shape)})")
    if q.dtype != sharded.dtype:
        raise TypeError(f"{op}: 'query' and 'candidates' must have the same dtype (got {q.dtype} and {sharded.dtype})")
    ex = None
    if exclude is not None:  # global ids, checked against the global N
        ex = V.csr(op, "exclude", exclude, q.shape[0], sharded.num_rows, q.device)
    rows = None
    if sharded.per_rank_queries:
        q, ex, rows = _stack_ranks(op, q, ex, sharded)
    return q, _local_exclusion(ex, sharded.lo, sharded.hi), rows


def _stack_ranks(op, q, ex, sc: ShardedCandidates):
    """Every rank's queries (and exclusion rows) stacked in rank order, and the slice of this rank's own rows.

    Data-parallel training mines with per-rank queries (each rank its own positives): the queries and their
    exclusions are all-gathered (O(B·(d + excluded)·W) bytes), mined as one replicated batch, and each rank
    keeps its rows."""
    B, d = q.shape
    nnz = int(ex[1].numel()) if ex is not None else 0
    meta = _gather(torch.tensor([B, nnz, int(ex is not None)], dtype=torch.int64, device=q.device), sc).cpu()
    if int(meta[:, 2].min()) != int(meta[:, 2].max()):
        raise ValueError(f"{op}: 'exclude' must be given on every rank or on none (per-rank queries; got "
                         f"{['given' if h else 'None' for h in meta[:, 2].tolist()]} by rank)")
    sizes, counts = meta[:, 0].tolist(), meta[:, 1].tolist()
    off = sum(sizes[: sc.rank])
    Q = _cat_ranks(q, sizes, sc)
    EX = None
    if ex is not None:
        ptr, idx = ex
        lens = _cat_ranks(ptr.diff(), sizes, sc)
        new_ptr = torch.zeros(lens.numel() + 1, dtype=torch.int64, device=q.device)
        new_ptr[1:] = lens.cumsum(0)
        EX = (new_ptr, _cat_ranks(idx, counts, sc))
    return Q, EX, slice(off, off + B)


def _local_exclusion(ex, lo: int, hi: int):
    """The slice of each row of a normalised global CSR that falls in [lo, hi), as local ids."""
    if ex is None:
        return None
    ptr, idx = ex
    keep = (idx >= lo) & (idx < hi)
    rows = torch.repeat_interleave(torch.arange(ptr.numel() - 1, device=ptr.device), ptr.diff())
    counts = torch.bincount(rows[keep], minlength=ptr.numel() - 1)
    new_ptr = torch.zeros_like(ptr)
    new_ptr[1:] = counts.cumsum(0)
    return new_ptr, idx[keep] - lo


def _to_global(ids: torch.Tensor, lo: int) -> torch.Tensor:
    return torch.where(ids >= 0, ids + lo, ids)


def _gather(x: torch.Tensor, sharded: ShardedCandidates) -> torch.Tensor:
    dev = sharded._comm_device()
    return _all_gather(x.to(dev), sharded.group).to(x.device)


def _cat_ranks(x: torch.Tensor, sizes: list, sharded: ShardedCandidates) -> torch.Tensor:
    """Every rank's ``x`` (``sizes[r]`` rows on rank r, the rest of its shape equal) concatenated in rank order:
    padded to the largest, one all-gather, the padding dropped."""
    pad = x.new_zeros(max(1, max(sizes)), *x.shape[1:])
    pad[: x.shape[0]] = x
    every = _gather(pad, sharded)
    return torch.cat([every[r, : sizes[r]] for r in range(len(sizes))])


def topk_mine(query: torch.Tensor, candidates: ShardedCandidates, k: int, *, metric: str = "dot",
              exclude=None, backend: str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`hardneg.ops.topk_mine` over a :class:`ShardedCandidates` (called through it).

    Each rank mines its rows [lo, hi) for all B queries with the single-process op (its ``backend``), skipping
    the slice of each query's exclusion row that falls in its range; the per-rank [B, k] results are
    all-gathered and merged by descending score, ties to the smaller global id.

    Exact: ids and scores equal, bit for bit, the single-process op on the concatenated table (a score depends
    only on its query and candidate row; the merge is a stable sort of per-rank lists that are already in
    global-id order among equal scores).

    Communication: one all-gather of W × B·k (float32 score + int64 id) = 12·B·k·W bytes received per rank,
    i.e. O(B·k·W). Collective: every rank calls it with the same query, k, metric and exclude (or, on a table
    with ``per_rank_queries``, each rank its own queries, all-gathered first: O(B·(d + k)·W)).

    Raises:
        RuntimeError: no initialised process group.
        TypeError / ValueError: as the single-process op; ``exclude`` ids are checked against the global N.
    """
    op = "topk_mine"
    k = V.integer(op, "k", k, minimum=1)
    q, ex, rows = _prepare(op, query, candidates, exclude)
    s, i = _mining.topk_mine(q, candidates.local, k, metric=metric, exclude=ex, backend=backend)
    S = _gather(s, candidates)                                   # [W, B, k]
    I = _gather(_to_global(i, candidates.lo), candidates)
    B = q.shape[0]
    width = S.shape[0] * S.shape[2]
    S = S.permute(1, 0, 2).reshape(B, width)                     # rank order = global-id order among ties
    I = I.permute(1, 0, 2).reshape(B, width)
    S, order = torch.sort(S, dim=1, descending=True, stable=True)
    I = I.gather(1, order)
    pad, order = torch.sort((I < 0).to(torch.int8), dim=1, stable=True)  # padding last, keeping the rest
    S, I = S.gather(1, order)[:, :k], I.gather(1, order)[:, :k]
    if rows is not None:
        S, I = S[rows], I[rows]
    return S.contiguous(), I.contiguous()


def _log_weight(scores: torch.Tensor, weighting: str, temperature: float) -> torch.Tensor:
    s = scores.double()
    if weighting == "softmax":
        return s / temperature
    return torch.log(torch.nn.functional.softplus(s)) / temperature


def sample_by_score(query: torch.Tensor, candidates: ShardedCandidates, num_samples: int, *, metric: str = "dot",
                    weighting: str = "softmax", temperature: float = 1.0, exclude=None, replacement: bool = False,
                    generator: torch.Generator | None = None,
                    backend: str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`hardneg.ops.sample_by_score` over a :class:`ShardedCandidates` (called through it).

    Each rank draws n from its own shard with the single-process op (seed ``s + rank·c``, s drawn from
    ``generator``, so the shards' draws are independent) and recovers its shard's log-normaliser log Z_r from
    its first draw (log w(id) − log p_r(id)). One all-gather of every rank's ids, log-probs, log Z_r and seed
    follows, and every rank merges the same data identically (the merge draws from rank 0's seed):

    * with replacement, draw j comes from rank r with probability Z_r / Z (Z = Σ Z_r, the all-reduced
      log-sum-exp) and is that rank's draw j: an i.i.d. draw from p over the whole table;
    * without replacement, the global sequence interleaves the ranks' sequential draws: the next id comes from
      rank r with probability ∝ Z_r − (weight already drawn from r), and is r's next draw. This is exactly the
      sequential (Plackett–Luce / Gumbel-top-n) draw over the whole table: the product of the choice and the
      local probabilities telescopes to Πₜ w(xₜ) / (Z − Σ_{s<t} w(xₛ)).

    ``log_prob`` = log p_r(id) + log Z_r − log Z. The result is a draw from exactly the single-process
    distribution (up to the float32 rounding of the normaliser, as in the single-process kernels); it is NOT
    the same draw as the single-process op for the same seed. The same seed, world size and backend give the
    same result on every rank and in every run.

    Communication: one all-gather of W × (16·B·n + 8·B + 8) bytes, O(B·n·W). Collective: every rank calls
    it with the same query, n, options and exclude (or, with ``per_rank_queries``, each rank its own queries:
    they are all-gathered first, and each rank gets the draws of its own rows).

    Raises:
        RuntimeError: no initialised process group.
        TypeError / ValueError: as the single-process op; ``exclude`` ids are checked against the global N.
    """
    op = "sample_by_score"
    n = V.integer(op, "num_samples", num_samples, minimum=1)
    weighting = V.choice(op, "weighting", weighting, WEIGHTINGS)
    temperature = V.positive_float(op, "temperature", temperature)
    metric = V.choice(op, "metric", metric, METRICS)
    if not isinstance(replacement, bool):
        raise TypeError(f"{op}: 'replacement' must be a bool (got {V.describe(replacement)})")
    V.generator(op, generator)
    generator = as_generator(generator)  # a SeedStream: the generator of its next sub-seed
    q, ex, rows = _prepare(op, query, candidates, exclude)
    sc, W, B = candidates, candidates.world_size, q.shape[0]
    seed = seed_from(generator)
    local_gen = torch.Generator().manual_seed((seed + sc.rank * _MIX) % 2**63)
    ids, lp = _mining.sample_by_score(q, sc.local, n, metric=metric, weighting=weighting, temperature=temperature,
                                      exclude=ex, replacement=replacement, generator=local_gen, backend=backend)
    first = ids[:, 0]
    log_z = torch.full((B,), float("-inf"), dtype=torch.float64, device=q.device)
    ok = first >= 0
    if bool(ok.any()):
        s0 = pairwise(q[ok].float(), sc.local[first[ok]].float(), metric)
        log_z[ok] = _log_weight(s0, weighting, temperature) - lp[ok, 0].double()
    packed = torch.cat([_to_global(ids, sc.lo).flatten(), lp.view(torch.int32).to(torch.int64).flatten(),
                        log_z.view(torch.int64), torch.tensor([seed], dtype=torch.int64, device=q.device)])
    allp = _gather(packed, sc)                                              # [W, 2·B·n + B + 1]
    I = allp[:, : B * n].view(W, B, n)
    LP = allp[:, B * n : 2 * B * n].to(torch.int32).view(torch.float32).view(W, B, n)
    LZ = allp[:, 2 * B * n : 2 * B * n + B].contiguous().view(torch.float64)  # [W, B]
    merge_gen = torch.Generator().manual_seed(int(allp[0, -1]))
    out_ids, out_lp = _merge_samples(I, LP, LZ, replacement, merge_gen)
    if rows is not None:
        return out_ids[rows].contiguous(), out_lp[rows].contiguous()
    return out_ids, out_lp


def _pick(mass: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """Index r with probability mass[..., r] / Σ mass (never a zero-mass r); ``u`` uniform [0, 1)."""
    cdf = mass.cumsum(-1)
    cdf = cdf / cdf[..., -1:].clamp_min(torch.finfo(cdf.dtype).tiny)
    return (u[..., None] >= cdf).sum(-1).clamp_max(mass.shape[-1] - 1)


def _merge_samples(I, LP, LZ, replacement: bool, gen: torch.Generator):
    W, B, n = I.shape
    dev = I.device
    log_total = torch.logsumexp(LZ, dim=0)                                  # [B]
    alive = torch.isfinite(log_total)
    share = torch.where(alive[None], (LZ - torch.where(alive, log_total, 0.0)[None]).exp(), 0.0).T  # [B, W]
    out_ids = torch.full((B, n), -1, dtype=torch.int64, device=dev)
    out_lp = torch.full((B, n), float("-inf"), dtype=torch.float32, device=dev)
    rows = torch.arange(B, device=dev)
    u = torch.rand(B, n, generator=gen, dtype=torch.float64).to(dev)
    if replacement:
        r = _pick(share[:, None, :].expand(B, n, W), u)                    # [B, n]
        cols = torch.arange(n, device=dev)[None].expand(B, n)
        picked = I[r, rows[:, None], cols]
        lp = LP[r, rows[:, None], cols].double() + LZ.T.gather(1, r) - log_total[:, None]
    else:
        ptr = torch.zeros(B, W, dtype=torch.int64, device=dev)
        taken = torch.zeros(B, W, dtype=torch.float64, device=dev)            # Σ p_r(id) already drawn from r
        picked = torch.full((B, n), -1, dtype=torch.int64, device=dev)
        lp = torch.full((B, n), float("-inf"), dtype=torch.float64, device=dev)
        ranks = torch.arange(W, device=dev)
        for t in range(n):
            inside = ptr < n
            nxt = I.permute(1, 0, 2)[rows[:, None], ranks[None], ptr.clamp_max(n - 1)]  # [B, W]
            has = inside & (nxt >= 0)
            mass = torch.where(has, share * (1.0 - taken).clamp_min(0.0), 0.0)
            any_left = mass.sum(1) > 0
            r = _pick(mass, u[:, t])
            p_at = ptr.gather(1, r[:, None])[:, 0].clamp_max(n - 1)
            lpl = LP[r, rows, p_at].double()
            picked[:, t] = torch.where(any_left, nxt.gather(1, r[:, None])[:, 0], -1)
            lp[:, t] = torch.where(any_left, lpl + LZ.T.gather(1, r[:, None])[:, 0] - log_total, float("-inf"))
            step = torch.nn.functional.one_hot(r, W).to(torch.int64) * any_left[:, None]
            ptr += step
            taken += step * lpl.exp()[:, None]
    bad = picked < 0
    out_ids = torch.where(alive[:, None] & ~bad, picked, out_ids)
    out_lp = torch.where(alive[:, None] & ~bad, lp.float(), out_lp)
    return out_ids, out_lp


def communication_bytes(op: str, B: int, k: int, world_size: int) -> int:
    """Bytes each rank receives in one call of the sharded ``op`` (the all-gather payload, W copies)."""
    if op == "topk_mine":
        return world_size * B * k * (4 + 8)
    if op == "sample_by_score":
        return world_size * (B * k * (8 + 8) + 8 * B + 8)
    raise ValueError(f"communication_bytes: 'op' must be 'topk_mine' or 'sample_by_score' (got {op!r})")
