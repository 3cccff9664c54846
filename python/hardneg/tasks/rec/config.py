"""The rec task's configuration (no torch import: the CLI builds its options from it).

Defaults are LightGCN on Gowalla as LightGCN-PyTorch trains it (3 layers, dim 64, BPR with one uniform negative,
lr 1e-3, L2 1e-4 on the batch's layer-0 embeddings, batch 2048, 1000 epochs, evaluated every 10 epochs)."""
from __future__ import annotations

from dataclasses import dataclass

from ...training.config import TrainConfig, number, opt

PROTOCOLS = (None, "given", "leave_one_out")
ROW_SAMPLING = ("interactions", "users")


@dataclass
class RecConfig(TrainConfig):
    """Top-K recommendation. Fields beyond :class:`hardneg.training.TrainConfig`: the split protocol, the model's
    shape (layers, attention blocks, sequence length, time intervals), SelfGNN's alignment term, HardGNN's InfoNCE
    term and the sampled evaluation sizes. ``batch_size`` counts interactions for LightGCN and users for the
    sequence models (SASRec, SelfGNN); ``eval_batch_size`` counts users per full-ranking chunk."""

    task: str = opt("rec", "kg | temporal | linkpred | rec (default: inferred from the dataset)")
    dataset: str = opt("gowalla", "a shipped dataset name (hardneg datasets) or a path")
    model: str = opt("lightgcn", "lightgcn | sasrec | selfgnn")
    dim: int = opt(64, "embedding dimension")
    num_negatives: int = opt(1, "negatives per positive")
    loss: str = opt("bpr", "margin | softplus | bce | sans | infonce | bpr")
    lr: float = opt(0.001, "learning rate")
    batch_size: int = opt(2048, "training interactions per step (LightGCN) or users per step (sasrec, selfgnn)")
    epochs: int = opt(1000, "training epochs")
    eval_every: int = opt(10, "validate every N epochs (0: only at the end)")
    eval_batch_size: int = opt(2048, "users per full-ranking chunk (memory O(chunk * 20))")
    protocol: str | None = opt(None, "given (the dataset's train/test files) | leave_one_out (last item test, "
                                     "second-to-last valid); default: given where the data has a split")
    reg_weight: float = opt(1e-4, "L2 weight on the batch's layer-0 embeddings (LightGCN's 'decay')")
    row_sampling: str = opt("interactions", "lightgcn's training rows per epoch: interactions (every training "
                                            "(user, item) once, in a random order; RecBole) | users (as many draws, "
                                            "each a uniform user, then a uniform item of theirs; LightGCN's own)")
    num_layers: int = opt(3, "LightGCN layers (also per interval graph in selfgnn)")
    num_blocks: int = opt(2, "self-attention blocks (sasrec; selfgnn's sequence encoder)")
    num_heads: int = opt(1, "attention heads")
    maxlen: int = opt(200, "longest sequence read by sasrec / selfgnn (longer ones keep their last maxlen items)")
    dropout: float = opt(0.2, "dropout (sasrec, selfgnn)")
    num_intervals: int = opt(5, "selfgnn: time intervals, one short-term interaction graph each")
    ssl_weight: float = opt(0.1, "selfgnn: weight of the personalised short/long-term alignment term")
    ssl_pairs: int = opt(20, "selfgnn: item pairs per user and interval in the alignment term")
    infonce_weight: float = opt(-1.0, "HardGNN's lambda: weight of the InfoNCE term over the negatives with the "
                                      "user's short-term embedding (< 0: 0.1 with sampler hardgnn, else 0)")
    infonce_temperature: float = opt(0.1, "temperature of the InfoNCE term (cosine similarities)")
    sampled_negatives: list = opt([99, 100, 999], "leave-one-out: also rank the held-out item among 1 + n sampled "
                                                  "never-interacted items, for each n here (fixed by seed)")

    def validate(self) -> "RecConfig":
        super().validate()
        from ... import _validate as V
        from .models import MODELS

        op = "TrainConfig"
        if self.model.lower() not in MODELS:
            raise ValueError(f"{op}: unknown model {self.model!r}; known models: {list(MODELS)}")
        V.choice(op, "row_sampling", self.row_sampling, ROW_SAMPLING)
        if self.protocol not in PROTOCOLS:
            raise ValueError(f"{op}: 'protocol' must be None, 'given' or 'leave_one_out' (got {self.protocol!r})")
        for name in ("num_layers", "num_blocks", "num_heads", "maxlen", "num_intervals", "ssl_pairs"):
            V.integer(op, name, getattr(self, name), minimum=1)
        number(op, "reg_weight", self.reg_weight, minimum=0.0)
        number(op, "dropout", self.dropout, minimum=0.0, maximum=0.99)
        number(op, "ssl_weight", self.ssl_weight, minimum=0.0)
        number(op, "infonce_weight", self.infonce_weight)
        if number(op, "infonce_temperature", self.infonce_temperature, minimum=0.0) <= 0:
            raise ValueError(f"{op}: 'infonce_temperature' must be > 0 (got {self.infonce_temperature!r})")
        if not isinstance(self.sampled_negatives, list):
            raise TypeError(f"{op}: 'sampled_negatives' must be a list of ints (got {V.describe(self.sampled_negatives)})")
        for n in self.sampled_negatives:
            V.integer(op, "sampled_negatives[i]", n, minimum=1)
        if self.dim % self.num_heads:
            raise ValueError(f"{op}: 'dim' ({self.dim}) must be divisible by 'num_heads' ({self.num_heads})")
        return self

    def lam(self) -> float:
        """The InfoNCE weight in effect (``infonce_weight`` when >= 0, else 0.1 with the hardgnn sampler, else 0)."""
        if self.infonce_weight >= 0:
            return float(self.infonce_weight)
        return 0.1 if self.sampler == "hardgnn" else 0.0


Config = RecConfig
