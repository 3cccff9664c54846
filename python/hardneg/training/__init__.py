"""The one training engine shared by every task (kg, temporal, linkpred, rec).

* :class:`TrainConfig`: a typed config (a task's subclass adds its fields; unknown keys are errors).
* :class:`Trainer` / :func:`train`: the loop, seeding, device, optimiser, early stopping, checkpoints that
  resume bit-identically, progress, results JSON and a PNG of the curves.
* :func:`compare`: several samplers (and seeds) on one model, one table with each sampler's gap to uniform;
  :func:`grid`: the cells of a hyperparameter grid against a baseline run.
* :class:`Task`, :func:`register_task`, :func:`get_task`: what a task supplies (data, model, step, evaluation).
"""
from __future__ import annotations

import importlib

from .config import TrainConfig
from .task import TASKS, Clock, Task, available_tasks, config_class, get_task, register_task

_LAZY = {"Trainer": ".engine", "train": ".engine", "versions": ".engine", "resolve_device": ".engine",
         "seed_everything": ".engine", "build_optimizer": ".engine", "compare": ".comparison", "grid": ".comparison",
         "format_table": ".results", "plot_curves": ".results"}


def __getattr__(name):  # the engine imports torch: load it on first use
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'hardneg.training' has no attribute {name!r}")


__all__ = ["TrainConfig", "Trainer", "train", "compare", "grid", "Task", "register_task", "get_task", "config_class",
           "available_tasks", "TASKS", "Clock", "versions", "resolve_device", "seed_everything", "build_optimizer",
           "format_table", "plot_curves"]
