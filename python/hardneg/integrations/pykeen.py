"""PyKEEN adapter: any hardneg sampler as a ``pykeen.sampling.NegativeSampler``.

PyKEEN builds its negative sampler itself, inside the training data set, from ``mapped_triples``,
``num_entities``, ``num_relations``, ``num_negs_per_pos`` and ``negative_sampler_kwargs``; it never hands
it the model. :class:`HardNegativeTrainingLoop` (an sLCWA training loop) does: it binds the model it trains
to the sampler it creates, so hard negatives come from the model the pipeline built, even from a model name:

>>> from pykeen.pipeline import pipeline                                                   # doctest: +SKIP
>>> from hardneg.integrations.pykeen import HardNegativeSampler, HardNegativeTrainingLoop  # doctest: +SKIP
>>> pipeline(dataset="Nations", model="DistMult", training_loop=HardNegativeTrainingLoop,
...          negative_sampler=HardNegativeSampler,
...          negative_sampler_kwargs=dict(sampler="topk", num_negs_per_pos=8))              # doctest: +SKIP

Hard samplers read the bound model's *current* embeddings at every batch through :func:`scorer_from_pykeen`
(DistMult, ComplEx, TransE, RotatE), so mining uses the model's own score. Until a model is bound (PyKEEN's
own sLCWA loop, or a sampler built by hand), samplers that need one return filtered uniform negatives and
warn once. ``negative_sampler_kwargs=dict(model=m)`` still works; with :class:`HardNegativeTrainingLoop` a
model that is not the one being trained is an error, and without it a bound model whose parameters do not
change across 3 training batches draws a warning (it is probably not the model being trained).

Trainable samplers (``"dans"``, ``"kbgan"``) learn from the model: the adapter calls their ``update`` with
the previous batch just before sampling the next one (PyKEEN's optimiser step has happened by then), and the
training loop calls ``on_epoch_start`` before each epoch. DANS's ``mode="embedding"`` (continuous negatives)
cannot feed PyKEEN, which scores triples.

Filtering against the training triples is on by default (``filtered=True``), done exactly by hardneg (no
known triple is returned). PyKEEN's own ``filterer`` may be given too; the mask returned is then the
filterer's, combined with hardneg's validity. Sampling must run in the training process (``num_workers=0``,
PyKEEN's default): a data-loader worker would mine with a stale copy of the model.
"""
from __future__ import annotations

import warnings

import torch
from pykeen.sampling import NegativeSampler
from pykeen.training import SLCWATrainingLoop

from .. import samplers as _samplers
from .._random import seed_from
from ..known import KnownSet

__all__ = ["HardNegativeSampler", "HardNegativeTrainingLoop", "scorer_from_pykeen"]

#: training batches without a parameter change after which a bound model is reported as not being trained
STATIC_BATCHES = 3


def _as_real(x):
    if x.is_complex():
        return torch.cat([x.real, x.imag], -1)
    return x


def scorer_from_pykeen(model):
    """A hardneg scorer over a PyKEEN model's current embeddings (detached).

    DistMult and ComplEx are exact (``dot``). TransE with p = 1 is exact (``l1``); with p = 2 the miner ranks by
    the squared distance (same order). PyKEEN's RotatE scores −‖h∘r − t‖₂, so it is mined with ``l2`` on the
    [Re | Im] vectors (same order)."""
    from pykeen.models import ComplEx, DistMult, RotatE, TransE

    with torch.no_grad():
        ent = model.entity_representations[0](indices=None).detach()
        rel = model.relation_representations[0](indices=None).detach()
    if isinstance(model, DistMult):
        return _samplers.DistMultScorer(ent, rel)
    if isinstance(model, ComplEx):
        return _samplers.ComplExScorer(_as_real(ent), _as_real(rel))
    if isinstance(model, TransE):
        p = int(getattr(model.interaction, "p", 1))
        return _samplers.TransEScorer(ent, rel, p=1 if p == 1 else 2)
    if isinstance(model, RotatE):
        return _PyKEENRotatE(_as_real(ent), torch.angle(rel) if rel.is_complex() else rel)
    raise TypeError(f"scorer_from_pykeen: unsupported model {type(model).__name__}; supported: DistMult, ComplEx, "
                    f"TransE, RotatE (or pass scorer=<a hardneg scorer> yourself)")


class _PyKEENRotatE(_samplers.RotatEScorer):
    metric = "l2"  # PyKEEN's RotatE uses the L2 norm over the complex vector


def _param_versions(model) -> tuple:
    return tuple(p._version for p in model.parameters())


class HardNegativeSampler(NegativeSampler):
    """A PyKEEN negative sampler backed by any hardneg sampler (``sampler=`` a name from
    ``hardneg.samplers.available()``, options in ``sampler_kwargs``).

    Args:
        mapped_triples, num_entities, num_relations, num_negs_per_pos, filterer, filterer_kwargs: as in PyKEEN.
        sampler: hardneg sampler name (default ``"topk"``).
        sampler_kwargs: its options (e.g. ``{"pool_size": 64}``).
        model: the PyKEEN model being trained. Prefer :class:`HardNegativeTrainingLoop`, which binds the model
            it trains (:meth:`bind`); or ``scorer``: a hardneg scorer, or a callable returning one.
        filtered: filter against the training triples (exact, via :class:`hardneg.KnownSet`).
        seed: seed of the sampler's own ``torch.Generator`` (default: drawn from torch's global RNG). When the
            model's embeddings live on another device than the batches, sampling runs there with a generator on
            that device, seeded once from this one, so runs stay reproducible.

    Raises:
        ValueError: :meth:`bind` with a model other than the one already bound; DANS ``mode="embedding"``.
    """

    def __init__(self, *, mapped_triples, num_entities=None, num_relations=None, num_negs_per_pos=None,
                 sampler="topk", sampler_kwargs=None, model=None, scorer=None, filtered=True, seed=None, **kwargs):
        super().__init__(mapped_triples=mapped_triples, num_entities=num_entities, num_relations=num_relations,
                         num_negs_per_pos=num_negs_per_pos, **kwargs)
        known = KnownSet.from_triples(mapped_triples.long(), self.num_entities, self.num_relations) if filtered else None
        common = dict(num_negatives=self.num_negs_per_pos, known=known, num_entities=self.num_entities,
                      num_relations=self.num_relations)
        self.hardneg_sampler = _samplers.create(sampler, **common, **(sampler_kwargs or {}))
        if getattr(self.hardneg_sampler, "mode", None) == "embedding":
            raise ValueError("HardNegativeSampler: DANS mode='embedding' returns continuous negatives, which PyKEEN "
                             "cannot score (it scores triples); use mode='entity'")
        self._fallback = _samplers.create("uniform", **common, side=self.hardneg_sampler.side)
        # plain attributes, not submodules: the model belongs to the training loop
        object.__setattr__(self, "_model", None)
        object.__setattr__(self, "_scorer", scorer)
        self._from_loop = False
        self._warned = set()
        self._pending = None
        self._versions, self._static = None, 0
        if model is not None:
            self.bind(model, _from_loop=False)
        if seed is None:
            seed = seed_from(None, high=2**62)
        self.generator = torch.Generator().manual_seed(int(seed))
        self._device_generators: dict[torch.device, torch.Generator] = {}

    # ------------------------------------------------------------------ the model
    @property
    def model(self):
        """The bound PyKEEN model (None until :meth:`bind` or ``model=``)."""
        return self._model

    def bind(self, model, *, _from_loop: bool = True) -> None:
        """Mine with ``model`` from now on. :class:`HardNegativeTrainingLoop` calls this with the model it trains.

        Raises:
            ValueError: another model is already bound (e.g. ``negative_sampler_kwargs["model"]`` is not the
                model being trained).
        """
        if self._model is not None and model is not self._model:
            raise ValueError("HardNegativeSampler: negative_sampler_kwargs['model'] is not the model being trained "
                             f"(got a {type(self._model).__name__} instance, the loop trains another "
                             f"{type(model).__name__}); drop it: HardNegativeTrainingLoop binds the trained model")
        object.__setattr__(self, "_model", model)
        self._from_loop = self._from_loop or _from_loop

    def _warn_once(self, key, msg):
        if key not in self._warned:
            self._warned.add(key)
            warnings.warn(msg, UserWarning, stacklevel=4)

    def _current_scorer(self):
        if self._scorer is not None:
            return self._scorer() if callable(self._scorer) and not hasattr(self._scorer, "metric") else self._scorer
        if self._model is None:
            return None
        if not self._from_loop and torch.is_grad_enabled():
            v = _param_versions(self._model)
            self._static = self._static + 1 if v == self._versions else 0
            self._versions = v
            if self._static >= STATIC_BATCHES:
                self._warn_once("static", f"HardNegativeSampler: the bound model's parameters have not changed over "
                                          f"{STATIC_BATCHES} batches; if negative_sampler_kwargs['model'] is not the "
                                          f"model being trained, the negatives come from the wrong model (use "
                                          f"training_loop=HardNegativeTrainingLoop, which binds the trained one)")
        return scorer_from_pykeen(self._model)

    # ------------------------------------------------------------------ sampling
    def _negatives(self, positive_batch):
        if torch.utils.data.get_worker_info() is not None and self.hardneg_sampler.requires_scorer:
            self._warn_once("worker", "HardNegativeSampler: sampling in a data-loader worker mines with a stale copy "
                                      "of the model; train with num_workers=0")
        pb = positive_batch.long()
        s = self.hardneg_sampler
        scorer = self._current_scorer() if s.requires_scorer else None
        if self._pending is not None:  # a trainable sampler learns from the previous (now stepped) batch
            P, neg = self._pending
            self._pending = None
            if scorer is not None:
                s.update(P, neg, scorer=scorer, generator=self.generator)
        if s.requires_scorer and scorer is None:
            self._warn_once("unbound", f"HardNegativeSampler: sampler {s.name!r} mines with the model being trained, "
                                       f"and none is bound yet: these are filtered uniform negatives. Train with "
                                       f"training_loop=HardNegativeTrainingLoop (it binds the model it trains) or "
                                       f"call .bind(model)")
            s = self._fallback
        dev = scorer.candidate_vectors("tail").device if scorer is not None else pb.device
        if s.known is not None and s.known.device != dev:
            s.known = s.known.to(dev)
        gen = self.generator if dev.type == "cpu" else self._generator_on(dev)
        neg = s.sample(pb.to(dev), scorer=scorer, generator=gen)
        if s.trainable:
            self._pending = (pb.to(dev), neg)
        if not bool(neg.valid.all()) and s is not self._fallback:
            neg = self._top_up(pb.to(dev), neg, gen)
        return pb, neg.to(pb.device)

    def _top_up(self, pb, neg, gen):
        """Slots the sampler left empty (a row with nothing admissible under its own rule, e.g. an empty type
        domain) get filtered uniform negatives, so PyKEEN needs no mask unless every entity is inadmissible."""
        uni = self._fallback.sample(pb, generator=gen)
        fill = ~neg.valid
        side = neg.side_matrix(pb)
        return _samplers.Negatives(torch.where(fill, uni.ids, neg.ids), neg.valid | uni.valid,
                                   None, torch.where(fill, uni.side_matrix(pb), side))

    def on_epoch_start(self, epoch: int) -> None:
        self.hardneg_sampler.on_epoch_start(epoch)

    def _generator_on(self, device: torch.device) -> torch.Generator:
        """A generator on ``device``, seeded once from the sampler's own (CPU) generator."""
        if device not in self._device_generators:
            self._device_generators[device] = torch.Generator(device).manual_seed(seed_from(self.generator))
        return self._device_generators[device]

    def corrupt_batch(self, positive_batch):
        return self._corrupt(positive_batch)[0]

    def _corrupt(self, positive_batch):
        shape = positive_batch.shape
        pb, neg = self._negatives(positive_batch.reshape(-1, 3))
        t = neg.triples(pb)
        t = torch.where(neg.valid[..., None], t, pb[:, None, :])  # invalid slots: a copy of the positive, masked
        n = neg.ids.shape[1]
        return t.reshape(*shape[:-1], n, 3), neg.valid.reshape(*shape[:-1], n)

    def sample(self, positive_batch):
        """``(negatives [..., n, 3], mask [..., n] or None)``. The mask is PyKEEN's filterer's (when one was
        given) combined with hardneg's validity; without a filterer it is None unless a row had no admissible
        negative at all (every entity a known answer), whose slots hold a copy of the positive, masked out."""
        t, valid = self._corrupt(positive_batch)
        if self.filterer is not None:
            return t, self.filterer(negative_batch=t) & valid
        return t, (None if bool(valid.all()) else valid)


class HardNegativeTrainingLoop(SLCWATrainingLoop):
    """PyKEEN's sLCWA training loop, binding the model it trains to the :class:`HardNegativeSampler` it creates
    (so ``pipeline(model="DistMult", negative_sampler=HardNegativeSampler, training_loop=HardNegativeTrainingLoop)``
    gets hard negatives from the pipeline's own model) and telling trainable samplers each epoch's start.

    Raises:
        ValueError: ``negative_sampler_kwargs["model"]`` is a different model from the one being trained.
    """

    def _create_training_data_loader(self, triples_factory, *args, **kwargs):
        loader = super()._create_training_data_loader(triples_factory, *args, **kwargs)
        ns = getattr(loader.dataset, "negative_sampler", None)
        if isinstance(ns, HardNegativeSampler):
            ns.bind(self.model)
        self.hardneg_sampler = ns if isinstance(ns, HardNegativeSampler) else None
        return loader

    def _train_epoch(self, *args, epoch: int, **kwargs):
        if getattr(self, "hardneg_sampler", None) is not None:
            self.hardneg_sampler.on_epoch_start(epoch)
        return super()._train_epoch(*args, epoch=epoch, **kwargs)
