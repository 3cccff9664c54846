"""Sampler base class, the ``Negatives`` result and the name registry."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .. import _validate as V
from .._constants import SIDE_MODES
from .._random import SeedStream, generator_device, uniform
from ..known import KnownSet
from ..ops.mining import _sharded

_REGISTRY: dict[str, type] = {}


@dataclass
class Negatives:
    """Fixed-shape negatives for a batch of B positives.

    Attributes:
        ids: int64 [B, n], the entity (node) that replaces the corrupted side; −1 where ``valid`` is False.
        valid: bool [B, n]; False only where a row has nothing admissible (or padding).
        log_prob: float [B, n] log-probability of each draw under the sampler's proposal (score samplers), or None.
        side: None when only tails are corrupted; else int64 [B] or [B, n] holding the column of the positive
            that was replaced: 0 for the head, 2 for the tail of a triple (1 for the destination of a pair).
        vectors: None, or float [B, n, d] candidate-side vectors for *continuous* negatives (DANS's
            ``mode="embedding"``): a slot with ``valid`` True and id −1 is a generated embedding that replaces
            the corrupted entity's vector, not an entity. Consumers that score negatives from vectors
            (:meth:`hardneg.samplers.Scorer.score_negatives`, the KG models' ``forward_scores``) use them;
            consumers that need entity ids (``triples()``, the PyKEEN adapter) cannot, and say so.
    """

    ids: torch.Tensor
    valid: torch.Tensor
    log_prob: torch.Tensor | None = None
    side: torch.Tensor | None = None
    vectors: torch.Tensor | None = None

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.ids.shape)

    def side_matrix(self, positives: torch.Tensor) -> torch.Tensor:
        """int64 [B, n] column replaced per negative (side expanded)."""
        if self.side is None:
            return torch.full_like(self.ids, positives.shape[1] - 1)
        return self.side if self.side.dim() == 2 else self.side[:, None].expand_as(self.ids)

    def triples(self, positives: torch.Tensor) -> torch.Tensor:
        """The corrupted triples (or pairs) [B, n, 3 or 2]; invalid slots keep the replaced id −1."""
        out = positives[:, None, :].expand(-1, self.ids.shape[1], -1).clone()
        col = self.side_matrix(positives)
        out.scatter_(2, col[..., None], self.ids[..., None])
        return out

    @property
    def vector_mask(self) -> torch.Tensor | None:
        """bool [B, n]: the slots holding a generated vector instead of an entity id (None without vectors)."""
        return None if self.vectors is None else self.valid & (self.ids < 0)

    def to(self, device: torch.device | str) -> "Negatives":
        f = lambda x: None if x is None else x.to(device)
        return Negatives(f(self.ids), f(self.valid), f(self.log_prob), f(self.side), f(self.vectors))


def register(name: str):
    def deco(cls):
        cls.name = name
        _REGISTRY[name] = cls
        return cls
    return deco


def available() -> list[str]:
    """Names of the registered samplers, in registration order."""
    return list(_REGISTRY)


def create(name: str, *, num_negatives: int, known: KnownSet | None = None, num_entities: int | None = None,
           num_relations: int | None = None, **options) -> "Sampler":
    """Build a sampler by name (see :func:`available`); every option beyond the common ones has a default.
    ``num_sources`` (bipartite graphs: the head / user count) is common to every sampler too."""
    if not isinstance(name, str):
        raise TypeError(f"samplers.create: 'name' must be a str, one of {available()} (got {V.describe(name)})")
    key = name.lower().replace("-", "_")
    if key not in _REGISTRY:
        raise ValueError(f"samplers.create: unknown sampler {name!r}; known samplers: {available()}")
    check_options(key, options)
    return _REGISTRY[key](num_negatives=num_negatives, known=known, num_entities=num_entities,
                          num_relations=num_relations, **options)


def check_options(name: str, given) -> None:
    """ValueError naming every option in ``given`` that sampler ``name`` does not take (a recipe's
    ``sampler_options`` typo fails here, before any data is loaded)."""
    valid = options(name)
    bad = sorted(set(given) - set(valid) - set(COMMON_OPTIONS))
    if bad:
        raise ValueError(f"samplers.create: unknown option(s) {bad} for sampler {name!r}; its options: "
                         f"{sorted(valid)}")


def get_class(name: str) -> type:
    if name not in _REGISTRY:
        raise ValueError(f"unknown sampler {name!r}; known samplers: {available()}")
    return _REGISTRY[name]


COMMON_OPTIONS = ("num_negatives", "known", "num_entities", "num_relations", "num_sources")


def options(name: str) -> dict:
    """The options a sampler takes beyond the common ones, with their defaults (``hardneg samplers``)."""
    import inspect

    out: dict = {}
    for klass in reversed(get_class(name).__mro__):
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        for p in inspect.signature(init).parameters.values():
            if p.kind == p.KEYWORD_ONLY and p.name not in COMMON_OPTIONS:
                out[p.name] = None if p.default is p.empty else p.default
    return out


class Sampler:
    """Base class. Subclasses implement ``_sample(P, scorer, generator) -> Negatives``.

    Trainable samplers (``trainable = True``: DANS's generator and discriminator, KBGAN's generator) learn
    from the model being trained. A training loop calls, in this order, for each batch: ``sample`` → the
    model's optimiser step → :meth:`update` with the same positives and negatives and the model as
    ``scorer``; and :meth:`on_epoch_start` before each epoch. Both are no-ops for every other sampler, so a
    loop may call them unconditionally (:class:`hardneg.tasks.kg.KGTask` and the PyKEEN adapter's
    ``HardNegativeTrainingLoop`` do).

    Common keyword-only arguments: ``num_negatives`` (n >= 1), ``known`` (a :class:`hardneg.KnownSet`: the
    filter; no known positive is ever returned), ``num_entities`` and ``num_relations`` (default: from
    ``known``, else from the scorer), ``num_sources`` and ``side``. On a bipartite graph (users -> items)
    ``num_entities`` is the destination (item) count, the range of replacement tails, and ``num_sources`` the
    source (user) count, the range of replacement heads (both default to ``known``'s
    ``num_destinations`` / ``num_sources``; for other graphs ``num_sources`` equals ``num_entities``). ``side``: ``"tail"``, ``"head"``, ``"both"`` (each with probability
    1/2) or ``"bernoulli"`` (head with the relation's tph/(tph+hpt), needs ``known``). The default is
    ``"both"`` for triples and ``"tail"`` for pairs (edges / user–item).
    """

    name = "base"
    requires_scorer = False
    #: learns from the model being trained through :meth:`update`
    trainable = False
    #: the last checked scorer's table is row-sharded with per-rank queries (set by ``_check_scorer``)
    _per_rank = False
    #: corrupts (h, r, t) triples only (needs relations); the generic tests skip pairs for these
    triples_only = False

    def __init__(self, *, num_negatives: int, known: KnownSet | None = None, num_entities: int | None = None,
                 num_relations: int | None = None, num_sources: int | None = None, side: str | None = None):
        op = f"samplers.{self.name}"
        self._op = op
        self.num_negatives = V.integer(op, "num_negatives", num_negatives, minimum=1)
        if known is not None and not isinstance(known, KnownSet):
            raise TypeError(f"{op}: 'known' must be a hardneg.KnownSet or None (got {V.describe(known)})")
        self.known = known
        if num_entities is None and known is not None:
            num_entities = known.num_destinations
        if num_sources is None and known is not None:
            num_sources = known.num_sources
        if num_relations is None and known is not None and known.kind == "triples":
            num_relations = known.num_relations
        self.num_entities = None if num_entities is None else V.integer(op, "num_entities", num_entities, minimum=1)
        self.num_relations = None if num_relations is None else V.integer(op, "num_relations", num_relations, minimum=1)
        self.num_sources = self.num_entities if num_sources is None else V.integer(op, "num_sources", num_sources,
                                                                                     minimum=1)
        if known is not None and self.num_entities is not None and self.num_entities != known.num_destinations:
            what = "known.num_destinations" if known.bipartite else "known.num_entities"
            raise ValueError(f"{op}: 'num_entities' ({self.num_entities}) differs from {what} "
                             f"({known.num_destinations})")
        if known is not None and self.num_sources != known.num_sources:
            raise ValueError(f"{op}: 'num_sources' ({self.num_sources}) differs from known.num_sources "
                             f"({known.num_sources})")
        if side is not None:
            V.choice(op, "side", side, SIDE_MODES)
        self.side = side
        self.step = 0  # number of sample() calls so far (schedules, caches)

    # ------------------------------------------------------------------ public
    def sample(self, positives: torch.Tensor, *, scorer=None, generator: torch.Generator | None = None,
               seed: int | None = None) -> Negatives:
        """Negatives for ``positives`` ([B, 3] (h, r, t) triples or [B, 2] (u, v) pairs, int64).

        Randomness comes from ``generator``, or from an explicit integer ``seed`` (a
        :class:`hardneg._random.SeedStream`): the form ``torch.compile(fullgraph=True)`` traces, where a
        ``torch.Generator`` cannot go. The same seed gives the same negatives eagerly and compiled. Compiled, the
        value checks (id ranges, NaN) run inside the ops when they execute; mining samplers whose rows corrupt
        different sides (``side="both"`` / ``"bernoulli"``) need
        ``torch._dynamo.config.capture_dynamic_output_shape_ops = True`` (the rows of each side are a
        data-dependent subset), and so do the event samplers that read histories and ``nscaching`` (the
        distinct anchors of a batch; its caches grow between calls, so a compiled step recompiles once for
        dynamic sizes). ``khop``'s numba walk runs behind the ``hardneg::khop_pool`` custom op; the trainable
        samplers (``dans``, ``kbgan``) build their networks on their
        first call, which must run eagerly. With a seed, samplers that stop early when they can (rejection
        rounds) do their fixed number of rounds instead, so eager and compiled runs draw the same."""
        generator = self._randomness(generator, seed)
        P = self._check_positives(positives)
        V.generator(self._op, generator)
        if self.requires_scorer:
            self._check_scorer(scorer, P)
        with torch.no_grad():
            out = self._sample(P, scorer, generator)
        self.step += 1
        return out

    __call__ = sample

    def update(self, positives, negatives, *, scorer=None, generator=None) -> dict | None:
        """Learn from one training step of the model (trainable samplers; a no-op here).

        Args:
            positives: the [B, 3] batch given to the last :meth:`sample` call.
            negatives: the :class:`Negatives` that call returned (after the model's optimiser step).
            scorer: the model being trained (its current parameters), e.g. the discriminator's reward.
            generator: the ``torch.Generator`` for any noise drawn here.

        Returns:
            None, or a dict of scalar diagnostics (losses, rewards) for logging.
        """
        return None

    def on_epoch_start(self, epoch: int) -> None:
        """Called before each training epoch (``epoch`` counts from 1); pretraining schedules use it."""

    def state_dict(self) -> dict:
        """Mutable state (step counter, caches) for checkpoints: ``load_state_dict`` restores it exactly."""
        return {"step": self.step}

    def load_state_dict(self, state: dict) -> None:
        self.step = int(state["step"])

    def __repr__(self):
        return f"{type(self).__name__}(num_negatives={self.num_negatives}, side={self.side!r})"

    # ------------------------------------------------------------------ helpers
    def _randomness(self, generator, seed):
        """The generator, or a :class:`SeedStream` for an explicit ``seed`` (not both)."""
        if seed is None:
            return generator
        if generator is not None:
            raise ValueError(f"{self._op}: pass 'generator' or 'seed', not both")
        if not torch.compiler.is_compiling():
            seed = V.integer(self._op, "seed", seed, minimum=0)
        return SeedStream(seed)

    def _check_positives(self, positives) -> torch.Tensor:
        op = self._op
        P = V.tensor(op, "positives", positives, dtypes=V.INDEX_DTYPES, kind="integer tensor",
                     what="of (h, r, t) triples [B, 3] or (u, v) pairs [B, 2]")
        if P.dim() != 2 or P.shape[1] not in (2, 3):
            raise ValueError(f"{op}: 'positives' must be [B, 3] (h, r, t) or [B, 2] (u, v) (got {V.describe(P)})")
        P = P.long()
        if self.known is not None:
            if self.known.device != P.device:
                raise ValueError(f"{op}: 'positives' is on {P.device} but 'known' is on {self.known.device}; "
                                 f"move one of them (known.to(device))")
            want = 3 if self.known.kind == "triples" else 2
            if P.shape[1] != want:
                raise ValueError(f"{op}: 'known' holds {self.known.kind}, so 'positives' must be [B, {want}] "
                                 f"(got {V.describe(P)})")
        E, S, R = self.num_entities, self.num_sources, self.num_relations
        if P.shape[1] == 3:
            V.ids(op, "positives", P, [E, R, E], what=("entity ids", "relation ids", "entity ids"))
        else:
            V.ids(op, "positives", P, [S, E], what=("source ids", "destination ids") if S != E else "entity ids")
        return P

    def _check_scorer(self, scorer, P):
        op = self._op
        if scorer is None:
            raise ValueError(f"{op}: this sampler mines with the model's score and needs a scorer: "
                             f"sample(positives, scorer=...) with e.g. hardneg.samplers.DistMultScorer(...) or a "
                             f"hardneg.models.kg model")
        for attr in ("query_vectors", "candidate_vectors", "metric"):
            if not hasattr(scorer, attr):
                raise TypeError(f"{op}: 'scorer' must implement query_vectors, candidate_vectors and metric "
                                f"(missing {attr!r} on {type(scorer).__name__})")
        cand = scorer.candidate_vectors("tail")
        # a row-sharded training table with per-rank queries: its mining calls are collective, so each rank
        # makes them for every side, even with no rows there (side_groups(..., collective=self._per_rank))
        self._per_rank = bool(getattr(cand, "per_rank_queries", False))
        N = None
        if _sharded(cand):  # a row-sharded table (hardneg.distributed): its size, and this rank's rows to check
            N, cand = cand.num_rows, cand.local
        if not isinstance(cand, torch.Tensor) or cand.dim() != 2 or not cand.is_floating_point():
            raise TypeError(f"{op}: scorer.candidate_vectors('tail') must be a floating tensor [N, d] "
                            f"(got {V.describe(cand)})")
        if cand.device != P.device:
            raise ValueError(f"{op}: the scorer's vectors are on {cand.device} but 'positives' is on {P.device}")
        N = cand.shape[0] if N is None else N
        if self.num_entities is not None and N != self.num_entities:
            raise ValueError(f"{op}: the scorer has {N} candidates but num_entities is {self.num_entities}")
        V.finite(op, "scorer.candidate_vectors('tail')", cand.detach())  # NaN embeddings: an error, not a pick

    def _entities(self, scorer=None, side: str = "tail") -> int:
        """How many ids the corrupted ``side`` takes: destinations (``num_entities``) for the tail, sources
        (``num_sources``) for the head; from the scorer's candidate table when not set."""
        if self.num_entities is not None:
            return self.num_entities if side == "tail" else self.num_sources
        if scorer is not None:
            return scorer.candidate_vectors(side).shape[0]
        raise ValueError(f"{self._op}: 'num_entities' is required when no 'known' set is given")

    def _bipartite(self) -> bool:
        """True when heads and tails are different id spaces of different sizes (corrupt one side at a time)."""
        return self.num_entities is not None and self.num_sources != self.num_entities

    def _side_mode(self, P) -> str:
        return self.side or ("both" if P.shape[1] == 3 else "tail")

    def _row_sides(self, P, generator) -> torch.Tensor | None:
        """Per-row replaced column [B] (int64), or None when every row corrupts the tail."""
        mode = self._side_mode(P)
        B, w = P.shape
        tail = w - 1
        if mode == "tail":
            return None
        if mode == "head":
            return torch.zeros(B, dtype=torch.int64, device=P.device)
        if mode == "both":
            p = torch.full((B,), 0.5, dtype=torch.float64)
        else:
            if self.known is None or self.known.kind != "triples":
                raise ValueError(f"{self._op}: side='bernoulli' needs a KnownSet of triples (for tph/hpt)")
            p = self.known.head_probability().to("cpu", torch.float64)[P[:, 1].cpu()]
        u = uniform((B,), generator, "cpu")
        return torch.where(u < p, 0, tail).to(torch.int64).to(P.device)


def exclusion_with_self(known: KnownSet | None, anchor: torch.Tensor, target: torch.Tensor,
                        side: str, extra: tuple[torch.Tensor, torch.Tensor] | list | None = None
                        ) -> tuple[torch.Tensor, torch.Tensor]:
    """CSR of ids to skip per row: the known positives of the anchor, the ids of the optional CSR ``extra``
    (``(indptr [B+1], ids)``, e.g. a source's past destinations, or a list of such CSRs) and the row's own true
    entity (so the positive itself is never returned, even without a known set or for triples not in it). Rows
    may repeat ids."""
    B = target.shape[0]
    dev = target.device
    if known is None and extra is None:  # each row's own target, alone
        return torch.arange(B + 1, device=dev), target.to(torch.int64)
    if known is not None:
        ptr, idx = known.exclusion(anchor, side=side)
    else:
        ptr, idx = torch.zeros(B + 1, dtype=torch.int64, device=dev), torch.zeros(0, dtype=torch.int64, device=dev)
    extras = [] if extra is None else list(extra) if isinstance(extra, list) else [extra]
    parts = [(ptr, idx)] + [(p.to(dev), i.to(dev, torch.int64)) for p, i in extras]
    # each row's known ids, its extra ids, then its target: a stable sort of them all by row (no host sync, so
    # it traces under torch.compile with the data-dependent number of ids)
    rows = [torch.searchsorted(p[1:], torch.arange(i.shape[0], device=dev), right=True) for p, i in parts]
    order = torch.sort(torch.cat([*rows, torch.arange(B, device=dev)]), stable=True).indices
    indptr = sum((p for p, _ in parts), torch.arange(B + 1, device=dev))
    return indptr, torch.cat([*(i for _, i in parts), target.to(torch.int64)])[order]


def restrict_csr(csr: tuple[torch.Tensor, torch.Tensor], subset: torch.Tensor, num_ids: int
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """A per-row exclusion CSR over ``num_ids`` ids re-expressed over the positions of ``subset`` (distinct ids):
    id ``subset[j]`` becomes ``j``, ids outside the subset are dropped. For mining a random candidate subset
    (``topk_mine(q, C[subset], k, exclude=restrict_csr(ex, subset, N))``)."""
    indptr, idx = csr
    dev = idx.device
    pos = torch.full((num_ids,), -1, dtype=torch.int64, device=dev)
    pos[subset] = torch.arange(subset.numel(), device=dev)
    loc = pos[idx]
    keep = loc >= 0
    row = torch.searchsorted(indptr[1:], torch.arange(idx.numel(), device=dev), right=True)
    counts = torch.bincount(row[keep], minlength=indptr.numel() - 1)  # as normalize_csr builds its indptr
    return torch.cat([indptr.new_zeros(1), counts.cumsum(0)]), loc[keep]


_ROW_HASH: dict = {}


def stable_topk(x: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(values [R, k], columns [R, k])``: the first k of each row's stable descending sort (equal values in
    column order), exactly ``torch.sort(x, dim=1, descending=True, stable=True)`` cut at k, from two ``topk``
    calls and a sort of k columns instead of a sort of all N (1 <= k <= N; no NaN)."""
    N = x.shape[1]
    k = V.integer("stable_topk", "k", k, minimum=1)
    if k > N:
        raise ValueError(f"stable_topk: 'k' must be at most the row length {N} (got {k})")
    kth = torch.topk(x, k, dim=1).values[:, -1:]  # the k-th largest value, ties included
    above, tied = x > kth, x == kth
    take = above | (tied & (torch.cumsum(tied, 1) <= k - above.sum(1, keepdim=True)))  # k a row
    key = torch.where(take, N - torch.arange(N, device=x.device), torch.zeros((), dtype=torch.int64, device=x.device))
    cols = torch.topk(key, k, dim=1).indices  # the taken columns, ascending
    vals = x.gather(1, cols)
    o = torch.sort(vals, dim=1, descending=True, stable=True).indices
    return vals.gather(1, o), cols.gather(1, o)


def distinct_rows(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(rows, inverse)``: the distinct rows of ``x`` [R, d] and each row's index into them, the grouping of
    ``torch.unique(x, dim=0, return_inverse=True)`` (equal values are one row; -0.0 equals 0.0) in another order,
    at a third of its cost for the few dozen 100-wide rows of a batch (ENS's queries). Rows are grouped by an
    exact 64-bit hash of their float bits, then checked against their group's row; on a mismatch (two different
    rows with one hash, or NaN) it is ``torch.unique``'s answer. Traced (``torch.compile``): ``torch.unique``."""
    if torch.compiler.is_compiling() or x.dim() != 2 or x.dtype not in (torch.float32, torch.float64) or not x.numel():
        return torch.unique(x, dim=0, return_inverse=True)
    bits = (x + 0.0).view(torch.int32 if x.dtype == torch.float32 else torch.int64)  # + 0.0: -0.0 becomes 0.0
    key = (x.dtype, x.shape[1], x.device)
    w = _ROW_HASH.get(key)
    if w is None:  # fixed random odd weights: the hash is a wrapping int64 dot product with the bits
        w = torch.randint(-2**62, 2**62, (x.shape[1],), generator=torch.Generator().manual_seed(0x5EED)) | 1
        w = _ROW_HASH[key] = w.to(x.device)
    h, inv = torch.unique((bits.long() * w).sum(1), return_inverse=True)
    rep = torch.empty(h.numel(), dtype=torch.int64, device=x.device)  # a member of each group (all equal)
    rep.scatter_(0, inv, torch.arange(x.shape[0], device=x.device))
    rows = x[rep]
    if not torch.equal(rows[inv], x):
        return torch.unique(x, dim=0, return_inverse=True)
    return rows, inv


def uniform_pool_draw(pool_ids: torch.Tensor, n: int,
                      generator: torch.Generator | None) -> tuple[torch.Tensor, torch.Tensor]:
    """n draws per row from the valid (>= 0) entries of ``pool_ids`` [B, K]: a uniform random permutation of the
    valid entries (distinct), cycled when a row has fewer than n. -> (ids [B, n], valid [B, n])."""
    B, K = pool_ids.shape
    dev = pool_ids.device
    if K == 0:  # (B == 0 goes through the general path: no branch on a data-dependent batch size)
        return (torch.full((B, n), -1, dtype=torch.int64, device=dev), torch.zeros(B, n, dtype=torch.bool, device=dev))
    keys = uniform((B, K), generator, dev)
    ok = pool_ids >= 0
    keys = torch.where(ok, keys, torch.full_like(keys, 2.0))
    order = keys.argsort(dim=1)
    perm = pool_ids.gather(1, order)  # valid entries first, in random order
    cnt = ok.sum(1, keepdim=True)
    j = torch.arange(n, device=dev)[None, :] % cnt.clamp_min(1)
    ids = perm.gather(1, j)
    valid = (cnt > 0).expand(B, n).clone()
    ids = torch.where(valid, ids, torch.full_like(ids, -1))
    return ids, valid


def draw_with_replacement(weights: torch.Tensor, n: int, generator) -> torch.Tensor:
    """[B, n] column indices drawn i.i.d. ∝ ``weights`` [B, M] (rows with positive mass; on the weights' device):
    ``torch.multinomial`` from a ``torch.Generator``, :func:`hardneg.ops.sample_from_weights` from a
    :class:`SeedStream` (traceable)."""
    if isinstance(generator, SeedStream):
        from ..ops import sample_from_weights

        return sample_from_weights(weights, n, replacement=True, generator=generator)
    return torch.multinomial(weights.to(generator_device(generator)), n, replacement=True,
                             generator=generator).to(weights.device)


def side_groups(P: torch.Tensor, row_side: torch.Tensor | None, *,
                collective: bool = False) -> list[tuple[str, int, torch.Tensor]]:
    """[(side name, column, row indices)] for the rows of each side; ``collective``: keep a side with no rows
    (every rank of a sharded table must make the same mining calls)."""
    B, dev = P.shape[0], P.device
    tailc = P.shape[1] - 1
    if row_side is None:
        return [("tail", tailc, torch.arange(B, device=dev))]
    out = []
    for side, col in (("tail", tailc), ("head", 0)):
        rows = (row_side == col).nonzero().flatten()
        if torch.compiler.is_compiling() or collective or rows.numel():  # compiled: no branch on the data
            out.append((side, col, rows))
    return out
