"""MeBNS: meta-bootstrapping negative sampling (Wang et al., "Not All Negatives Are Worth Attending to", WSDM 2024,
arXiv 2312.04815). No code was released; this is our reading of the paper's four parts, with every choice the
paper leaves open named below (defaults in brackets).

DNS (``dns``) picks the n negatives the *current* model scores highest among M uniform candidates; as the model
moves, a negative flips between "hard" and "easy" from one step to the next (the paper's migration
phenomenon). MeBNS is a plug-in on top of DNS:

1. **STD-Generator** (:meth:`MeBNSSampler.teacher_negatives`): the teacher's training negatives are a mix of
   k-hop structural negatives (nodes within ``std_hops`` [2] hops of the anchor that are not linked to it,
   :class:`~hardneg.samplers.KHopSampler`) and filtered uniform ones; ``std_ratio`` [0.5] of them structural.
2. **Teacher-student** (:meth:`MeBNSSampler.sample`): a teacher GNN (the student's backbone, trained first on the
   STD data, then frozen: ``set_teacher``) scores M = ``num_candidates`` [16 n] filtered-uniform candidates per
   positive. The paper's teacher *filters out easy negatives*: ``filter_quantile`` [0] drops that share of the
   candidates the teacher scores lowest (at least n survive). From the remainder the n negatives are those with
   the highest key: ``select="joint"`` [the default] ranks by the student's logit plus ``teacher_weight`` [0.25]
   times the teacher's, so the frozen teacher steadies the student's moving notion of hard (the paper's remedy
   for migration) as a soft filter; ``"student"`` ranks by the student alone (DNS restricted to what the teacher
   kept), ``"teacher"`` by the teacher alone, ``"uniform"`` draws n at random. The defaults were chosen on
   validation Hits@20 over ten seeds with the GCN recipes on Cora and CiteSeer (bench/RESULTS.md, "MeBNS with
   the teacher as a soft filter"): with a hard filter (``filter_quantile`` 0.5) and the student's pick MeBNS
   stayed behind DNS on Cora in every setting tried, the joint key with no hard filter led DNS on both datasets,
   and a teacher weight of 2 (teacher-led) or 0 (no teacher) lost that lead.
3. **Meta re-weighting** (:class:`MetaReweighter`): a meta-weight net (Shu et al., NeurIPS 2019) maps each kept
   negative's features (its current loss under the student and the teacher's logit) to a weight in (0, 1),
   normalised to mean 1 over the batch's valid negatives. It learns by a bi-level step (Ren et al. 2018): a
   virtual SGD step of the student on the weighted loss (``inner_lr`` [0.1]), then one Adam step (``meta_lr``
   [1e-3]) of the weight net on the virtual student's BCE over the meta set, differentiating through the
   virtual step (second order); every ``meta_every`` [1] training steps; the student then trains on the
   re-weighted loss. With the GCN recipes the bi-level step adds little to Hits@20 (without it, 0.003–0.004
   lower, paired t −0.3 to −1.7 over ten seeds; bench/RESULTS.md); it is kept, as the paper's, and ``meta_every``
   thins it out.
4. **UMD-Collector** (:func:`collect_meta_set`): the meta set is the ``meta_size`` [256] training pairs (half
   positives, half STD negatives) the teacher is most certain about: ``mc_passes`` [10] stochastic passes,
   each with dropout (``mc_dropout`` [0.2], the teacher's own) over an augmented graph (``edge_drop`` [0.2] of
   the training edges removed), and the pairs with the lowest standard deviation of the predicted probability
   among those the mean classifies correctly (the rest, if too few, by lowest deviation). Collected once, after
   the teacher is trained (the teacher is frozen, so its uncertainty does not change).

The sampler holds parts 1, 2 and the meta-weight net of 3; a task supplies the models (the linkpred task trains
the teacher, ties its checkpoint to the training graph and runs the bi-level step through ``reweighter``).
Without a teacher attached (``teacher=None``, e.g. a bare ``samplers.create("mebns", ...)``) the scorer passed to
``sample`` is its own teacher: with the defaults (no hard filter, the joint key) that is plain DNS over M candidates.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from .. import _validate as V
from ..ops import corrupt
from .._random import uniform
from ..metrics import anchors
from .base import Negatives, create, register, side_groups
from .basic import from_corrupt
from .hard import _MiningSampler

SELECT = ("joint", "student", "teacher", "uniform")


@register("mebns")
class MeBNSSampler(_MiningSampler):
    """MeBNS negatives (module docstring): DNS candidates ranked with the teacher, and the STD-Generator for it.

    Args (beyond the common ones): ``num_candidates`` M >= n (None: 16 per negative), ``filter_quantile`` in
    [0, 1), ``select``, ``teacher_weight`` >= 0 (the teacher's share of the ``joint`` key; other selections ignore
    it), ``teacher`` (a scorer or None), ``std_hops``, ``std_ratio`` in [0, 1], ``std_max_candidates`` (k-hop
    pool cap), ``edges`` (the training graph for the k-hop negatives; default: the known set's edges), and the
    meta-learning options kept for the task: ``meta_size``, ``mc_passes``, ``mc_dropout``, ``edge_drop``,
    ``inner_lr``, ``meta_lr``, ``meta_hidden``, ``meta_every``, ``teacher_epochs``, ``teacher_lr``,
    ``teacher_path``, ``teacher_model``.
    """

    def __init__(self, *, num_candidates: int | None = None, filter_quantile: float = 0.0, select: str = "joint",
                 teacher_weight: float = 0.25, teacher=None, std_hops: int = 2, std_ratio: float = 0.5,
                 std_max_candidates: int = 64, edges=None,
                 meta_size: int = 256, mc_passes: int = 10, mc_dropout: float = 0.2, edge_drop: float = 0.2,
                 inner_lr: float = 0.1, meta_lr: float = 1e-3, meta_hidden: int = 16, meta_every: int = 1,
                 meta_params: str = "all",
                 teacher_epochs: int = 100, teacher_lr: float | None = None, teacher_path: str | None = None,
                 teacher_model: str | None = None, **kw):
        super().__init__(**kw)
        op = self._op
        if num_candidates is None:  # DNS's hardness depends on M / n: keep the chosen 16 candidates per negative
            num_candidates = 16 * self.num_negatives
        self.num_candidates = V.integer(op, "num_candidates", num_candidates, minimum=1)
        if self.num_candidates < self.num_negatives:
            raise ValueError(f"{op}: 'num_candidates' ({self.num_candidates}) must be >= num_negatives "
                             f"({self.num_negatives})")
        self.filter_quantile = _fraction(op, "filter_quantile", filter_quantile, upper_open=True)
        self.select = V.choice(op, "select", select, SELECT)
        self.teacher_weight = V.real(op, "teacher_weight", teacher_weight, minimum=0.0)
        self.std_hops = V.integer(op, "std_hops", std_hops, minimum=1)
        self.std_ratio = _fraction(op, "std_ratio", std_ratio)
        self.std_max_candidates = V.integer(op, "std_max_candidates", std_max_candidates, minimum=1)
        self.meta_size = V.integer(op, "meta_size", meta_size, minimum=2)
        self.mc_passes = V.integer(op, "mc_passes", mc_passes, minimum=2)
        self.mc_dropout = _fraction(op, "mc_dropout", mc_dropout, upper_open=True)
        self.edge_drop = _fraction(op, "edge_drop", edge_drop, upper_open=True)
        self.inner_lr = V.positive_float(op, "inner_lr", inner_lr)
        self.meta_lr = V.positive_float(op, "meta_lr", meta_lr)
        self.meta_hidden = V.integer(op, "meta_hidden", meta_hidden, minimum=1)
        self.meta_every = V.integer(op, "meta_every", meta_every, minimum=1)
        self.meta_params = V.choice(op, "meta_params", meta_params, ("all", "head"))
        self.teacher_epochs = V.integer(op, "teacher_epochs", teacher_epochs, minimum=0)
        self.teacher_lr = None if teacher_lr is None else V.positive_float(op, "teacher_lr", teacher_lr)
        if teacher_path is not None and not isinstance(teacher_path, str):
            raise TypeError(f"{op}: 'teacher_path' must be a path or None (got {V.describe(teacher_path)})")
        self.teacher_path = teacher_path
        if teacher_model is not None and not isinstance(teacher_model, str):
            raise TypeError(f"{op}: 'teacher_model' must be a model name or None (got {V.describe(teacher_model)})")
        self.teacher_model = teacher_model
        self._edges = edges
        self._std = None
        self.teacher = None
        self.set_teacher(teacher)
        self._last = None  # (ids, teacher logits) of the latest sample() call
        self.reweighter = MetaReweighter(self.meta_hidden, inner_lr=self.inner_lr, meta_lr=self.meta_lr)

    def state_dict(self):
        return {"step": self.step, "meta": self.reweighter.state_dict()}

    def load_state_dict(self, state):
        self.step = int(state["step"])
        self.reweighter.load_state_dict(state["meta"])

    # ------------------------------------------------------------------ teacher
    def set_teacher(self, teacher) -> None:
        """Attach the (trained, frozen) teacher: a scorer with ``score_candidates``; None detaches it."""
        if teacher is not None and not hasattr(teacher, "score_candidates"):
            raise TypeError(f"{self._op}: 'teacher' must be a scorer with score_candidates(anchor, ids, side) "
                            f"(got {V.describe(teacher)})")
        self.teacher = teacher

    def teacher_scores(self, negatives: Negatives) -> torch.Tensor:
        """The teacher's logits [B, n] of the negatives the latest :meth:`sample` call returned."""
        if self._last is None or self._last[0] is not negatives.ids:
            raise ValueError(f"{self._op}: teacher_scores takes the Negatives of the latest sample() call")
        return self._last[1]

    def teacher_negatives(self, positives, n: int, *, generator=None) -> Negatives:
        """STD-Generator: ``n`` negatives per positive for the teacher's training; each slot is a k-hop structural
        negative with probability ``std_ratio`` (drawn per slot, so the ratio holds for any n), else a filtered
        uniform one."""
        if self._std is None or self._std[0].num_negatives != n:
            edges = self._edges
            if edges is None and self.known is not None and self.known.kind == "edges":
                t = self.known.triples()
                edges = torch.stack([t[:, 0], t[:, 2]], 1)
            common = dict(num_negatives=n, known=self.known, num_entities=self.num_entities,
                          num_relations=self.num_relations, side=self.side)
            self._std = (create("khop", hops=self.std_hops, max_candidates=self.std_max_candidates, edges=edges,
                                **common), create("uniform", **common))
        khop, uni = (s.sample(positives, generator=generator) for s in self._std)
        P = uni.ids.shape[0]
        pick = uniform((P, n), generator, uni.ids.device) < self.std_ratio
        side = None
        if khop.side is not None or uni.side is not None:
            side = torch.where(pick, khop.side_matrix(positives), uni.side_matrix(positives))
        return Negatives(torch.where(pick, khop.ids, uni.ids), torch.where(pick, khop.valid, uni.valid), None, side)

    # ------------------------------------------------------------------ sampling
    def _sample(self, P, scorer, generator):
        teacher = self.teacher if self.teacher is not None else scorer
        n, M = self.num_negatives, self.num_candidates
        ids, valid = self._alloc(P)
        tsc = torch.zeros(P.shape[0], n, device=P.device)
        row_side = self._row_sides(P, generator)
        E = self._entities(scorer)
        keep_n = min(M, max(n, int(math.ceil((1.0 - self.filter_quantile) * M))))
        for side, col, rows in side_groups(P, row_side):
            neg, ok = corrupt(P[rows], M, E, side=side, known=self.known, num_relations=self.num_relations,
                              generator=generator)
            cand = from_corrupt(P[rows], neg, ok, side)
            anchor, _ = anchors(P[rows], side)
            t = teacher.score_candidates(anchor, cand.ids.clamp_min(0), side).detach().float()
            t = torch.where(cand.valid, t, torch.full_like(t, float("-inf")))
            kept = t.topk(keep_n, dim=1).indices  # the teacher drops the easiest candidates
            k_ids, k_valid, k_t = cand.ids.gather(1, kept), cand.valid.gather(1, kept), t.gather(1, kept)
            if self.select in ("student", "joint"):
                s = scorer.score_candidates(anchor, k_ids.clamp_min(0), side).detach().float()
                if self.select == "joint":
                    s = s + self.teacher_weight * k_t
                key = torch.where(k_valid, s, torch.full_like(s, float("-inf")))
            elif self.select == "teacher":
                key = k_t
            else:
                key = torch.where(k_valid, uniform(k_t.shape, generator, P.device),
                                  torch.full(k_t.shape, -1.0, dtype=torch.float64, device=P.device))
            top = key.topk(n, dim=1).indices.sort(dim=1).values
            ids[rows] = k_ids.gather(1, top)
            valid[rows] = k_valid.gather(1, top)
            tsc[rows] = torch.where(valid[rows], k_t.gather(1, top), torch.zeros_like(tsc[rows]))
        ids = torch.where(valid, ids, torch.full_like(ids, -1))
        self._last = (ids, tsc)
        return Negatives(ids, valid, None, row_side)


class MetaReweighter:
    """The meta-weight net of MeBNS part 3 and its bi-level step.

    ``net``: features [..., 2] (per-negative student loss, teacher logit) -> weight in (0, 1) (Linear-ReLU-Linear-
    sigmoid; the last layer starts at zero, so training starts unweighted). :meth:`step` takes the student, the
    batch's per-negative losses (attached to the student's parameters) and a closure ``meta_loss(params)`` that
    evaluates the meta-set loss with substituted parameters (``torch.func.functional_call``). The net is
    initialised from a fixed seed (it never draws from the global RNG).
    """

    def __init__(self, hidden: int = 16, *, inner_lr: float = 0.1, meta_lr: float = 1e-3):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            self.net = nn.Sequential(nn.Linear(2, hidden), nn.ReLU(), nn.Linear(hidden, 1))
        nn.init.zeros_(self.net[2].weight)
        nn.init.zeros_(self.net[2].bias)
        self.inner_lr = float(inner_lr)
        self.meta_lr = float(meta_lr)
        self.opt = torch.optim.Adam(self.net.parameters(), lr=meta_lr)

    def to(self, device) -> "MetaReweighter":
        self.net.to(device)
        return self

    def weights(self, features: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """Weights [B, n] normalised to mean 1 over the valid entries (0 elsewhere); differentiable in the net."""
        w = torch.sigmoid(self.net(features.float()).squeeze(-1))
        w = torch.where(valid, w, torch.zeros_like(w))
        return w / (w.sum() / valid.sum().clamp_min(1)).clamp_min(1e-12)

    @staticmethod
    def features(terms: torch.Tensor, teacher_logits: torch.Tensor) -> torch.Tensor:
        """[B, n, 2]: each negative's current loss under the student (detached) and the teacher's logit."""
        return torch.stack([terms.detach().float(), teacher_logits.detach().float().to(terms.device)], -1)

    def step(self, model: nn.Module, terms: torch.Tensor, meta_loss, teacher_logits: torch.Tensor,
             valid: torch.Tensor, names: list[str] | None = None) -> torch.Tensor:
        """One bi-level update of the weight net; returns the batch's weights [B, n] from the updated net
        (detached). ``terms`` [B, n]: the batch's per-negative losses, attached to ``model``'s parameters;
        ``meta_loss(params)``: the meta-set loss of the model evaluated with the parameters ``params``
        (``torch.func.functional_call``); ``names``: the parameters that take the virtual step (default all)."""
        params = {k: p for k, p in model.named_parameters() if p.requires_grad and (names is None or k in names)}
        feats = self.features(terms, teacher_logits)
        w = self.weights(feats, valid)
        inner = (w * torch.where(valid, terms, torch.zeros_like(terms))).sum() / valid.sum().clamp_min(1)
        names = list(params)
        grads = torch.autograd.grad(inner, [params[k] for k in names], create_graph=True, allow_unused=True)
        virtual = {k: params[k] if g is None else params[k] - self.inner_lr * g for k, g in zip(names, grads)}
        outer = meta_loss(virtual)
        gw = torch.autograd.grad(outer, list(self.net.parameters()), allow_unused=True)
        for p, g in zip(self.net.parameters(), gw):
            p.grad = None if g is None else g.detach()
        self.opt.step()
        with torch.no_grad():
            return self.weights(feats, valid)

    def state_dict(self) -> dict:
        return {"net": self.net.state_dict(), "opt": self.opt.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.net.load_state_dict(state["net"])
        self.opt.load_state_dict(state["opt"])


def collect_meta_set(stochastic_probs, pairs: torch.Tensor, labels: torch.Tensor, size: int, passes: int):
    """UMD-Collector: the ``size`` pairs (half of label 1, half of label 0) with the lowest uncertainty.

    ``stochastic_probs(i) -> [P]`` is pass i's predicted probability of every pair (MC dropout over an augmented
    graph). Uncertainty is the standard deviation over the ``passes``; pairs the mean misclassifies (on the wrong
    side of 0.5) come after every correctly classified one. Returns (pairs [S, 2], labels [S] float, stats dict).
    """
    probs = torch.stack([stochastic_probs(i).detach().float().cpu() for i in range(passes)])
    mean, std = probs.mean(0), probs.std(0)
    y = labels.float().cpu()
    wrong = (mean >= 0.5) != (y > 0.5)
    key = std + wrong.float() * 10.0  # correct and certain first
    chosen = []
    for lab, want in ((1.0, size // 2), (0.0, size - size // 2)):
        idx = (y == lab).nonzero().flatten()
        chosen.append(idx[key[idx].argsort()[:want]])
    sel = torch.cat(chosen)
    stats = {"meta_size": int(sel.numel()), "mean_std": float(std[sel].mean()) if sel.numel() else float("nan"),
             "pool_mean_std": float(std.mean()), "misclassified_in_meta": int(wrong[sel].sum())}
    return pairs[sel.to(pairs.device)], y[sel].to(pairs.device), stats


def _fraction(op, name, v, upper_open=False) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise TypeError(f"{op}: '{name}' must be a number (got {V.describe(v)})")
    v = float(v)
    if not (0.0 <= v < 1.0 if upper_open else 0.0 <= v <= 1.0):
        raise ValueError(f"{op}: '{name}' must be in [0, 1{')' if upper_open else ']'} (got {v!r})")
    return v
