"""Knowledge-graph completion: triples (h, r, t), sLCWA training with any sampler, filtered ranking.

* :mod:`.data`: TSV triples; UMLS / Nations / Kinships from the PyKEEN wheel, other sets from a folder.
* :mod:`.models`: TransE, DistMult, ComplEx, RotatE (each is a scorer), an optional R-GCN encoder.
* :mod:`.evaluation`: filtered MRR / MR / Hits@k over heads and tails, with a tie policy.
* :mod:`.config` / :mod:`.task`: :class:`KGConfig` and :class:`KGTask` (registered as ``"kg"``); recipes in
  ``recipes/``.
"""
from .config import KGConfig


def __getattr__(name):  # KGTask imports torch and the models: load it on first use
    if name == "KGTask":
        from .task import KGTask

        return KGTask
    raise AttributeError(name)


__all__ = ["KGConfig", "KGTask"]
