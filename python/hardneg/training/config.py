"""Typed run configuration: the fields every task shares, and each task's own fields in a subclass.

``TrainConfig(**fields)`` returns the config class of the task (``task=`` given, or inferred from
``dataset``; ``"kg"`` by default), so ``TrainConfig(dataset="umls", regularizer="n3")`` is a
:class:`hardneg.tasks.kg.KGConfig` and ``TrainConfig(dataset="wikipedia", model="tgn")`` a temporal one.
``from_dict`` rejects unknown keys, naming the valid ones.
"""
from __future__ import annotations

import dataclasses
import math
import numbers
from dataclasses import dataclass, field


OPTIMIZERS = ("adam", "adamw", "adagrad", "sgd")


def opt(default, help: str, **kw):
    """A config field with its help text (shown by ``hardneg train --help``)."""
    if isinstance(default, (dict, list)):
        return field(default_factory=lambda d=default: type(d)(d), metadata={"help": help, **kw})
    return field(default=default, metadata={"help": help, **kw})


@dataclass
class TrainConfig:
    """Everything a run depends on; a task's subclass adds its own fields and defaults."""

    task: str = opt("kg", "kg | temporal | linkpred | rec (default: inferred from the dataset)")
    dataset: str = opt("umls", "a shipped dataset name (hardneg datasets) or a path")
    model: str = opt("distmult", "model name (per task)")
    dim: int = opt(200, "embedding dimension")
    model_options: dict = opt({}, "extra model options (a mapping)")
    sampler: str = opt("uniform", "negative sampler (hardneg samplers)")
    sampler_options: dict = opt({}, "sampler options (a mapping, e.g. {pool_size: 64})")
    num_negatives: int = opt(32, "negatives per positive")
    loss: str = opt("softplus", "margin | softplus | bce | sans | infonce | bpr")
    loss_options: dict = opt({}, "loss options (a mapping, e.g. {margin: 1.0})")
    importance_weighting: bool = opt(False, "weight negatives by 1/q when the sampler returns log_prob")
    optimizer: str = opt("adam", "adam | adamw | adagrad | sgd")
    lr: float = opt(0.001, "learning rate")
    weight_decay: float = opt(0.0, "optimiser weight decay")
    grad_clip: float = opt(0.0, "clip the gradient norm to this (0: off)")
    batch_size: int = opt(256, "positives per training step")
    epochs: int = opt(100, "training epochs")
    eval_every: int = opt(10, "validate every N epochs (0: only at the end)")
    patience: int = opt(0, "early stopping: validations without improvement before stopping (0: off)")
    eval_batch_size: int = opt(256, "queries per evaluation chunk")
    checkpoint_every: int = opt(0, "checkpoint every N epochs (0: off)")
    checkpoint_dir: str | None = opt(None, "where checkpoint.pt goes")
    seed: int = opt(0, "random seed")
    device: str = opt("cpu", "cpu | cuda | cuda:N")
    deterministic: bool = opt(True, "deterministic torch kernels while training: the same seed gives the same "
                                    "model at any thread count (torch.use_deterministic_algorithms)")

    #: fields that may differ between a checkpoint and the run resuming it
    RESUMABLE = ("epochs", "checkpoint_every", "checkpoint_dir", "device", "eval_batch_size", "patience")

    def __new__(cls, *args, **kw):
        if cls is TrainConfig:  # dispatch to the task's own config class
            from .task import config_class

            cls = config_class(kw.get("task") or infer_task(kw.get("dataset")))
        return object.__new__(cls)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        """A validated config from a mapping (a recipe, ``--set`` overrides ...); unknown keys are errors."""
        if not isinstance(d, dict):
            raise TypeError(f"TrainConfig: expected a mapping of options (got {type(d).__name__})")
        target = cls
        if cls is TrainConfig:
            from .task import config_class

            target = config_class(d.get("task") or infer_task(d.get("dataset")))
        names = {f.name for f in dataclasses.fields(target)}
        bad = sorted(set(d) - names)
        if bad:
            raise ValueError(f"TrainConfig: unknown option(s) {bad} for task {target.task_name()!r}; "
                             f"valid options: {sorted(names)}")
        d = dict(d)
        d.setdefault("task", target.task_name())
        return target(**d).validate()

    @classmethod
    def task_name(cls) -> str:
        for f in dataclasses.fields(cls):
            if f.name == "task":
                return f.default
        return "kg"  # pragma: no cover

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def defaults(cls) -> dict:
        """Every field's default value (what a checkpoint written before a field existed ran with)."""
        return {f.name: f.default if f.default is not dataclasses.MISSING else f.default_factory()
                for f in dataclasses.fields(cls)}

    def fingerprint(self) -> dict:
        """The fields a checkpoint must agree on to be resumed."""
        d = self.to_dict()
        for k in self.RESUMABLE:
            d.pop(k, None)
        return d

    def validate(self) -> "TrainConfig":
        """Check every field; raises TypeError / ValueError naming the field and the value it got."""
        op = "TrainConfig"
        from .. import _validate as V
        from .. import losses as _losses
        from .. import samplers as _samplers

        if self.task != self.task_name():
            raise ValueError(f"{op}: 'task' is {self.task!r} but this is the {self.task_name()!r} config")
        for name in ("dataset", "model", "sampler", "loss", "optimizer", "device"):
            if not isinstance(getattr(self, name), str):
                raise TypeError(f"{op}: '{name}' must be a str (got {V.describe(getattr(self, name))})")
        if self.sampler not in _samplers.available():
            raise ValueError(f"{op}: unknown sampler {self.sampler!r}; known samplers: {_samplers.available()}")
        if self.loss not in _losses.available():
            raise ValueError(f"{op}: unknown loss {self.loss!r}; known losses: {_losses.available()}")
        V.choice(op, "optimizer", self.optimizer, OPTIMIZERS)
        for name in ("dim", "num_negatives", "batch_size", "eval_batch_size"):
            V.integer(op, name, getattr(self, name), minimum=1)
        for name in ("epochs", "eval_every", "patience", "checkpoint_every", "seed"):
            V.integer(op, name, getattr(self, name), minimum=0)
        for name in ("lr", "weight_decay", "grad_clip"):
            number(op, name, getattr(self, name), minimum=0.0)
        if self.lr <= 0:
            raise ValueError(f"{op}: 'lr' must be > 0 (got {self.lr!r})")
        for name in ("importance_weighting", "deterministic"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"{op}: '{name}' must be a bool (got {V.describe(getattr(self, name))})")
        for name in ("model_options", "sampler_options", "loss_options"):
            if not isinstance(getattr(self, name), dict):
                raise TypeError(f"{op}: '{name}' must be a mapping (got {V.describe(getattr(self, name))})")
        if self.checkpoint_dir is not None and not isinstance(self.checkpoint_dir, str):
            raise TypeError(f"{op}: 'checkpoint_dir' must be a path or None (got {V.describe(self.checkpoint_dir)})")
        return self


def number(op: str, name: str, v, *, minimum: float | None = None, maximum: float | None = None) -> float:
    """A finite real number in [minimum, maximum] (TypeError for non-numbers, ValueError out of range)."""
    from .. import _validate as V

    if isinstance(v, bool) or not isinstance(v, numbers.Real):
        raise TypeError(f"{op}: '{name}' must be a number (got {V.describe(v)})")
    v = float(v)
    if not math.isfinite(v) or (minimum is not None and v < minimum) or (maximum is not None and v > maximum):
        rng = f">= {minimum}" if maximum is None else f"in [{minimum}, {maximum}]"
        raise ValueError(f"{op}: '{name}' must be a finite number {rng} (got {v!r})")
    return v


def infer_task(dataset) -> str:
    """The task a dataset name or path belongs to (``"kg"`` when nothing else claims it)."""
    if not isinstance(dataset, str):
        return "kg"
    from ..tasks import task_of_dataset

    return task_of_dataset(dataset) or "kg"
