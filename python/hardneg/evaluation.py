"""Filtered KG link-prediction evaluation; lives in :mod:`hardneg.tasks.kg.evaluation` (re-exported here)."""
from hardneg.tasks.kg.evaluation import TIES, evaluate, metrics_from_ranks, ranks

__all__ = ["TIES", "evaluate", "metrics_from_ranks", "ranks"]
