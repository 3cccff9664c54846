"""The ``Task`` protocol and the task registry.

A task (kg, temporal, linkpred, rec) supplies what differs between kinds of link prediction: its config
fields, data, model, negatives, loss and evaluation. The loop, seeding, devices, optimisers, checkpoints,
early stopping, progress, results and plots live once in :class:`hardneg.training.Trainer`, which drives
any task through these methods::

    task = MyTask(cfg, data=None, device=torch.device("cpu"))   # builds data, model, sampler, loss
    for batch in task.batches(generator):                        # one training epoch
        loss = task.step(batch, generator)                       # sampling + forward (engine: backward, step)
        task.after_step(batch)                                   # e.g. TGN memory update, post-step constraints
    metrics = task.evaluate("valid")                             # {"<primary_metric>": ..., ...}

Registering a new task needs no change to the engine: subclass :class:`Task`, give it a ``Config``
(a :class:`hardneg.training.TrainConfig` subclass with the task's own fields and defaults) and decorate it
with :func:`register_task`, or add it to ``_BUILTIN`` for lazy import.
"""
from __future__ import annotations

import importlib
import time
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Iterable, Iterator

if TYPE_CHECKING:  # the registry and the config lookup never import torch
    import torch

_REGISTRY: dict[str, type] = {}
#: built-in tasks, imported on first use (so ``hardneg --help`` never imports torch_geometric)
_BUILTIN = {t: f"hardneg.tasks.{t}.task" for t in ("kg", "temporal", "linkpred", "rec")}
TASKS = tuple(_BUILTIN)


def register_task(name: str):
    """Class decorator: make ``cls`` the task called ``name``."""

    def deco(cls):
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return deco


def get_task(name: str) -> type["Task"]:
    """The task class registered as ``name`` (importing a built-in task on first use)."""
    if not isinstance(name, str):
        raise TypeError(f"'task' must be a str, one of {available_tasks()} (got {type(name).__name__} {name!r})")
    if name not in _REGISTRY and name in _BUILTIN:
        importlib.import_module(_BUILTIN[name])
    if name not in _REGISTRY:
        raise ValueError(f"unknown task {name!r}; known tasks: {available_tasks()}")
    return _REGISTRY[name]


def config_class(name: str) -> type:
    """The config dataclass of task ``name`` (``hardneg.tasks.<name>.config.Config``), without importing the
    task's models (so the CLI can build its options without importing torch)."""
    if name in _REGISTRY:
        return _REGISTRY[name].Config
    if name in _BUILTIN:
        return importlib.import_module(f"hardneg.tasks.{name}.config").Config
    return get_task(name).Config


def available_tasks() -> list[str]:
    return list(dict.fromkeys([*_BUILTIN, *_REGISTRY]))


class Clock:
    """Wall-time accounting the engine reads for the results (``train_s``, ``sampler_s``, ``eval_s`` ...)."""

    def __init__(self, state: dict | None = None):
        self.totals: dict[str, float] = dict(state or {})

    @contextmanager
    def measure(self, key: str):
        t = time.perf_counter()
        try:
            yield
        finally:
            self.totals[key] = self.totals.get(key, 0.0) + time.perf_counter() - t

    def __getitem__(self, key: str) -> float:
        return self.totals.get(key, 0.0)


class Task:
    """Base class of the four tasks. Subclasses set ``Config``, ``primary_metric`` and the methods below.

    Attributes the engine reads: ``model`` (an ``nn.Module``), ``primary_metric`` (the key of
    :meth:`evaluate`'s result used for early stopping and model selection), ``higher_is_better``,
    ``table_columns`` (``[(header, "test.mrr", "{:.4f}"), ...]`` for the one-screen table; dotted paths into
    the results dict) and ``clock`` (set by the engine: ``with self.clock.measure("sampler"): ...`` makes the
    sampler's share of the training time appear in the results).
    """

    name = "task"
    Config: type = None  # a TrainConfig subclass
    primary_metric = "mrr"
    higher_is_better = True
    table_columns: list[tuple[str, str, str]] = []
    #: metrics the per-epoch plot draws for the validation split (default: the primary metric)
    plot_metrics: tuple[str, ...] = ()
    #: why the task cannot train data-parallel (``torchrun`` with more than one process), or "" when it can; the
    #: engine refuses such a run before it joins the process group
    data_parallel_unsupported: str = ""

    @classmethod
    def result_columns(cls, result: dict) -> list[tuple[str, str, str]]:
        """The one-screen table's columns for runs like ``result`` (one run's results dict): ``table_columns``,
        unless a task's columns depend on the run's settings."""
        return cls.table_columns

    def __init__(self, cfg, *, data=None, device: "torch.device"):
        self.cfg = cfg
        self.device = device
        self.clock = Clock()
        self.model = None  # a torch.nn.Module

    # ------------------------------------------------------------------ the training step
    def param_groups(self) -> Iterable:
        """What the engine's optimiser updates (parameters or param-group dicts)."""
        return self.model.parameters()

    def batches(self, generator: "torch.Generator") -> Iterator[Any]:
        """One epoch of training batches, in an order drawn from ``generator``."""
        raise NotImplementedError

    def step(self, batch, generator: "torch.Generator") -> "torch.Tensor":
        """The loss of one batch (negatives drawn from ``generator``); the engine runs backward and the step."""
        raise NotImplementedError

    def after_step(self, batch) -> None:
        """Called after each optimiser step (constraints, memory updates, trainable samplers)."""

    def on_epoch_start(self, epoch: int) -> None:
        """Called before each training epoch (``epoch`` counts from 1)."""

    def on_epoch_end(self, epoch: int) -> None:
        """Called after each training epoch."""

    def shard_batch(self, batch, rank: int, world_size: int):
        """This rank's part of a global training batch under data-parallel training (contiguous slices of a
        tensor's first dimension by default); override for batches that are not tensors."""
        import torch

        if isinstance(batch, torch.Tensor):
            return batch.tensor_split(world_size)[rank]
        raise NotImplementedError(f"task {self.name!r} yields {type(batch).__name__} batches; define "
                                  f"shard_batch(batch, rank, world_size) to train it data-parallel")

    # ------------------------------------------------------------------ evaluation and reporting
    def evaluate(self, split: str) -> dict:
        """Metrics on ``split`` (``"valid"`` or ``"test"``), including ``primary_metric``."""
        raise NotImplementedError

    #: True when :meth:`evaluate` is itself collective (a row-sharded table): every rank of a data-parallel run
    #: calls it on the whole split and gets the same dict.
    collective_evaluation = False

    def evaluate_shard(self, split: str, rank: int, world_size: int):
        """This rank's part of a sharded evaluation (any picklable object), or None (the default: rank 0
        evaluates the whole split and broadcasts). :meth:`merge_shards` turns the parts into :meth:`evaluate`'s
        dict."""
        return None

    def merge_shards(self, split: str, parts: list) -> dict:
        """The metrics of ``split`` from every rank's :meth:`evaluate_shard` part, in rank order."""
        raise NotImplementedError

    def describe(self) -> dict:
        """The dataset's name and counts, for the results."""
        return {}

    def protocol(self) -> str:
        """One line saying how the numbers were computed (split, negatives, filtering, ties)."""
        return ""

    def export(self) -> dict:
        """The trained embedding tables with their names, ``{table: {"names": [str] | None, "weight": [n, d]}}``
        (``hardneg export``)."""
        return {}

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict:
        """State beyond the model's parameters and the optimiser (sampler caches, memories ...)."""
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass

    def __repr__(self):
        return f"{type(self).__name__}(dataset={getattr(self.cfg, 'dataset', None)!r})"
