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

This is the *row-sharded table* for mining. Data-parallel training with a replicated model is in
:mod:`hardneg.training` (``torchrun --nproc_per_node W -m hardneg train ...``).
"""
from __future__ import annotations

import torch
import torch.distributed as dist

from hardneg import _validate as V
from hardneg._constants import METRICS, WEIGHTINGS
from hardneg._random import seed_from
from hardneg.metrics import pairwise
from hardneg.ops import mining as _mining

__all__ = ["ShardedCandidates", "topk_mine", "sample_by_score", "require_group"]

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

    def __repr__(self) -> str:
        return (f"ShardedCandidates(N={self.num_rows}, d={self.local.shape[1]}, rank {self.rank}/{self.world_size} "
                f"holds [{self.lo}, {self.hi}), dtype={self.dtype}, device={self.device})")


# ----------------------------------------------------------------------------------------------------- ops


def _prepare(op, query, sharded: ShardedCandidates, exclude):
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
    return q, _local_exclusion(ex, sharded.lo, sharded.hi)


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
    i.e. O(B·k·W). Collective: every rank calls it with the same query, k, metric and exclude.

    Raises:
        RuntimeError: no initialised process group.
        TypeError / ValueError: as the single-process op; ``exclude`` ids are checked against the global N.
    """
    op = "topk_mine"
    k = V.integer(op, "k", k, minimum=1)
    q, ex = _prepare(op, query, candidates, exclude)
    s, i = _mining.topk_mine(q, candidates.local, k, metric=metric, exclude=ex, backend=backend)
    S = _gather(s, candidates)                                   # [W, B, k]
    I = _gather(_to_global(i, candidates.lo), candidates)
    B = q.shape[0]
    S = S.permute(1, 0, 2).reshape(B, -1)                        # rank order = global-id order among ties
    I = I.permute(1, 0, 2).reshape(B, -1)
    S, order = torch.sort(S, dim=1, descending=True, stable=True)
    I = I.gather(1, order)
    pad, order = torch.sort((I < 0).to(torch.int8), dim=1, stable=True)  # padding last, keeping the rest
    return S.gather(1, order)[:, :k].contiguous(), I.gather(1, order)[:, :k].contiguous()


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
    it with the same query, n, options and exclude.

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
    q, ex = _prepare(op, query, candidates, exclude)
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
    return _merge_samples(I, LP, LZ, replacement, merge_gen)


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
