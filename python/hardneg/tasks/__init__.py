"""Tasks: each owns its data, models, evaluation and recipes; the loop lives once in :mod:`hardneg.training`.

* :mod:`hardneg.tasks.kg`: knowledge-graph completion (triples, filtered ranking).
* :mod:`hardneg.tasks.temporal`: future-link prediction on continuous-time interaction graphs (TGN, TGAT).
* :mod:`hardneg.tasks.linkpred`: static-graph link prediction (GCN, GAT, SEAL).
* :mod:`hardneg.tasks.rec`: top-K recommendation (LightGCN, SASRec, SelfGNN-style).

Each ``hardneg.tasks.<task>.data`` module exposes ``SHIPPED`` (name -> description), ``available()`` and
``load_dataset(name_or_path)``; each task package ships its recipes as YAML files in ``recipes/``.
"""
from __future__ import annotations

import importlib
import os

TASK_NAMES = ("kg", "temporal", "linkpred", "rec")


def data_module(task: str):
    """``hardneg.tasks.<task>.data`` (None when that task has no data module yet)."""
    try:
        return importlib.import_module(f"hardneg.tasks.{task}.data")
    except ModuleNotFoundError as e:
        if e.name and e.name.startswith(f"hardneg.tasks.{task}"):
            return None
        raise


def _norm(name: str) -> str:
    return name.lower().replace("_", "-")


def task_of_dataset(name_or_path: str) -> str | None:
    """The task a dataset belongs to: a shipped name, else the shape of the path; None when unknown."""
    n = _norm(name_or_path)
    for task in TASK_NAMES:
        mod = data_module(task)
        if mod is None:
            continue
        names = {_norm(k) for k in getattr(mod, "SHIPPED", {})} | {_norm(k) for k in getattr(mod, "ALIASES", {})}
        if n in names:
            return task
    p = name_or_path
    if os.path.isdir(p):
        files = set(os.listdir(p))
        if "valid.txt" in files:
            return "kg"
        if {"train.txt", "test.txt"} <= files:
            return "rec"
        return None
    ext = os.path.splitext(p)[1].lower()
    if ext == ".csv" and os.path.isfile(p):
        return "temporal"
    if ext == ".mat":
        return "linkpred"
    return None


def datasets() -> list[dict]:
    """Every shipped dataset of every task: name, task, whether it is available here, where, description."""
    out = []
    for task in TASK_NAMES:
        mod = data_module(task)
        if mod is not None and hasattr(mod, "available"):
            out.extend(mod.available())
    return out


def recipe_dirs() -> list[tuple[str, str]]:
    """(task, folder) of every task's shipped recipes."""
    here = os.path.dirname(__file__)
    return [(t, os.path.join(here, t, "recipes")) for t in TASK_NAMES if os.path.isdir(os.path.join(here, t, "recipes"))]


def recipes() -> dict[str, str]:
    """Shipped recipe name -> YAML path."""
    out = {}
    for _, d in recipe_dirs():
        for f in sorted(os.listdir(d)):
            if f.endswith((".yaml", ".yml")):
                out[os.path.splitext(f)[0]] = os.path.join(d, f)
    return out
