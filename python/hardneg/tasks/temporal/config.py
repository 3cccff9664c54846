"""The temporal task's configuration (no torch import: the CLI builds its options from it)."""
from __future__ import annotations

from dataclasses import dataclass

from ...training.config import TrainConfig, number, opt

MODELS = ("tgn", "tgat")
NEIGHBOR_STRATEGIES = ("recent", "uniform")
NEIGHBOR_CUTOFFS = ("batch", "event")
RANK_EVAL = ("test", "all", "none")
#: the samplers the temporal task can train with (event samplers: destinations of (src, dst) events)
SAMPLERS = ("random", "historical", "inductive", "ens", "ens_score")
#: per-model defaults (TGN: Rossi et al. 2020 / DyGLib; TGAT: Xu et al. 2020 / DyGLib)
MODEL_DEFAULTS = {"tgn": {"num_neighbors": 10, "num_layers": 1}, "tgat": {"num_neighbors": 20, "num_layers": 2}}


@dataclass
class TemporalConfig(TrainConfig):
    """Future-link prediction on a continuous-time interaction graph. Fields beyond
    :class:`hardneg.training.TrainConfig`: the split, the backbone's neighbourhood, and what evaluation computes.
    Defaults follow the reference implementations (TGN / TGAT / DyGLib): batch 200, lr 1e-4, 100-dimensional
    time, memory and embedding, dropout 0.1, one negative per event, BCE."""

    task: str = opt("temporal", "kg | temporal | linkpred | rec (default: inferred from the dataset)")
    dataset: str = opt("wikipedia", "wikipedia | uci | a JODIE/TGN CSV path (u,i,ts,label or ml_*.csv)")
    model: str = opt("tgn", "tgn | tgat")
    dim: int = opt(100, "memory and embedding dimension")
    time_dim: int = opt(100, "cosine time-encoding dimension")
    num_neighbors: int = opt(0, "temporal neighbours per node (0: the model's default, tgn 10, tgat 20)")
    num_layers: int = opt(0, "temporal attention layers (0: the model's default, tgn 1, tgat 2)")
    num_heads: int = opt(2, "attention heads")
    neighbor_strategy: str = opt("recent", "recent | uniform (which past events a node attends to)")
    dropout: float = opt(0.1, "dropout in the attention layers")
    event_times: bool = opt(False, "time encodings relative to each event's own time (DyGLib) instead of the "
                                   "batch's first time (every node of a batch embedded once, as of the batch)")
    neighbor_cutoff: str = opt("batch", "batch | event: neighbours strictly before the batch's first time (the "
                                        "events of a batch never see each other, as in PyG's examples/tgn.py) or "
                                        "before each event's own time (TGN/TGAT reference code and DyGLib: a "
                                        "batch's later events see its earlier ones; implies event_times)")
    sampler: str = opt("random", "random | historical | inductive | ens | ens_score")
    num_negatives: int = opt(1, "negative destinations per event")
    loss: str = opt("bce", "margin | softplus | bce | sans | infonce | bpr")
    lr: float = opt(0.0001, "learning rate")
    batch_size: int = opt(200, "events per training batch (chronological)")
    eval_batch_size: int = opt(200, "events per evaluation batch (DyGLib's negatives depend on it)")
    epochs: int = opt(10, "training epochs")
    eval_every: int = opt(1, "validate every N epochs (0: only at the end)")
    inductive: bool = opt(False, "hold out a seeded tenth of the late nodes from training (DyGLib/TGAT inductive split) and "
                                 "report their events apart; False: plain chronological 70/15/15")
    split_seed: int = opt(2020, "seed of the held-out new nodes (DyGLib's 2020)")
    rank_eval: str = opt("test", "all-destination MRR / Recall and the 100-negative MRR on: test | all | none "
                                 "(all: also each validation)")
    mrr_negatives: int = opt(100, "fixed negatives per event for the sampled MRR (half historical, half random)")
    edge_features: bool = opt(True, "use the dataset's edge features when it has them")

    def validate(self) -> "TemporalConfig":
        super().validate()
        from ... import _validate as V

        op = "TrainConfig"
        V.choice(op, "model", self.model, MODELS)
        if self.sampler not in SAMPLERS:
            raise ValueError(f"{op}: the temporal task trains with event samplers {list(SAMPLERS)} "
                             f"(got {self.sampler!r})")
        V.choice(op, "neighbor_strategy", self.neighbor_strategy, NEIGHBOR_STRATEGIES)
        V.choice(op, "neighbor_cutoff", self.neighbor_cutoff, NEIGHBOR_CUTOFFS)
        V.choice(op, "rank_eval", self.rank_eval, RANK_EVAL)
        for name in ("time_dim", "num_heads", "mrr_negatives"):
            V.integer(op, name, getattr(self, name), minimum=1)
        for name in ("num_neighbors", "num_layers"):
            V.integer(op, name, getattr(self, name), minimum=0)
        V.integer(op, "split_seed", self.split_seed, minimum=0)
        number(op, "dropout", self.dropout, minimum=0.0, maximum=0.99)
        for name in ("inductive", "edge_features", "event_times"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"{op}: '{name}' must be a bool (got {V.describe(getattr(self, name))})")
        if (self.dim + self.time_dim) % self.num_heads or self.time_dim % self.num_heads:
            raise ValueError(f"{op}: 'num_heads' ({self.num_heads}) must divide time_dim ({self.time_dim}) and "
                             f"dim + time_dim ({self.dim + self.time_dim})")
        if self.model == "tgn" and self.neighbor_strategy != "recent":
            raise ValueError(f"{op}: TGN attends to its most recent neighbours (neighbor_strategy='recent'; "
                             f"got {self.neighbor_strategy!r})")
        return self

    def model_setting(self, name: str) -> int:
        """``num_neighbors`` / ``num_layers``, or the model's default (when 0)."""
        v = getattr(self, name)
        return MODEL_DEFAULTS[self.model][name] if v == 0 else v


Config = TemporalConfig
