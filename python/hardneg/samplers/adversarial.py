"""Generator-based samplers that learn from the model being trained: DANS and KBGAN.

Both are *trainable* samplers (:attr:`hardneg.samplers.Sampler.trainable`): a training loop calls
``sample`` → the model's optimiser step → ``update(positives, negatives, scorer=model, generator=g)`` for
every batch, and ``on_epoch_start(epoch)`` before each epoch (the KG task and the PyKEEN adapter's
``HardNegativeTrainingLoop`` do). Their own networks and optimisers live in the sampler and in its
``state_dict()``, so a checkpoint resumes them exactly. Both can pretrain the base model with filtered
uniform negatives for ``pretrain_epochs`` epochs first.

Shapes: ``B`` positives, ``n`` negatives per positive, ``E`` entities, ``d`` the model's entity width.

>>> import torch, hardneg
>>> from hardneg import samplers
>>> train = torch.tensor([[0, 0, 1], [1, 0, 2], [2, 1, 0], [3, 1, 4]])
>>> known = hardneg.KnownSet.from_triples(train, 6, 2)
>>> scorer = samplers.DistMultScorer(torch.randn(6, 8), torch.randn(2, 8))
>>> s = samplers.create("dans", num_negatives=4, known=known)
>>> g = torch.Generator().manual_seed(0)
>>> neg = s.sample(train, scorer=scorer, generator=g)
>>> neg.ids.shape
torch.Size([4, 4])
>>> stats = s.update(train, neg, scorer=scorer, generator=g)
>>> sorted(stats)
['disc_loss', 'gen_loss']
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .. import _validate as V
from .._constants import METRICS
from .._random import normal
from ..ops import corrupt, sample_by_score, sample_from_weights, topk_mine
from ..metrics import anchors, score_matrix
from .base import Negatives, Sampler, exclusion_with_self, register, side_groups, uniform_pool_draw
from .basic import UniformSampler, from_corrupt
from .scorers import ComplExScorer, DistMultScorer

MODES = ("entity", "embedding")
PRETRAIN_LOSSES = ("softmax", "logistic")  # KBGAN's generator pretraining
PATHWAYS = ("entity", "relation")


def _init_seed(generator) -> int:
    """A seed for initialising networks, from the sampling generator's *initial* seed: it draws nothing from
    the stream (so a pretraining sampler's uniform draws equal a uniform sampler's), yet seeded runs agree."""
    base = generator.initial_seed() if generator is not None else torch.initial_seed()
    return (base * 6364136223846793005 + 1442695040888963407) % 2**63


def _copy(state):
    """A detached CPU copy of a (nested) state dict: later training steps never change a returned state."""
    if isinstance(state, torch.Tensor):
        return state.detach().cpu().clone()
    if isinstance(state, dict):
        return {k: _copy(v) for k, v in state.items()}
    if isinstance(state, (list, tuple)):
        return type(state)(_copy(v) for v in state)
    return state


def _step(opt, loss) -> float:
    """One optimiser step on ``loss``; returns its value. Gradients land only on ``opt``'s parameters'
    ``.grad`` (others touched by the backward pass are cleared by their own optimiser's zero_grad)."""
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return float(loss.detach())


def _relation_table(op: str, scorer) -> torch.Tensor:
    """The scorer's relation table [R, d_r] (a hardneg KG model or a hardneg KG scorer)."""
    rel = getattr(scorer, "relation", None)
    if isinstance(rel, nn.Embedding):
        return rel.weight
    rel = getattr(scorer, "relation_weight", None)
    if isinstance(rel, torch.Tensor):
        return rel
    raise TypeError(f"{op}: the relation pathway and its FiLM need the model's relation embeddings: 'scorer' must "
                    f"be a hardneg KG model (.relation) or KG scorer (.relation_weight) (got {type(scorer).__name__})")


class _TrainableSampler(Sampler):
    """Shared by DANS and KBGAN: pretraining epochs, the filtered uniform fallback and the hand-over of the last
    ``sample`` call to ``update``."""

    trainable = True
    requires_scorer = True
    triples_only = True
    #: what the model is needed for, in the error raised without one
    _needs = "the model being trained"

    def __init__(self, *, pretrain_epochs: int = 0, backend=None, **kw):
        super().__init__(**kw)
        self.pretrain_epochs = V.integer(self._op, "pretrain_epochs", pretrain_epochs, minimum=0)
        self.backend = backend
        self.epoch = 0
        self._uniform = UniformSampler(num_negatives=self.num_negatives, known=self.known,
                                       num_entities=self.num_entities, num_relations=self.num_relations,
                                       side=self.side)
        self._last = None  # what update() needs from the last sample() call

    @property
    def pretraining(self) -> bool:
        """True while the base model is pretrained with uniform negatives (epochs 1 .. ``pretrain_epochs``;
        the epoch comes from :meth:`on_epoch_start`)."""
        return self.pretrain_epochs > 0 and self.epoch <= self.pretrain_epochs

    def on_epoch_start(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def _check_scorer(self, scorer, P):
        if scorer is None:
            raise ValueError(f"{self._op}: this sampler needs {self._needs}: sample(positives, scorer=model) with a "
                             f"hardneg KG model (or a KG scorer such as hardneg.samplers.DistMultScorer)")
        super()._check_scorer(scorer, P)

    def _take_last(self, negatives):
        last, self._last = self._last, None
        if last is not None and last["negatives"] is not negatives:
            raise ValueError(f"{self._op}: update() takes the positives and negatives of this sampler's last sample() "
                             f"call (got other negatives)")
        return last

    def state_dict(self) -> dict:
        return {"step": self.step, "epoch": self.epoch}

    def load_state_dict(self, state: dict) -> None:
        self.step = int(state["step"])
        self.epoch = int(state.get("epoch", 0))


# --------------------------------------------------------------------------------------------------- DANS
class _FiLMGenerator(nn.Module):
    """A generator pathway: a 3-layer MLP (BatchNorm, LeakyReLU(0.2), tanh output) whose two hidden layers are
    modulated by FiLM, h ← (1 + α) ⊙ h + β, with (α, β) from a 2-layer MLP of the conditioning vector (the
    head entity's embedding for G_E, the relation's for G_R). The output is tanh(·) times a learned scale."""

    def __init__(self, dim: int, cond_dim: int, hidden: int, film_hidden: int, init_scale: float):
        super().__init__()
        self.l1, self.bn1 = nn.Linear(dim, hidden), nn.BatchNorm1d(hidden)
        self.l2, self.bn2 = nn.Linear(hidden, hidden), nn.BatchNorm1d(hidden)
        self.l3 = nn.Linear(hidden, dim)
        self.film = nn.Sequential(nn.Linear(cond_dim, film_hidden), nn.LeakyReLU(0.2),
                                  nn.Linear(film_hidden, 4 * hidden))
        nn.init.zeros_(self.film[2].weight)  # FiLM starts as the identity
        nn.init.zeros_(self.film[2].bias)
        self.log_scale = nn.Parameter(torch.tensor(math.log(init_scale)))

    def forward(self, z, cond):
        a1, b1, a2, b2 = self.film(cond).chunk(4, -1)
        h = F.leaky_relu(self.bn1(self.l1(z)), 0.2) * (1 + a1) + b1
        h = F.leaky_relu(self.bn2(self.l2(h)), 0.2) * (1 + a2) + b2
        return torch.tanh(self.l3(h)) * self.log_scale.exp()


class _TwoWayDiscriminator(nn.Module):
    """An MLP d → 50 → 32 (LeakyReLU) with two logit heads: adversarial (real entity vs generated) and auxiliary
    (which pathway generated it: 0 entity, 1 relation); sigmoids live in the BCE losses."""

    def __init__(self, dim: int, hidden: tuple):
        super().__init__()
        layers, w = [], dim
        for h in hidden:
            layers += [nn.Linear(w, h), nn.LeakyReLU(0.2)]
            w = h
        self.body = nn.Sequential(*layers)
        self.adv, self.aux = nn.Linear(w, 1), nn.Linear(w, 1)

    def forward(self, x):
        h = self.body(x)
        return self.adv(h).squeeze(-1), self.aux(h).squeeze(-1)


@register("dans")
class DANSSampler(_TrainableSampler):
    """DANS: diversified and adaptive negative sampling (Liu et al., arXiv 2410.07592), from the paper.

    Each positive (h, r, t) gets n negatives: ``entity_negatives`` from the entity pathway G_E,
    ``relation_negatives`` from the relation pathway G_R and the rest filtered uniform (defaults for n = 20:
    5 + 5 + 10, the paper's split; for other n, ⌈n/4⌉ + ⌊n/2⌋ − ⌈n/4⌉ generated and the rest uniform).

    * **Two-way generator.** G_E draws a fake entity embedding from noise z ~ N(e_h, (σ·rms(e_h))² I) and FiLM
      parameters (α, β) computed from e_h (per-entity adaptation); G_R from z ~ N(e_h ⊗ e_r, ...), where
      e_h ⊗ e_r is the decoder's query vector (DistMult: e_h ⊙ e_r; ComplEx / RotatE: the complex product),
      with FiLM from e_r (per-relation adaptation). Each is a 3-layer MLP (BatchNorm, LeakyReLU(0.2), tanh),
      ``hidden`` units, FiLM from 2-layer MLPs of ``film_hidden`` units (:class:`_FiLMGenerator`). σ is
      ``sigma`` in units of the conditioning vector's root-mean-square, so it does not depend on the
      embedding scale. For head corruption (no reciprocal relations) the same pathways are conditioned on the
      tail and the decoder's head query.
    * **Two-way discriminator** (:class:`_TwoWayDiscriminator`, d → ``disc_hidden`` = 50 → 32): an adversarial
      head (the true tails' embeddings are real, generated ones fake) and an auxiliary head (which pathway
      generated it), both sigmoid / binary cross-entropy, ACGAN-style: the discriminator minimises both, the
      generator the non-saturating adversarial loss plus the auxiliary one (``aux_weight``).
    * **Negatives.** ``mode="entity"`` (default): each generated embedding is mapped to a real entity: the
      ``match_k`` nearest entities by the decoder's metric (``match_metric`` overrides it), found with
      :func:`hardneg.ops.topk_mine` over the whole entity table excluding the anchor's known answers (the
      ``known`` CSR via ``KnownSet.exclusion``) and the true entity, one of them drawn uniformly. So a
      negative is never a known triple. ``match_k`` > 1 keeps the negatives diverse when the generators
      narrow onto a few embeddings: on UMLS (135 entities) validation MRR rose from 0.876 (``match_k=1``, the
      nearest entity) to 0.911 (10) and 0.920 (30); the ``umls-dans`` recipe uses 30 (bench/RESULTS.md), and
      1 + 1 generated negatives of 20, also chosen on validation (the paper's 5 + 5 scored lowest there).
      ``mode="embedding"``: the generated embeddings are the negatives themselves (``Negatives.vectors``,
      ids −1; the models' ``forward_scores`` score them), as the released code does.
    * **Training.** Per base-model step (the loop calls :meth:`update` after the model's optimiser step):
      ``disc_steps`` discriminator steps on the true tails vs. the fakes this batch was given, then
      ``gen_steps`` generator steps on freshly drawn fakes (default 1:1:1 for discriminator : generator : base
      model — the paper alternates the three per batch; its exact ratio is not in our summary of it). Own Adam
      optimisers (``gen_lr``, ``disc_lr``, β = (0.5, 0.999)), in ``state_dict()`` with both networks.
      ``pretrain_epochs``: uniform negatives for the base model during the first epochs (the GAN trains
      meanwhile, so its negatives are not random when they switch on).

    The networks are built on the first call, sized from the model (``dim`` = its entity width; give ``dim``
    to check it up front), with their initial weights drawn from the sampler's ``generator`` (global RNG
    untouched). Pair it with an R-GCN encoder (``encoder: rgcn``) and DistMult, as the paper does (recipes
    ``umls-dans``, ``wn18rr-dans``, ``nell-995-dans``).

    Where the released code differs (we follow the paper): it uses the continuous fake embeddings as the
    negatives (our ``mode="embedding"``), overwrites the G_E outputs with G_R's before the loss (so only the
    relation pathway reaches the model), and hard-codes NELL-995's sizes.

    Raises (besides the common sampler errors):
        ValueError: ``sample`` without a scorer (the model is needed); ``dim`` that is not the model's entity
            width (generator output / discriminator input vs. the model); a pathway split larger than n; an
            unknown ``mode``.
        TypeError: a scorer without a relation table (the relation pathway's FiLM needs it).
    """

    _needs = "the model being trained (its entity and relation embeddings condition the generators)"

    def __init__(self, *, mode: str = "entity", entity_negatives: int | None = None,
                 relation_negatives: int | None = None, sigma: float = 1.0, hidden: int = 256, film_hidden: int = 64,
                 disc_hidden: tuple = (50, 32), gen_lr: float = 1e-3, disc_lr: float = 1e-3, gen_steps: int = 1,
                 disc_steps: int = 1, aux_weight: float = 1.0, match_metric: str | None = None, match_k: int = 1,
                 dim: int | None = None, **kw):
        super().__init__(**kw)
        op, n = self._op, self.num_negatives
        self.mode = V.choice(op, "mode", mode, MODES)
        gen = int(math.floor(n / 2 + 0.5))
        nE = (gen + 1) // 2 if entity_negatives is None else V.integer(op, "entity_negatives", entity_negatives,
                                                                        minimum=0)
        nR = gen - (gen + 1) // 2 if relation_negatives is None else V.integer(op, "relation_negatives",
                                                                               relation_negatives, minimum=0)
        if nE + nR > n:
            raise ValueError(f"{op}: 'entity_negatives' + 'relation_negatives' ({nE} + {nR}) must be <= "
                             f"num_negatives ({n}); the rest are uniform")
        self.entity_negatives, self.relation_negatives = nE, nR
        self.sigma = V.positive_float(op, "sigma", sigma)
        self.hidden = V.integer(op, "hidden", hidden, minimum=1)
        self.film_hidden = V.integer(op, "film_hidden", film_hidden, minimum=1)
        self.disc_hidden = tuple(V.integer(op, "disc_hidden", h, minimum=1) for h in disc_hidden)
        self.gen_lr = V.positive_float(op, "gen_lr", gen_lr)
        self.disc_lr = V.positive_float(op, "disc_lr", disc_lr)
        self.gen_steps = V.integer(op, "gen_steps", gen_steps, minimum=0)
        self.disc_steps = V.integer(op, "disc_steps", disc_steps, minimum=0)
        self.aux_weight = V.real(op, "aux_weight", aux_weight, minimum=0.0)
        self.match_metric = None if match_metric is None else V.choice(op, "match_metric", match_metric, METRICS)
        self.match_k = V.integer(op, "match_k", match_k, minimum=1)
        self.dim = None if dim is None else V.integer(op, "dim", dim, minimum=1)
        self.nets: nn.ModuleDict | None = None
        self.opt_gen = self.opt_disc = None
        self._pending_state = None

    def __repr__(self):
        return (f"DANSSampler(num_negatives={self.num_negatives}, mode={self.mode!r}, "
                f"split={self.entity_negatives}+{self.relation_negatives}+uniform, side={self.side!r})")

    # ------------------------------------------------------------------ networks
    def _build(self, d: int, d_rel: int, init_scale: float, device, seed: int) -> None:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.nets = nn.ModuleDict({
                "gen_entity": _FiLMGenerator(d, d, self.hidden, self.film_hidden, init_scale),
                "gen_relation": _FiLMGenerator(d, d_rel, self.hidden, self.film_hidden, init_scale),
                "disc": _TwoWayDiscriminator(d, self.disc_hidden)}).to(device)
        gen_params = [*self.nets["gen_entity"].parameters(), *self.nets["gen_relation"].parameters()]
        self.opt_gen = torch.optim.Adam(gen_params, lr=self.gen_lr, betas=(0.5, 0.999))
        self.opt_disc = torch.optim.Adam(self.nets["disc"].parameters(), lr=self.disc_lr, betas=(0.5, 0.999))
        self._dims = (d, d_rel, init_scale)

    def _ensure(self, scorer, generator):
        C = scorer.candidate_vectors("tail")
        rel = _relation_table(self._op, scorer)
        d, d_rel = C.shape[1], rel.shape[1]
        want = self.dim if self.dim is not None else (self._dims[0] if self.nets is not None else d)
        if want != d:
            raise ValueError(f"{self._op}: the generators' output and the discriminator's input are {want}-dimensional "
                             f"('dim') but the model's entity vectors are {d}-dimensional; they must match")
        if self.nets is None:
            if self._pending_state is not None:
                self._load_nets(self._pending_state, C.device)
            else:
                rms = float(C.detach().float().pow(2).mean().sqrt()) if C.numel() else 1.0
                self._build(d, d_rel, max(3.0 * rms, 1e-3), C.device, _init_seed(generator))
        if self._dims[1] != d_rel:
            raise ValueError(f"{self._op}: the relation pathway's FiLM takes {self._dims[1]}-dimensional relation "
                             f"vectors but the model's are {d_rel}-dimensional")

    def _group(self, scorer, tables, P, rows, side):
        """The conditions of one side's rows, detached: entity e [b, d], relation-pathway mean q [b, d] (the
        decoder's query), relation vector [b, d_r], and the true entities' vectors (the discriminator's reals)."""
        if side not in tables:  # KG models encode once per call (an R-GCN forward), for both sides
            same = hasattr(scorer, "entity_vectors") and tables
            tables[side] = next(iter(tables.values())) if same else scorer.candidate_vectors(side).detach()
        C = tables[side]
        anchor, target = anchors(P[rows], side)
        ent = anchor[:, 0] if side == "tail" else anchor[:, 1]
        rid = anchor[:, 1] if side == "tail" else anchor[:, 0]
        if hasattr(scorer, "entity_vectors"):
            q = scorer.query_vectors(anchor, side, entity_vectors=C)
        else:
            q = scorer.query_vectors(anchor, side)
        V.finite(self._op, "scorer.query_vectors(...)", q)
        rel = _relation_table(self._op, scorer).detach()[rid].to(C.dtype)
        return {"side": side, "rows": rows, "anchor": anchor, "target": target, "C": C, "e": C[ent],
                "q": q.detach().to(C.dtype), "rel": rel, "real": C[target]}

    def _generate(self, net, mean, cond, k, generator):
        """k fakes per row [b·k, d] from z ~ N(mean, (σ·rms(mean))²), conditioned (FiLM) on ``cond``."""
        b, d = mean.shape
        if k == 0 or b == 0:
            return mean.new_zeros(0, d)
        eps = normal((b, k, d), generator, mean.device, mean.dtype)
        rms = mean.pow(2).mean(-1, keepdim=True).sqrt().clamp_min(1e-12)
        z = (mean[:, None, :] + self.sigma * rms[:, None, :] * eps).reshape(b * k, d)
        c = cond[:, None, :].expand(b, k, cond.shape[1]).reshape(b * k, -1)
        was = net.training
        net.train(b * k > 1)  # BatchNorm needs two rows for batch statistics
        try:
            return net(z, c)
        finally:
            net.train(was)

    def _fakes(self, g, generator):
        """(G_E fakes [b·nE, d], G_R fakes [b·nR, d]) for one side group."""
        return (self._generate(self.nets["gen_entity"], g["e"], g["e"], self.entity_negatives, generator),
                self._generate(self.nets["gen_relation"], g["q"], g["rel"], self.relation_negatives, generator))

    # ------------------------------------------------------------------ sampling
    def _sample(self, P, scorer, generator):
        self._ensure(scorer, generator)
        if self.pretraining:
            out = self._uniform._sample(P, scorer, generator)
            tables = {}
            groups = [self._group(scorer, tables, P, rows, side) for side, _, rows in side_groups(P, out.side)]
            self._last = {"negatives": out, "groups": groups}
            return out
        B, n, dev = P.shape[0], self.num_negatives, P.device
        nE, nR = self.entity_negatives, self.relation_negatives
        k, nU = nE + nR, n - nE - nR
        E = self._entities(scorer)
        ids = torch.full((B, n), -1, dtype=torch.int64, device=dev)
        valid = torch.zeros(B, n, dtype=torch.bool, device=dev)
        vectors = None
        row_side = self._row_sides(P, generator)
        tables, groups = {}, []
        for side, col, rows in side_groups(P, row_side):
            g = self._group(scorer, tables, P, rows, side)
            groups.append(g)
            b, C = rows.numel(), g["C"]
            with torch.enable_grad():  # kept with its graph: the generator step after the model's step reuses it
                g["fakes"] = self._fakes(g, generator)
            d = C.shape[1]
            gen = torch.cat([g["fakes"][0].reshape(b, nE, d), g["fakes"][1].reshape(b, nR, d)], 1).detach()
            if k and self.mode == "entity":
                ex = exclusion_with_self(self.known, g["anchor"].repeat_interleave(k, 0),
                                         g["target"].repeat_interleave(k), side)
                _, pool = topk_mine(gen.reshape(b * k, -1).contiguous(), C.contiguous(), self.match_k,
                                    metric=self.match_metric or scorer.metric, exclude=ex, backend=self.backend)
                pick, ok = uniform_pool_draw(pool, 1, generator)
                ids[rows, :k], valid[rows, :k] = pick.reshape(b, k), ok.reshape(b, k)
            elif k:
                if vectors is None:
                    vectors = torch.zeros(B, n, C.shape[1], dtype=C.dtype, device=dev)
                vectors[rows, :k] = gen.to(dev)
                valid[rows, :k] = True
            if nU:
                neg, ok = corrupt(P[rows], nU, E, side=side, known=self.known, num_relations=self.num_relations,
                                  generator=generator)
                uni = from_corrupt(P[rows], neg, ok, side)
                ids[rows, k:], valid[rows, k:] = uni.ids, uni.valid
        out = Negatives(ids, valid, None, row_side, vectors)
        self._last = {"negatives": out, "groups": groups}
        return out

    # ------------------------------------------------------------------ training
    def update(self, positives, negatives, *, scorer=None, generator=None):
        last = self._take_last(negatives)
        if last is None or self.nets is None or self.entity_negatives + self.relation_negatives == 0:
            return None
        groups, nets = last["groups"], self.nets

        def batch(fakes):
            fE = torch.cat([f[0] for f in fakes])
            fR = torch.cat([f[1] for f in fakes])
            return torch.cat([fE, fR]), torch.cat([fE.new_zeros(fE.shape[0]), fR.new_ones(fR.shape[0])])

        stats = {}
        if groups and groups[0].get("fakes") is None:  # pretraining: the batch had no generated negatives
            for g in groups:
                g["fakes"] = self._fakes(g, generator)
        given, label = batch([g["fakes"] for g in groups])  # with the generator's graph
        real = torch.cat([g["real"] for g in groups])
        for _ in range(self.disc_steps):
            stats["disc_loss"] = _step(self.opt_disc, self._gan_loss(given.detach(), label, real))
        for i in range(self.gen_steps):  # the first step reuses the fakes the model was given (one generation)
            fake = given if i == 0 else batch([self._fakes(g, generator) for g in groups])[0]
            stats["gen_loss"] = _step(self.opt_gen, self._gan_loss(fake, label))
        nets["disc"].zero_grad(set_to_none=True)
        return stats

    def _gan_loss(self, fake, label, real=None):
        """The discriminator's loss when ``real`` is given (reals → 1, fakes → 0), else the generator's
        non-saturating one (fakes → 1); plus ``aux_weight`` × the pathway classification loss of the fakes."""
        bce = F.binary_cross_entropy_with_logits
        adv_f, aux_f = self.nets["disc"](fake)
        if real is None:
            loss = bce(adv_f, torch.ones_like(adv_f))
        else:
            adv_r, _ = self.nets["disc"](real)
            loss = bce(adv_r, torch.ones_like(adv_r)) + bce(adv_f, torch.zeros_like(adv_f))
        if self.aux_weight:
            loss = loss + self.aux_weight * bce(aux_f, label)
        return loss

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict:
        d = super().state_dict()
        if self.nets is not None:
            d["dans"] = {"dims": self._dims, "nets": _copy(self.nets.state_dict()),
                         "opt_gen": _copy(self.opt_gen.state_dict()), "opt_disc": _copy(self.opt_disc.state_dict())}
        elif self._pending_state is not None:
            d["dans"] = self._pending_state
        return d

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self._pending_state = state.get("dans")
        self.nets = None
        if self._pending_state is not None:
            self._load_nets(self._pending_state, torch.device("cpu"))

    def _load_nets(self, st, device):
        d, d_rel, scale = st["dims"]
        self._build(d, d_rel, scale, device, 0)
        self.nets.load_state_dict(st["nets"])
        self.nets.to(device)
        self.opt_gen.load_state_dict(st["opt_gen"])
        self.opt_disc.load_state_dict(st["opt_disc"])
        self._pending_state = None


# --------------------------------------------------------------------------------------------------- KBGAN
class KGEGenerator(nn.Module):
    """KBGAN's generator: a DistMult or ComplEx embedding model whose scorer (:meth:`scorer`) is differentiable
    in its own tables (entities [E, w], relations [R, w]; ComplEx: w = 2·dim, [Re | Im])."""

    KINDS = ("distmult", "complex")

    def __init__(self, kind: str, num_entities: int, num_relations: int, dim: int):
        super().__init__()
        self.kind = V.choice("KGEGenerator", "kind", kind, self.KINDS)
        w = dim if self.kind == "distmult" else 2 * dim
        self.entity, self.relation = nn.Embedding(num_entities, w), nn.Embedding(num_relations, w)
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self, generator: torch.Generator | None = None):
        """N(0, 1/w) entries, drawn from ``generator`` (default: the global RNG)."""
        for t in (self.entity.weight, self.relation.weight):
            t.copy_(torch.randn(t.shape, generator=generator) / math.sqrt(t.shape[1]))

    def scorer(self):
        cls = DistMultScorer if self.kind == "distmult" else ComplExScorer
        return cls(self.entity.weight, self.relation.weight)


@register("kbgan")
class KBGANSampler(_TrainableSampler):
    """KBGAN (Cai & Wang, NAACL 2018): a generator KGE model proposes the negatives, trained by REINFORCE on the
    discriminator's (the base model's) score of what it proposed.

    For each positive, a candidate set of ``candidates`` (N_s, default 20) filtered-uniform corruptions of the
    head or tail (never a known triple, :func:`hardneg.ops.corrupt`) is scored by the generator
    (``generator_model``: ``"distmult"`` or ``"complex"`` of ``generator_dim``, or your own ``nn.Module``
    implementing the scorer protocol), and n negatives (KBGAN: one) are drawn with replacement
    ∝ softmax(score / ``temperature``) over that set. ``log_prob`` holds each draw's exact log-probability.

    :func:`hardneg.ops.sample_by_score` draws from one candidate table shared by the whole batch; KBGAN's
    candidate set differs per positive, so with ``candidates`` = N_s the generator scores the [B, N_s] rows
    directly (N_s·d work per positive, no B×E) and the draw is the same exact softmax draw through
    :func:`hardneg.ops.sample_from_weights`. ``candidates=None`` lets the generator sample over *all*
    admissible entities with :func:`hardneg.ops.sample_by_score` (fused, filtered: KBGAN's N_s → E limit).

    :meth:`update` (after the base model's step; the base model is the discriminator, e.g. TransE with the
    margin loss): reward = the discriminator's score of each sampled negative (higher = more plausible),
    baseline = an exponential moving average of the mean reward (``baseline_decay``), generator loss
    −mean((reward − baseline) · log p_G(negative)), one Adam step (``gen_lr``, L2 weight decay
    ``gen_weight_decay``: the released code's λ / n_batch = 0.1 / 100 for its DistMult generator). With
    ``pretrain_epochs``, the base model first trains on uniform negatives and, if ``pretrain_generator``, the
    generator trains as a plain KGE model meanwhile, as the paper pretrains both. ``pretrain_loss="softmax"``
    (default) pretrains it as the released code does, and for the task it will do: each positive against its
    own candidate set (``candidates`` filtered-uniform corruptions, drawn from a stream of their own so the
    base model's uniform negatives stay those of a uniform run; with ``candidates=None``, against every
    admissible entity), cross-entropy on the positive. ``"logistic"`` trains it on the base model's uniform
    negatives instead (softplus loss).

    Raises (besides the common sampler errors):
        ValueError: ``sample`` or ``update`` without the model; a generator model whose entity count differs
            from the discriminator's (the scorer's) or ``num_entities``; ``candidates`` < 1.
        TypeError: a ``generator_model`` that is neither a kind name nor an ``nn.Module`` scorer.
    """

    _needs = "the model being trained (the discriminator whose score rewards the generator)"

    def __init__(self, *, generator_model="distmult", generator_dim: int = 50, candidates: int | None = 20,
                 temperature: float = 1.0, gen_lr: float = 1e-3, gen_weight_decay: float = 1e-3,
                 baseline_decay: float = 0.99, pretrain_generator: bool = True, pretrain_loss: str = "softmax",
                 **kw):
        super().__init__(**kw)
        op = self._op
        self.candidates = None if candidates is None else V.integer(op, "candidates", candidates, minimum=1)
        self.temperature = V.positive_float(op, "temperature", temperature)
        self.gen_lr = V.positive_float(op, "gen_lr", gen_lr)
        self.baseline_decay = V.real(op, "baseline_decay", baseline_decay, minimum=0.0)
        if self.baseline_decay >= 1.0:
            raise ValueError(f"{op}: 'baseline_decay' must be in [0, 1) (got {baseline_decay!r})")
        self.pretrain_generator = V.boolean(op, "pretrain_generator", pretrain_generator)
        self.pretrain_loss = V.choice(op, "pretrain_loss", pretrain_loss, PRETRAIN_LOSSES)
        self.gen_weight_decay = V.real(op, "gen_weight_decay", gen_weight_decay, minimum=0.0)
        self.generator_dim = V.integer(op, "generator_dim", generator_dim, minimum=1)
        if isinstance(generator_model, str):
            if self.num_entities is None or self.num_relations is None:
                raise ValueError(f"{op}: building the {generator_model!r} generator needs 'num_entities' and "
                                 f"'num_relations' (or known=KnownSet.from_triples(...))")
            V.choice(op, "generator_model", generator_model, KGEGenerator.KINDS)
            with torch.random.fork_rng(devices=[]):  # initialised for real from the first sample's generator
                self.gen = KGEGenerator(generator_model, self.num_entities, self.num_relations, self.generator_dim)
            self._fresh = True
        elif isinstance(generator_model, nn.Module) and all(
                hasattr(generator_model, a) for a in ("query_vectors", "candidate_vectors", "metric")):
            self.gen, self._fresh = generator_model, False
            n_gen = generator_model.candidate_vectors("tail").shape[0]
            if self.num_entities is not None and n_gen != self.num_entities:
                raise ValueError(f"{op}: the generator model scores {n_gen} entities but num_entities is "
                                 f"{self.num_entities}")
        else:
            raise TypeError(f"{op}: 'generator_model' must be 'distmult', 'complex' or an nn.Module implementing "
                            f"query_vectors / candidate_vectors / metric (got {V.describe(generator_model)})")
        self.opt = torch.optim.Adam(self.gen.parameters(), lr=self.gen_lr, weight_decay=self.gen_weight_decay)
        self.baseline: float | None = None

    def __repr__(self):
        return (f"KBGANSampler(num_negatives={self.num_negatives}, candidates={self.candidates}, "
                f"generator={type(self.gen).__name__}, side={self.side!r})")

    def _gen_scorer(self):
        return self.gen.scorer() if isinstance(self.gen, KGEGenerator) else self.gen

    def _check_scorer(self, scorer, P):
        super()._check_scorer(scorer, P)
        n_dis = scorer.candidate_vectors("tail").shape[0]
        n_gen = self._gen_scorer().candidate_vectors("tail").shape[0]
        if n_gen != n_dis:
            raise ValueError(f"{self._op}: the generator scores {n_gen} entities but the discriminator (the model) "
                             f"scores {n_dis}; they must cover the same entities")

    # ------------------------------------------------------------------ sampling
    def _sample(self, P, scorer, generator):
        if self._fresh:  # the generator's initial weights come from the sampling generator (seeded runs agree)
            self.gen.reset_parameters(torch.Generator().manual_seed(_init_seed(generator)))
            self._fresh = False
        if next(self.gen.parameters()).device != P.device:
            self.gen.to(P.device)
        if self.pretraining:
            out = self._uniform._sample(P, scorer, generator)
            self._last = {"negatives": out, "pretraining": True}
            return out
        B, n, dev = P.shape[0], self.num_negatives, P.device
        E = self._entities(scorer)
        G = self._gen_scorer()
        ids = torch.full((B, n), -1, dtype=torch.int64, device=dev)
        logp = torch.full((B, n), float("-inf"), dtype=torch.float32, device=dev)
        row_side = self._row_sides(P, generator)
        groups = []
        for side, col, rows in side_groups(P, row_side):
            anchor, target = anchors(P[rows], side)
            if self.candidates is None:
                q = G.query_vectors(anchor, side).detach()
                C = G.candidate_vectors(side).detach()
                ex = exclusion_with_self(self.known, anchor, target, side)
                i, lp = sample_by_score(q.contiguous(), C.contiguous(), n, metric=G.metric,
                                        temperature=self.temperature, exclude=ex, replacement=True,
                                        generator=generator, backend=self.backend)
                groups.append({"side": side, "rows": rows, "ids": i, "exclude": ex})
            else:
                neg, ok = corrupt(P[rows], self.candidates, E, side=side, known=self.known,
                                  num_relations=self.num_relations, generator=generator)
                cand = from_corrupt(P[rows], neg, ok, side).ids  # [b, N_s], -1 where nothing is admissible
                lsm = self._candidate_log_probs(G, anchor, cand, side).detach()
                j = sample_from_weights(lsm.exp().to(torch.float64), n, replacement=True, generator=generator)
                i = torch.where(j >= 0, cand.gather(1, j.clamp_min(0)), torch.full_like(j, -1))
                lp = torch.where(j >= 0, lsm.gather(1, j.clamp_min(0)), torch.full(j.shape, float("-inf"),
                                                                                   device=dev))
                groups.append({"side": side, "rows": rows, "cand": cand, "choice": j})
            ids[rows], logp[rows] = i, lp.to(logp.dtype)
        out = Negatives(ids, ids >= 0, logp, row_side)
        self._last = {"negatives": out, "groups": groups}
        return out

    def _candidate_log_probs(self, G, anchor, cand, side):
        """log softmax(score / T) over each row's candidate set [b, N_s] (−inf at −1 padding)."""
        s = G.score_candidates(anchor, cand.clamp_min(0), side) / self.temperature
        s = torch.where(cand >= 0, s, torch.full_like(s, float("-inf")))
        lsm = torch.log_softmax(s, 1)
        return torch.where(cand >= 0, lsm, torch.full_like(lsm, float("-inf")))

    # ------------------------------------------------------------------ training
    def update(self, positives, negatives, *, scorer=None, generator=None):
        last = self._take_last(negatives)
        if last is None:
            return None
        P = self._check_positives(positives)
        if last.get("pretraining"):
            if not self.pretrain_generator:
                return None
            return {"gen_pretrain_loss": _step(self.opt, self._pretrain_loss(P, negatives, generator))}
        self._check_scorer(scorer, P)
        with torch.no_grad():
            reward = scorer.score_negatives(P, negatives).float()
        valid = negatives.valid
        if not bool(valid.any()):
            return None
        mean_r = float(reward[valid].mean())
        base = mean_r if self.baseline is None else self.baseline
        adv = torch.where(valid, reward - base, torch.zeros_like(reward))
        G = self._gen_scorer()
        lp = torch.zeros(reward.shape, dtype=torch.float32, device=reward.device)
        for g in last["groups"]:
            rows, side = g["rows"], g["side"]
            anchor, _ = anchors(P[rows], side)
            if "cand" in g:
                lsm = self._candidate_log_probs(G, anchor, g["cand"], side)
                j = g["choice"]
                row_lp = torch.where(j >= 0, lsm.gather(1, j.clamp_min(0)), torch.zeros_like(j, dtype=lsm.dtype))
            else:  # all admissible entities: log softmax over the full row, excluded ids masked
                s = self._full_scores(G, anchor, side, g["exclude"])
                i = g["ids"]
                row_lp = torch.where(i >= 0, torch.log_softmax(s, 1).gather(1, i.clamp_min(0)),
                                     torch.zeros_like(i, dtype=s.dtype))
            lp = lp.index_put((rows,), row_lp.float())
        loss = -(adv * lp).sum() / valid.sum()
        gen_loss = _step(self.opt, loss)
        self.baseline = mean_r if self.baseline is None else \
            self.baseline_decay * self.baseline + (1.0 - self.baseline_decay) * mean_r
        return {"reward": mean_r, "baseline": self.baseline, "gen_loss": gen_loss}

    def _pretrain_loss(self, P, negatives, generator):
        """The generator's pretraining loss on a batch of positives (see the class docstring)."""
        G = self._gen_scorer()
        pos = G.score_positives(P)
        if self.pretrain_loss == "logistic":
            neg = G.score_negatives(P, negatives)
            v = negatives.valid.to(neg.dtype)
            return F.softplus(-pos).mean() + (F.softplus(neg) * v).sum() / v.sum().clamp_min(1.0)
        # candidate sets from their own stream (seeded by the run's seed and this step), so that the base
        # model's uniform negatives are those of a uniform run and a resumed run draws the same sets
        own = torch.Generator().manual_seed((_init_seed(generator) + 0x9E3779B97F4A7C15 * self.step) % 2**63)
        nll = torch.zeros(P.shape[0], dtype=pos.dtype, device=P.device)
        for side, _, rows in side_groups(P, self._row_sides(P, own)):
            anchor, target = anchors(P[rows], side)
            if self.candidates is None:  # every admissible entity (known triples masked, the positive once)
                s = self._full_scores(G, anchor, side, exclusion_with_self(self.known, anchor, target, side),
                                      temperature=1.0)
            else:
                neg, ok = corrupt(P[rows], self.candidates, self._entities(G), side=side, known=self.known,
                                  num_relations=self.num_relations, generator=own)
                cand = from_corrupt(P[rows], neg, ok, side).ids
                s = G.score_candidates(anchor, cand.clamp_min(0), side)
                s = torch.where(cand >= 0, s, torch.full_like(s, float("-inf")))
            logits = torch.cat([pos[rows, None], s], 1)
            nll = nll.index_put((rows,), -torch.log_softmax(logits, 1)[:, 0])
        return nll.mean()

    def _full_scores(self, G, anchor, side, ex, temperature=None):
        q, C = G.query_vectors(anchor, side), G.candidate_vectors(side)
        s = score_matrix(q, C, G.metric) / (self.temperature if temperature is None else temperature)  # [b, E]
        ptr, idx = ex
        row = torch.repeat_interleave(torch.arange(q.shape[0], device=q.device), ptr.diff())
        mask = torch.zeros_like(s, dtype=torch.bool)
        mask[row, idx] = True
        return s.masked_fill(mask, float("-inf"))

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict:
        d = super().state_dict()
        d["kbgan"] = {"generator": _copy(self.gen.state_dict()), "optimizer": _copy(self.opt.state_dict()),
                      "baseline": self.baseline, "fresh": self._fresh}
        return d

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        st = state.get("kbgan")
        if st is not None:
            self.gen.load_state_dict(st["generator"])
            self.opt.load_state_dict(st["optimizer"])
            self.baseline, self._fresh = st["baseline"], bool(st.get("fresh", False))
