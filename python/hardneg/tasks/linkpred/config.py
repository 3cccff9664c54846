"""The linkpred task's configuration (no torch import: the CLI builds its options from it)."""
from __future__ import annotations

import os
from dataclasses import dataclass

from ...training.config import TrainConfig, number, opt

MODELS = ("gcn", "gat", "seal")
DECODERS = ("dot", "mlp")
READOUTS = ("sort", "mean", "center")
NODE_EMBEDDINGS = ("none", "learn", "gcn")
SELECT_METRICS = ("auc", "ap", "hits@20", "hits@50", "hits@100", "mrr")


@dataclass
class LinkPredConfig(TrainConfig):
    """Static link prediction. Fields beyond :class:`hardneg.training.TrainConfig`: the encoder's shape, the
    decoder, SEAL's hops and readout, the split seed, the metric that selects the best epoch, and the size of
    the fixed Hits@K negative set."""

    task: str = opt("linkpred", "kg | temporal | linkpred | rec (default: inferred from the dataset)")
    dataset: str = opt("cora", "a shipped graph (cora, citeseer, usair, ns, pb, celegans, router, ecoli) or a path "
                               "(edge list .txt/.csv, SEAL .mat, Planetoid folder)")
    model: str = opt("gcn", "gcn | gat (node encoder + decoder) | seal (enclosing subgraphs, DRNL, DGCNN)")
    dim: int = opt(16, "output embedding width (gcn, gat); hidden width of SEAL's GNN")
    hidden: int = opt(32, "hidden width of the gcn / gat layers")
    num_layers: int = opt(2, "message-passing layers (SEAL: 3, as DGCNN)")
    decoder: str = opt("dot", "gcn / gat edge decoder: dot (z_u . z_v) | mlp (an MLP on z_u * z_v)")
    dropout: float = opt(0.0, "dropout between layers")
    use_features: bool = opt(True, "use the dataset's node features when it has them (else a learnt node table; "
                                   "SEAL: DRNL labels only)")
    hops: int = opt(2, "SEAL: hops of the enclosing subgraph")
    max_nodes_per_hop: int = opt(0, "SEAL: at most this many nodes per hop, drawn uniformly (0: all)")
    readout: str = opt("sort", "SEAL readout: sort (DGCNN sort pooling) | mean | center (target nodes' product)")
    sort_k: float = opt(0.6, "SEAL sort pooling: k nodes kept; < 1 is a quantile of training subgraph sizes "
                             "(SEAL_OGB's 0.6)")
    node_embedding: str = opt("none", "SEAL: node vectors joined to every subgraph node's input (the SEAL paper's "
                                      "latent features): none | learn (a free node table trained with the model; "
                                      "SEAL_OGB's --train_node_embedding) | gcn (the dataset's GCN recipe with uniform "
                                      "negatives, trained first on this run's split, then frozen; for graphs with node "
                                      "features) | a path to a "
                                      "[nodes, d] .pt / .npy tensor or a linkpred run's embeddings.pt (SEAL_OGB's "
                                      "--pretrained_node_embedding)")
    largest_component: bool = opt(False, "keep only the graph's largest connected component before the split "
                                         "(BUDDY's Planetoid protocol; not comparable with whole-graph scores)")
    split_seed: int | None = opt(None, "seed of the 85/5/10 edge split and its fixed negatives (None: the run's "
                                       "seed, so each seed is a different split)")
    num_hits_negatives: int = opt(100_000, "size of the fixed OGB-style negative set Hits@K ranks against")
    mrr_negatives: int = opt(100, "fixed negatives per positive for MRR (0: no MRR; a SEAL evaluation embeds one "
                                  "subgraph per negative, so this is most of its cost)")
    select_metric: str = opt("auc", "validation metric that picks the best epoch: auc | ap | hits@20 | hits@50 | "
                                    "hits@100 | mrr")
    filtered_sampling: bool = opt(True, "training negatives never hit a training edge or a self-loop")

    def validate(self) -> "LinkPredConfig":
        super().validate()
        from ... import _validate as V

        op = "TrainConfig"
        V.choice(op, "model", self.model, MODELS)
        V.choice(op, "decoder", self.decoder, DECODERS)
        V.choice(op, "readout", self.readout, READOUTS)
        V.choice(op, "select_metric", self.select_metric, SELECT_METRICS)
        for name in ("hidden", "num_layers", "hops"):
            V.integer(op, name, getattr(self, name), minimum=1)
        V.integer(op, "max_nodes_per_hop", self.max_nodes_per_hop, minimum=0)
        V.integer(op, "num_hits_negatives", self.num_hits_negatives, minimum=1)
        V.integer(op, "mrr_negatives", self.mrr_negatives, minimum=0)
        if self.mrr_negatives == 0 and self.select_metric == "mrr":
            raise ValueError(f"{op}: 'select_metric' 'mrr' needs 'mrr_negatives' >= 1 (got 0)")
        if self.split_seed is not None:
            V.integer(op, "split_seed", self.split_seed, minimum=0)
        number(op, "dropout", self.dropout, minimum=0.0, maximum=0.99)
        number(op, "sort_k", self.sort_k, minimum=0.0)
        if self.sort_k <= 0 or (self.sort_k > 1 and self.sort_k != int(self.sort_k)):
            raise ValueError(f"{op}: 'sort_k' must be a quantile in (0, 1] or a whole number of nodes >= 2 "
                             f"(got {self.sort_k!r})")
        if not isinstance(self.node_embedding, str) or not self.node_embedding:
            raise TypeError(f"{op}: 'node_embedding' must be one of {list(NODE_EMBEDDINGS)} or a file path (got "
                            f"{V.describe(self.node_embedding)})")
        if self.node_embedding != "none" and self.model != "seal":
            raise ValueError(f"{op}: 'node_embedding' applies to model 'seal' only (got {self.node_embedding!r} with "
                             f"model {self.model!r}; gcn / gat learn their own node vectors)")
        if self.node_embedding not in NODE_EMBEDDINGS and not os.path.isfile(self.node_embedding):
            raise ValueError(f"{op}: 'node_embedding' must be one of {list(NODE_EMBEDDINGS)} or an existing .pt / .npy "
                             f"file (got {self.node_embedding!r}: no such file)")
        for name in ("use_features", "filtered_sampling", "largest_component"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"{op}: '{name}' must be a bool (got {V.describe(getattr(self, name))})")
        return self


Config = LinkPredConfig
