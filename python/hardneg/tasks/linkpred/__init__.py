"""Static link prediction: undirected graphs, a seeded 85/5/10 edge split with fixed evaluation negatives.

* :mod:`.data`: Planetoid (Cora, CiteSeer), the SEAL graphs (.mat), edge lists; the split and its negatives.
* :mod:`.models`: GCN / GAT encoders with a dot or MLP decoder; SEAL (enclosing subgraphs, DRNL, DGCNN).
* :mod:`.evaluation`: AUC / AP (1:1), OGB-style Hits@20/50/100, MRR against 100 negatives per positive.
* :mod:`.mebns`: the teacher and the meta set of MeBNS (the sampler is :mod:`hardneg.samplers.linkpred`).
* :mod:`.config` / :mod:`.task`: :class:`LinkPredConfig` and :class:`LinkPredTask` (registered as
  ``"linkpred"``); recipes in ``recipes/``.
"""
from .config import LinkPredConfig


def __getattr__(name):  # LinkPredTask imports torch and PyG: load it on first use
    if name == "LinkPredTask":
        from .task import LinkPredTask

        return LinkPredTask
    raise AttributeError(name)


__all__ = ["LinkPredConfig", "LinkPredTask"]
