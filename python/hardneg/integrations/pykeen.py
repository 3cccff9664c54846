"""PyKEEN adapter: any hardneg sampler as a ``pykeen.sampling.NegativeSampler``.

>>> from pykeen.pipeline import pipeline                                  # doctest: +SKIP
>>> from pykeen.models import DistMult                                    # doctest: +SKIP
>>> from hardneg.integrations.pykeen import HardNegativeSampler            # doctest: +SKIP
>>> model = DistMult(triples_factory=dataset.training, embedding_dim=64)  # doctest: +SKIP
>>> pipeline(dataset=dataset, model=model, negative_sampler=HardNegativeSampler,
...          negative_sampler_kwargs=dict(sampler="topk", model=model, num_negs_per_pos=32))  # doctest: +SKIP

Hard samplers read the PyKEEN model's *current* embeddings at every batch through
:func:`scorer_from_pykeen` (DistMult, ComplEx, TransE, RotatE), so mining uses the model's own score. Pass
the same model instance to ``pipeline(model=...)`` and to ``negative_sampler_kwargs["model"]``.
Filtering against the training triples is on by default (``filtered=True``), done exactly by hardneg (no
known triple is returned), and reported to PyKEEN as the batch mask.
"""
from __future__ import annotations

import torch
from pykeen.sampling import NegativeSampler

from .. import samplers as _samplers
from .._random import seed_from
from ..known import KnownSet

__all__ = ["HardNegativeSampler", "scorer_from_pykeen"]


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


class HardNegativeSampler(NegativeSampler):
    """A PyKEEN negative sampler backed by any hardneg sampler (``sampler=`` a name from
    ``hardneg.samplers.available()``, options in ``sampler_kwargs``).

    Args:
        mapped_triples, num_entities, num_relations, num_negs_per_pos: as in PyKEEN.
        sampler: hardneg sampler name (default ``"topk"``).
        sampler_kwargs: its options (e.g. ``{"pool_size": 64}``).
        model: the PyKEEN model being trained (needed by hard samplers); or ``scorer``: a callable returning a
            hardneg scorer, or a scorer.
        filtered: filter against the training triples (exact, via :class:`hardneg.KnownSet`).
        seed: seed of the sampler's own ``torch.Generator`` (default: drawn from torch's global RNG). When the
            model's embeddings live on another device than the batches, sampling runs there with a generator on
            that device, seeded once from this one, so runs stay reproducible.
    """

    def __init__(self, *, mapped_triples, num_entities=None, num_relations=None, num_negs_per_pos=None,
                 sampler="topk", sampler_kwargs=None, model=None, scorer=None, filtered=True, seed=None, **kwargs):
        super().__init__(mapped_triples=mapped_triples, num_entities=num_entities, num_relations=num_relations,
                         num_negs_per_pos=num_negs_per_pos, filtered=False, **kwargs)
        known = KnownSet.from_triples(mapped_triples.long(), self.num_entities, self.num_relations) if filtered else None
        self.hardneg_sampler = _samplers.create(sampler, num_negatives=self.num_negs_per_pos, known=known,
                                                num_entities=self.num_entities, num_relations=self.num_relations,
                                                **(sampler_kwargs or {}))
        # plain attributes, not submodules: the model belongs to the training loop
        object.__setattr__(self, "_model", model)
        object.__setattr__(self, "_scorer", scorer)
        if seed is None:
            seed = seed_from(None, high=2**62)
        self.generator = torch.Generator().manual_seed(int(seed))
        self._device_generators: dict[torch.device, torch.Generator] = {}

    def _current_scorer(self):
        if not self.hardneg_sampler.requires_scorer:
            return None
        if self._scorer is not None:
            return self._scorer() if callable(self._scorer) and not hasattr(self._scorer, "metric") else self._scorer
        if self._model is None:
            raise ValueError(f"HardNegativeSampler: sampler {self.hardneg_sampler.name!r} mines with the model's "
                             f"score; pass negative_sampler_kwargs=dict(model=<the PyKEEN model>) (or scorer=...)")
        return scorer_from_pykeen(self._model)

    def _negatives(self, positive_batch):
        pb = positive_batch.long()
        scorer = self._current_scorer()
        if scorer is not None and scorer.candidate_vectors("tail").device != pb.device:
            pb_dev = scorer.candidate_vectors("tail").device
            known = self.hardneg_sampler.known
            if known is not None and known.device != pb_dev:
                self.hardneg_sampler.known = known.to(pb_dev)
            neg = self.hardneg_sampler.sample(pb.to(pb_dev), scorer=scorer, generator=self._generator_on(pb_dev))
            return pb, neg.to(pb.device)
        return pb, self.hardneg_sampler.sample(pb, scorer=scorer, generator=self.generator)

    def _generator_on(self, device: torch.device) -> torch.Generator:
        """A generator on ``device``, seeded once from the sampler's own (CPU) generator."""
        if device not in self._device_generators:
            self._device_generators[device] = torch.Generator(device).manual_seed(seed_from(self.generator))
        return self._device_generators[device]

    def corrupt_batch(self, positive_batch):
        shape = positive_batch.shape
        pb, neg = self._negatives(positive_batch.reshape(-1, 3))
        t = neg.triples(pb)
        t = torch.where(neg.valid[..., None], t, pb[:, None, :])  # invalid slots: a copy of the positive
        return t.reshape(*shape[:-1], neg.ids.shape[1], 3)

    def sample(self, positive_batch):
        shape = positive_batch.shape
        pb, neg = self._negatives(positive_batch.reshape(-1, 3))
        t = neg.triples(pb)
        t = torch.where(neg.valid[..., None], t, pb[:, None, :])
        t = t.reshape(*shape[:-1], neg.ids.shape[1], 3)
        mask = neg.valid.reshape(*shape[:-1], neg.ids.shape[1])
        return t, (None if bool(mask.all()) else mask)
