"""SEAL's latent node features: node vectors joined to each subgraph node's input (``node_embedding``).

The SEAL paper (Zhang & Chen, NeurIPS 2018, section 4) builds each subgraph node's input from three parts: the
structural (DRNL) label, a latent embedding of the node, and its explicit attributes. The embedding carries what
the enclosing subgraph cannot: when the two endpoints' halves of the subgraph are not connected (45 % of
CiteSeer's links once the target link is removed), the labels say only "far apart", while a node vector learnt
over the whole training graph still says how alike the two nodes are. The paper used node2vec; SEAL_OGB offers a
free table trained with the model (``--train_node_embedding``) and a pretrained file
(``--pretrained_node_embedding``). The choices here:

* ``learn``: a free ``[nodes, dim]`` table trained with the model (:class:`~.models.SEAL`'s ``node_table``).
* ``gcn``: the dataset's GCN recipe (``<dataset>-gcn`` when shipped, else GAE's settings) with uniform
  negatives and the best epoch by validation AUC, trained by the shared engine on **this run's split** (same
  split seed, same component), then its encoder's output is frozen. node2vec itself needs ``torch_cluster`` or
  ``pyg_lib`` for its random walks; a GAE encoder is the latent model this library already trains, and it
  reads the node attributes too.
* a path: a ``[nodes, d]`` tensor (``.pt`` / ``.npy``) or a linkpred run's ``embeddings.pt``. A run's file
  records the fingerprint of the training graph it was trained on, and loading it for another split is a
  ValueError: an embedding trained with this split's validation or test edges in its graph would leak them.
  A bare tensor carries no fingerprint, so it is loaded with a warning that this cannot be checked.

On a graph without node attributes the GCN runs on a free node table, and there its vectors add nothing or hurt
(the SEAL graphs in bench/RESULTS.md: level on USAir and C. elegans, -0.14 AUC on Router, where the GCN alone is near
chance): use ``none`` there.

The vectors come from the training graph only, but they were fitted to the training edges themselves, while the
evaluation edges are new to them; SEAL's classifier can therefore trust them more on training pairs than they
deserve on test pairs (the paper injects the training negatives into node2vec's graph against this). Validation
AUC, on edges the embedding never saw, picks the epoch.
"""
from __future__ import annotations

import os
import warnings

import torch

from .mebns import graph_fingerprint

OP = "linkpred node_embedding"
# the GCN behind ``gcn`` on a graph without a shipped <dataset>-gcn recipe: GAE's (Kipf & Welling 2016) 32-16 encoder,
# Adam at 0.01 for 200 full-batch epochs, dot decoder, one negative per edge
GAE_SETTINGS = dict(hidden=32, dim=16, decoder="dot", lr=0.01, epochs=200, batch_size=65536, eval_every=10,
                    num_negatives=1, loss="bce")


def node_embedding(cfg, ds, split) -> tuple[torch.Tensor | None, dict]:
    """(frozen vectors [nodes, d] or None, a description) for ``cfg.node_embedding`` on ``ds`` and ``split``."""
    mode = cfg.node_embedding
    if mode in ("none", "learn"):
        return None, ({"source": "learn", "dim": cfg.dim} if mode == "learn" else {})
    if mode == "gcn":
        return train_gcn_embedding(cfg, ds, split)
    return load_embedding(mode, ds.num_nodes, graph_fingerprint(split.train, ds.num_nodes)), {"source": mode}


def gcn_config(cfg, split) -> dict:
    """The GCN run behind ``node_embedding: gcn``: the dataset's GCN recipe (or GAE's settings), uniform negatives,
    best epoch by validation AUC, this run's seed, split and evaluation sets."""
    from ... import cli
    from ...tasks import recipes

    name = f"{os.path.basename(str(cfg.dataset)).lower()}-gcn"
    d = cli.load_recipe(name) if name in recipes() else dict(GAE_SETTINGS)
    for k in ("compare", "seeds", "per_sampler", "sampler_options", "loss_options"):
        d.pop(k, None)
    d.update(task="linkpred", dataset=cfg.dataset, model="gcn", sampler="uniform", select_metric="auc",
             seed=cfg.seed, split_seed=split.seed, largest_component=False, node_embedding="none",
             num_hits_negatives=cfg.num_hits_negatives, mrr_negatives=cfg.mrr_negatives, device=cfg.device)
    d.setdefault("use_features", True)
    return d


def train_gcn_embedding(cfg, ds, split) -> tuple[torch.Tensor, dict]:
    from ...training.engine import Trainer

    gcfg = gcn_config(cfg, split)
    with torch.random.fork_rng(devices=[]):  # the embedding never moves the SEAL run's random stream
        tr = Trainer(gcfg, data=ds, progress=False, log=None)  # its epochs are not the run's; describe() reports it
        try:
            res = tr.run()
            model = tr.task.model
            if graph_fingerprint(tr.task.split.train, ds.num_nodes) != graph_fingerprint(split.train, ds.num_nodes):
                raise RuntimeError(f"{OP}: the GCN's split differs from the SEAL run's")  # pragma: no cover
            model.eval()
            with torch.no_grad():
                z = model.encode().detach().float().cpu()
        finally:
            tr.close()
    info = {"source": "gcn", "dim": int(z.shape[1]), "epochs": res["epochs_trained"], "best_epoch": res["best_epoch"],
            "valid_auc": res["valid"].get("auc"), "test_auc": res["test"].get("auc"),
            "seconds": round(res["timings"]["total_s"], 2),
            "config": {k: gcfg[k] for k in ("hidden", "dim", "lr", "epochs") if k in gcfg}}
    return z, info


def load_embedding(path: str, num_nodes: int, fingerprint: str) -> torch.Tensor:
    """A ``[num_nodes, d]`` float tensor from ``path`` (module docstring).

    Raises:
        ValueError: unreadable file, not a 2-D numeric table, wrong number of rows, or a run's embeddings trained
            on another training graph.
    """
    graph = None
    try:
        if path.endswith(".npy"):
            import numpy as np

            w = torch.from_numpy(np.load(path, allow_pickle=False))
        else:
            w = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unreadable file is the same user error
        raise ValueError(f"{OP}: cannot read {path!r} ({e})") from None
    if isinstance(w, dict):  # a run's embeddings.pt: {"node": {"names", "weight", "graph"}}
        t = w.get("node")
        if not isinstance(t, dict) or not isinstance(t.get("weight"), torch.Tensor):
            raise ValueError(f"{OP}: {path!r} holds a dict without a 'node' table (keys {sorted(w)}); give a "
                             f"[nodes, d] tensor or a linkpred run's embeddings.pt")
        graph, w = t.get("graph"), t["weight"]
    if not isinstance(w, torch.Tensor) or w.dim() != 2 or w.dtype == torch.bool or w.is_complex():
        raise ValueError(f"{OP}: {path!r} must hold a 2-D real [nodes, d] table (got "
                         f"{(tuple(w.shape), str(w.dtype)) if isinstance(w, torch.Tensor) else type(w).__name__})")
    if w.shape[0] != num_nodes:
        raise ValueError(f"{OP}: {path!r} has {w.shape[0]} rows, but the graph has {num_nodes} nodes")
    if graph is not None and graph != fingerprint:
        raise ValueError(f"{OP}: {path!r} was trained on another training graph (fingerprint {graph}; this run's is "
                         f"{fingerprint}): its graph held this split's validation or test edges, which would leak "
                         f"into the scores. Train it with the same dataset and split seed")
    if graph is None:
        warnings.warn(f"{OP}: {path!r} carries no training-graph fingerprint, so whether it saw this split's "
                      f"validation or test edges cannot be checked (a linkpred run's embeddings.pt can be)",
                      stacklevel=3)
    w = w.float()
    if not bool(torch.isfinite(w).all()):
        raise ValueError(f"{OP}: {path!r} holds NaN or infinite values")
    return w
