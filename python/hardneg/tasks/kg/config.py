"""The KG task's configuration (no torch import: the CLI builds its options from it)."""
from __future__ import annotations

from dataclasses import dataclass

from ...training.config import TrainConfig, number, opt

UNSEEN = ("keep", "drop")
ENCODERS = (None, "rgcn")
ENCODER_OPTIONS = ("num_layers", "num_bases", "dropout")
MODES = ("slcwa", "1vsall", "kvsall")
LAYOUTS = ("replicated", "sharded")


@dataclass
class KGConfig(TrainConfig):
    """KG completion. Fields beyond :class:`hardneg.training.TrainConfig`: the encoder, filtering,
    regularisation, the evaluation tie policy and what to do with valid/test triples unseen in train."""

    task: str = opt("kg", "kg | temporal | linkpred | rec (default: inferred from the dataset)")
    encoder: str | None = opt(None, "rgcn: an R-GCN encoder in front of the decoder")
    encoder_options: dict = opt({}, "encoder options (rgcn: num_layers, num_bases, dropout)")
    filtered_sampling: bool = opt(True, "negatives never hit a training triple")
    regularizer: str | None = opt(None, "l2 | n3")
    reg_weight: float = opt(0.0, "regulariser weight")
    tie: str = opt("realistic", "rank ties: optimistic | pessimistic | realistic")
    unseen: str = opt("keep", "valid/test triples with entities or relations unseen in train: keep | drop")
    reciprocal: bool = opt(False, "train with inverse relations (t, r^-1, h) and answer head queries as tail "
                                  "queries of the inverse")
    dropout: float = opt(0.0, "dropout on the query vectors of the training scores")
    training_mode: str = opt("slcwa", "slcwa: sampled negatives (the sampler); 1vsall: cross-entropy over all "
                                      "entities; kvsall: BCE over all entities per (h, r) (full-scoring reference "
                                      "points, no sampler)")
    label_smoothing: float = opt(0.0, "label smoothing of the 1vsall / kvsall losses")
    entity_layout: str = opt("replicated", "replicated: every rank holds the whole entity table (DDP); sharded: "
                                           "each rank of a torchrun run holds a slice of its rows (sLCWA, no "
                                           "encoder, no grad_clip; hardneg.distributed.ShardedEmbedding)")

    def validate(self) -> "KGConfig":
        super().validate()
        from ... import _validate as V
        from .evaluation import TIES
        from .models import MODELS

        op = "TrainConfig"
        if self.model.lower() not in MODELS:
            raise ValueError(f"{op}: unknown model {self.model!r}; known models: {list(MODELS)}")
        V.choice(op, "tie", self.tie, TIES)
        V.choice(op, "unseen", self.unseen, UNSEEN)
        if self.encoder not in ENCODERS:
            raise ValueError(f"{op}: 'encoder' must be None or 'rgcn' (got {self.encoder!r})")
        if not isinstance(self.encoder_options, dict):
            raise TypeError(f"{op}: 'encoder_options' must be a mapping (got {V.describe(self.encoder_options)})")
        bad = sorted(set(self.encoder_options) - set(ENCODER_OPTIONS))
        if bad:
            raise ValueError(f"{op}: unknown encoder_options {bad}; valid: {list(ENCODER_OPTIONS)}")
        if self.encoder_options and self.encoder is None:
            raise ValueError(f"{op}: 'encoder_options' given without an encoder (set encoder: rgcn)")
        from ...samplers import base as _sampler_base

        try:  # a typo in sampler_options fails here, before any data is loaded
            _sampler_base.check_options(self.sampler, self.sampler_options)
        except ValueError as e:
            raise ValueError(f"{op}: 'sampler_options': {e}") from None
        if self.regularizer not in (None, "none", "l2", "n3"):
            raise ValueError(f"{op}: 'regularizer' must be None, 'l2' or 'n3' (got {self.regularizer!r})")
        number(op, "reg_weight", self.reg_weight, minimum=0.0)
        number(op, "dropout", self.dropout, minimum=0.0, maximum=0.99)
        number(op, "label_smoothing", self.label_smoothing, minimum=0.0, maximum=0.99)
        V.choice(op, "training_mode", self.training_mode, MODES)
        if not isinstance(self.reciprocal, bool):
            raise TypeError(f"{op}: 'reciprocal' must be a bool (got {V.describe(self.reciprocal)})")
        side = self.sampler_options.get("side")
        if self.reciprocal and side not in (None, "tail"):
            raise ValueError(f"{op}: with reciprocal relations only tails are corrupted (head queries are tail "
                             f"queries of the inverse); sampler_options side={side!r} cannot take effect")
        V.choice(op, "entity_layout", self.entity_layout, LAYOUTS)
        if self.entity_layout == "sharded":
            why = ("training_mode must be 'slcwa' (1vsall / kvsall score every entity in one matrix)"
                   if self.training_mode != "slcwa" else
                   "an encoder needs the whole entity table" if self.encoder is not None else
                   "grad_clip would clip each rank's rows by their own norm" if self.grad_clip else
                   f"the trainable sampler {self.sampler!r} keeps its own tables" if self.sampler in ("dans", "kbgan")
                   else None)
            if why:
                raise ValueError(f"{op}: entity_layout='sharded' does not work here: {why}")
        if not isinstance(self.filtered_sampling, bool):
            raise TypeError(f"{op}: 'filtered_sampling' must be a bool (got {V.describe(self.filtered_sampling)})")
        return self


Config = KGConfig
