"""Rec evaluation: full ranking over all items with each user's history excluded, fused, and the rank of a
held-out item among sampled candidates.

Shapes: ``B`` evaluated users, ``I`` items, ``d`` the width, ``K`` = max(ks), ``n`` sampled negatives.

**Full ranking** (LightGCN's protocol, and leave-one-out's "full" numbers): for each evaluated user, the top K
items over *all* items except the user's history (its training items; for a leave-one-out test, training and
validation items), by :func:`hardneg.ops.topk_mine` with the history as ``exclude``, in chunks of users. Memory
beyond one chunk's query vectors is O(chunk · K): a users × items score matrix is never formed. Ties follow
``topk_mine`` (the smaller item id first). A user with fewer than K admissible items gets padding (id −1), which
never counts as a hit. Over users with at least one held-out item:

* ``recall@K`` = hits / |held-out|, ``precision@K`` = hits / K, ``hr@K`` = 1 if any hit;
* ``ndcg@K`` = DCG / IDCG, DCG = Σ over hits at rank r of 1 / log2(r + 1), IDCG over min(|held-out|, K) hits
  (LightGCN-PyTorch's definition).

With one held-out item per user (leave-one-out) recall@K equals hr@K.

**Sampled** (SASRec's 1 + 100, SelfGNN's 1 + 999): the held-out item against n never-interacted items fixed by
seed (:meth:`hardneg.tasks.rec.data.RecSplit.eval_candidates`); rank = 1 + the number of candidates scoring at
least as high as the held-out item (ties pessimistic); ``hr@K_1+n`` and ``ndcg@K_1+n`` = 1 / log2(rank + 1)
when rank <= K.
"""
from __future__ import annotations

import torch

from ... import _validate as V
from ...data import _common as C
from ...metrics import pairwise
from ...ops import topk_mine

KS = (10, 20)


def _rows(csr, s, e):
    ptr, idx = csr
    return ptr[s:e + 1] - ptr[s], idx[ptr[s]:ptr[e]]


def _discounts(k, device):
    return 1.0 / torch.log2(torch.arange(k, device=device, dtype=torch.float64) + 2.0)


class _Sums:
    def __init__(self):
        self.s: dict[str, float] = {}

    def add(self, key, value):
        self.s[key] = self.s.get(key, 0.0) + float(value)


def _full_chunk(q, items, ex, tkey, t_count, row0, ks, metric, sums):
    """Adds one chunk's hits to ``sums``; ``tkey`` are the sorted keys row * I + item of the held-out items."""
    K, I = max(ks), items.shape[0]  # noqa: E741
    _, ids = topk_mine(q, items, K, metric=metric, exclude=ex)
    rows = torch.arange(row0, row0 + q.shape[0], device=ids.device)[:, None]
    key = rows * I + ids.clamp_min(0)
    pos = torch.searchsorted(tkey, key).clamp_max(max(tkey.numel() - 1, 0))
    hit = (tkey[pos] == key) & (ids >= 0)
    disc = _discounts(K, ids.device)
    cum = torch.cumsum(disc, 0)
    n_true = t_count.to(torch.float64)
    for k in ks:
        h = hit[:, :k].to(torch.float64)
        nh = h.sum(1)
        sums.add(f"recall@{k}", (nh / n_true).sum())
        sums.add(f"precision@{k}", nh.sum() / k)
        sums.add(f"hr@{k}", (nh > 0).sum())
        idcg = cum[(t_count.clamp(max=k) - 1)]
        sums.add(f"ndcg@{k}", ((h * disc[:k]).sum(1) / idcg).sum())


def _sampled_chunk(q, items, cand, ks, metric, suffix, sums):
    from ...samplers.scorers import pairwise

    step = max(1, (1 << 22) // max(1, cand.shape[1] * q.shape[1]))  # rows per pass: <= 16 MiB of gathered vectors
    for s in range(0, q.shape[0], step):
        c = cand[s:s + step]
        sc = pairwise(q[s:s + step, None, :], items[c], metric)  # [rows, 1 + n]
        rank = 1 + (sc[:, 1:] >= sc[:, :1]).sum(1)
        for k in ks:
            inside = rank <= k
            sums.add(f"hr@{k}{suffix}", inside.sum())
            sums.add(f"ndcg@{k}{suffix}", torch.where(inside, 1.0 / torch.log2(rank.double() + 1.0),
                                                      torch.zeros((), dtype=torch.float64)).sum())


def _query_fn(op, query, B):
    if callable(query):
        return query
    q = V.floating(op, "query", query, 2, "[B, d]")
    if q.shape[0] != B:
        raise ValueError(f"{op}: 'query' must have one row per evaluated user ({B}) (got {V.describe(q)})")
    return lambda rows: q[rows]


def full_ranking(query, items, truth, exclude=None, *, ks=KS, batch_size=2048, metric="dot", candidates=None,
                 users=None) -> dict:
    """Full-ranking metrics (module docstring), optionally with sampled ones.

    Args:
        query: [B, d] query vectors of the evaluated users, or a callable ``f(rows [b]) -> [b, d]`` given row
            numbers 0..B-1 (or, with ``users``, the users' ids).
        items: [I, d] item vectors, same dtype and device.
        truth: CSR ``(indptr [B+1], items)``: each evaluated user's held-out items (rows with none are skipped).
        exclude: CSR ``(indptr [B+1], items)``: each user's items never to rank (its history), or None.
        ks: cut-offs (positive ints).
        batch_size: users per chunk.
        metric: the score, as :func:`hardneg.ops.topk_mine`'s ``metric``.
        candidates: optional ``{n: [B, 1 + n] item ids}`` (held-out item in column 0) for the sampled metrics.
        users: optional [B] ids handed to a callable ``query`` instead of row numbers.

    Returns:
        ``{metric@K: mean over evaluated users, ..., "users": B', "skipped_users": B - B'}`` (B' users with a
        held-out item).

    Raises:
        TypeError: non-tensor inputs, non-floating vectors, non-integer CSRs.
        ValueError: malformed CSRs, item ids out of [0, I), mismatched rows, bad ks / batch_size, candidates not
            [B, 1 + n].

    Example:
        >>> import torch
        >>> from hardneg.tasks.rec.evaluation import full_ranking
        >>> q, it = torch.randn(3, 8), torch.randn(50, 8)
        >>> truth = (torch.tensor([0, 1, 3, 3]), torch.tensor([4, 7, 9]))
        >>> m = full_ranking(q, it, truth, (torch.tensor([0, 0, 1, 1]), torch.tensor([2])))
        >>> sorted(m)[:3], m["users"]
        (['hr@10', 'hr@20', 'ndcg@10'], 2)
    """
    op = "full_ranking"
    items = V.floating(op, "items", items, 2, "[I, d]")
    I = items.shape[0]  # noqa: E741
    if not isinstance(truth, (tuple, list)) or len(truth) != 2 or not isinstance(truth[0], torch.Tensor):
        raise TypeError(f"{op}: 'truth' must be a CSR pair (indptr [B+1], items) (got {V.describe(truth)})")
    B = truth[0].numel() - 1
    if B < 0:
        raise ValueError(f"{op}: 'truth' indptr must have B + 1 >= 1 entries (got 0)")
    truth = V.csr(op, "truth", truth, B, I, items.device)
    exclude = None if exclude is None else V.csr(op, "exclude", exclude, B, I, items.device)
    if isinstance(ks, int) or not all(isinstance(k, int) and not isinstance(k, bool) and k > 0 for k in ks) or not ks:
        raise ValueError(f"{op}: 'ks' must be a non-empty sequence of positive ints (got {ks!r})")
    bs = V.integer(op, "batch_size", batch_size, minimum=1)
    cands = {}
    for n, c in (candidates or {}).items():
        c = V.tensor(op, f"candidates[{n}]", c, ndim=2, dtypes=V.INDEX_DTYPES, kind="integer tensor")
        if c.shape != (B, 1 + n):
            raise ValueError(f"{op}: 'candidates[{n}]' must be [B, 1 + {n}] = [{B}, {1 + n}] (got {V.describe(c)})")
        cands[n] = V.ids(op, f"candidates[{n}]", c, I)
    qf = _query_fn(op, query, B)
    count = truth[0][1:] - truth[0][:-1]
    keep = torch.nonzero(count > 0).flatten()
    if keep.numel() < B:  # drop users with nothing held out
        truth = _subset(truth, keep)
        exclude = None if exclude is None else _subset(exclude, keep)
        cands = {n: c[keep] for n, c in cands.items()}
        ids = keep if users is None else users[keep]
        qf = (lambda f, m: lambda rows: f(m[rows]))(qf, ids)
    elif users is not None:
        qf = (lambda f, m: lambda rows: f(m[rows]))(qf, users)
    Bk = keep.numel()
    row = torch.repeat_interleave(torch.arange(Bk, device=items.device), truth[0][1:] - truth[0][:-1])
    tkey = row * I + truth[1]
    t_count = truth[0][1:] - truth[0][:-1]
    sums = _Sums()
    for s in range(0, Bk, bs):
        e = min(Bk, s + bs)
        q = qf(torch.arange(s, e, device=items.device))
        if q.dtype != items.dtype:
            q = q.to(items.dtype)
        ex = _rows(exclude, s, e) if exclude is not None else None
        _full_chunk(q.contiguous(), items, ex, tkey, t_count[s:e], s, ks, metric, sums)
        for n, c in cands.items():
            _sampled_chunk(q, items, c[s:e], ks, metric, f"_1+{n}", sums)
    if Bk:
        out = {k: v / Bk for k, v in sums.s.items()}
    else:
        names = [f"{m}@{k}" for m in ("recall", "precision", "hr", "ndcg") for k in ks]
        names += [f"{m}@{k}_1+{n}" for n in cands for m in ("hr", "ndcg") for k in ks]
        out = dict.fromkeys(names, float("nan"))
    out["users"], out["skipped_users"] = int(Bk), int(B - Bk)
    return out


def _subset(csr, rows):
    """The CSR restricted to ``rows`` (sorted), rebuilt from its (row, id) pairs on the CPU."""
    dev = csr[0].device
    ptr, idx, rows = csr[0].cpu(), csr[1].cpu(), rows.cpu()
    B = ptr.numel() - 1
    row = torch.repeat_interleave(torch.arange(B), ptr[1:] - ptr[:-1])
    new = torch.full((B,), -1, dtype=torch.int64)
    new[rows] = torch.arange(rows.numel())
    m = new[row] >= 0
    return tuple(x.to(dev) for x in C.csr(new[row[m]], idx[m], rows.numel()))


class Evaluator:
    """Evaluation of a :class:`hardneg.tasks.rec.data.RecSplit` (built once per part, then reused).

    ``protocol="given"``: ``"valid"`` and ``"test"`` both rank the given test items with the training items
    excluded (the LightGCN split has no validation part; LightGCN-PyTorch reports the same numbers). Leave-one-out:
    valid ranks the second-to-last item with the training items excluded; test ranks the last item with training
    and validation items excluded; plus the sampled metrics for each n in ``sampled``."""

    def __init__(self, split, *, sampled=(), ks=KS, batch_size=2048, device=None):
        self.split, self.ks, self.batch_size = split, tuple(ks), batch_size
        self.sampled = tuple(sampled) if split.protocol == "leave_one_out" else ()
        self.device = device or torch.device("cpu")
        self._parts: dict[str, dict] = {}

    def part(self, name: str) -> dict:
        if name in self._parts:
            return self._parts[name]
        sp = self.split
        if sp.protocol == "given":
            held, hist = sp.test, sp.train
        elif name == "valid":
            held, hist = sp.valid, sp.train
        else:
            held, hist = sp.test, torch.cat([sp.train, sp.valid])
        users = torch.unique(held[:, 0])
        B = users.numel()
        rank = torch.searchsorted(users, held[:, 0].contiguous())
        truth = C.csr(rank, held[:, 1], B)
        m = torch.isin(hist[:, 0], users)
        exclude = C.csr(torch.searchsorted(users, hist[m, 0].contiguous()), hist[m, 1], B)
        cands = {}
        for n in self.sampled:
            cu, ci = sp.eval_candidates(name if sp.protocol == "leave_one_out" else "test", num_negatives=n)
            if not torch.equal(cu, users):  # pragma: no cover - eval_candidates follows the same order
                raise RuntimeError("Evaluator: sampled candidates are not aligned with the evaluated users")
            cands[n] = ci.to(self.device)
        d = {"users": users.to(self.device), "truth": tuple(x.to(self.device) for x in truth),
             "exclude": tuple(x.to(self.device) for x in exclude), "candidates": cands, "history": hist}
        self._parts[name] = d
        return d

    def evaluate(self, name: str, view) -> dict:
        """Metrics of ``view`` (a model's :class:`~hardneg.tasks.rec.models.EvalView`) on part ``name``."""
        p = self.part(name)
        return full_ranking(view.query, view.items, p["truth"], p["exclude"], ks=self.ks,
                            batch_size=self.batch_size, candidates=p["candidates"], users=p["users"])

    def history(self, name: str):
        """``(indptr [U+1], items)``: what each user has seen before part ``name`` (the sequence models' input)."""
        sp = self.split
        part = "train" if sp.protocol == "given" or name == "valid" else "test"
        return sp.history(part)[:2]
