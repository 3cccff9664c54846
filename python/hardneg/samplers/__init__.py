"""Drop-in negative samplers (uniform → hard) behind one API.

>>> import torch, hardneg
>>> from hardneg import samplers
>>> samplers.available()[:15]  # doctest: +NORMALIZE_WHITESPACE
['uniform', 'bernoulli', 'typed', 'in_batch', 'khop', 'topk', 'score', 'dns', 'nmiss', 'nscaching', 'mixed', 'dans',
 'kbgan', 'popularity', 'hardgnn']
>>> samplers.available()[15:20]  # events (hardneg.samplers.temporal)
['random', 'historical', 'inductive', 'ens', 'ens_score']
>>> samplers.available()[20:]  # static graphs (hardneg.samplers.linkpred)
['mebns']
>>> train = torch.tensor([[0, 0, 1], [1, 0, 2], [2, 1, 0]])
>>> known = hardneg.KnownSet.from_triples(train, 5, 2)
>>> s = samplers.create("topk", num_negatives=2, known=known, pool_size=3)
>>> scorer = samplers.DistMultScorer(torch.randn(5, 8), torch.randn(2, 8))
>>> neg = s.sample(train, scorer=scorer, generator=torch.Generator().manual_seed(0))
>>> neg.ids.shape, neg.valid.shape
(torch.Size([3, 2]), torch.Size([3, 2]))
"""
from .base import Negatives, Sampler, available, create, get_class, options, register
from .scorers import (ComplExScorer, DistMultScorer, EmbeddingScorer, RotatEScorer, Scorer, TransEScorer,
                      pairwise)
from .basic import BernoulliSampler, InBatchSampler, TypedSampler, UniformSampler
from .khop import KHopSampler
from .hard import DNSSampler, MixedSampler, NMissSampler, NSCachingSampler, ScoreSampler, TopKSampler
from .adversarial import DANSSampler, KBGANSampler, KGEGenerator
from .rec import HardGNNSampler, PopularitySampler
from .temporal import (ENSDraft, ENSSampler, ENSScoreSampler, HistoricalSampler, InductiveSampler, RandomSampler,
                       TemporalSampler)
from .linkpred import MeBNSSampler, MetaReweighter, collect_meta_set

__all__ = ["Negatives", "Sampler", "available", "create", "get_class", "options", "register", "Scorer", "DistMultScorer",
           "ComplExScorer", "TransEScorer", "RotatEScorer", "EmbeddingScorer", "pairwise", "UniformSampler",
           "BernoulliSampler", "TypedSampler", "InBatchSampler", "KHopSampler", "TopKSampler", "ScoreSampler",
           "NMissSampler", "NSCachingSampler", "MixedSampler", "DNSSampler", "DANSSampler", "KBGANSampler",
           "KGEGenerator", "PopularitySampler", "HardGNNSampler", "TemporalSampler", "RandomSampler",
           "HistoricalSampler", "InductiveSampler", "ENSDraft", "ENSSampler", "ENSScoreSampler", "MeBNSSampler",
           "MetaReweighter", "collect_meta_set"]
