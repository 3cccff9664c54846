"""hardneg: fast, exact hard negative sampling for graph link prediction.

Public names: :mod:`hardneg.ops` (``topk_mine``, ``sample_by_score``, ``corrupt``, ...), :class:`KnownSet`,
:class:`TemporalGraph`, :mod:`hardneg.samplers`, :mod:`hardneg.losses`, :mod:`hardneg.training`,
:mod:`hardneg.tasks`, :mod:`hardneg.data`, :func:`show_config`, :mod:`hardneg.reference` (pure-torch ground
truth) and :mod:`hardneg.testing`. Everything is imported on first use, so ``import hardneg`` (and
``hardneg --help``) does not import torch.
"""
from __future__ import annotations

import importlib
import importlib.util

__version__ = "0.1.0"

_SUBMODULES = ("ops", "reference", "samplers", "losses", "training", "tasks", "data", "models", "evaluation",
               "integrations", "testing", "metrics", "known", "temporal", "graph", "distributed")
_ATTRS = {"KnownSet": ("hardneg.known", "KnownSet"), "Domain": ("hardneg.known", "Domain"),
          "TemporalGraph": ("hardneg.temporal", "TemporalGraph"),
          "CSRGraph": ("hardneg.graph", "CSRGraph"), "show_config": ("hardneg._config", "show_config"),
          "config": ("hardneg._config", "config")}


def __getattr__(name):
    if name in _ATTRS:
        mod, attr = _ATTRS[name]
        value = getattr(importlib.import_module(mod), attr)
    elif name in _SUBMODULES or (name.startswith("_") and not name.startswith("__")
                                  and importlib.util.find_spec(f"hardneg.{name}") is not None):
        value = importlib.import_module(f"hardneg.{name}")  # private modules (hardneg._backend, ...) too
    else:
        raise AttributeError(f"module 'hardneg' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_SUBMODULES) | set(_ATTRS))


__all__ = ["ops", "reference", "samplers", "losses", "training", "tasks", "data", "KnownSet", "Domain",
           "TemporalGraph", "CSRGraph", "show_config", "config", "__version__"]
