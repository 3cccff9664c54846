"""Dataset loaders of every task, in one place. The loaders live with their task
(:mod:`hardneg.tasks.kg.data`, ...); ``hardneg.data.load_dataset`` is the KG one."""
from hardneg._paths import default_root, find_shared_data
from hardneg.tasks.kg.data import (KG, URLS, download_kg, load_dataset, load_kg, pykeen_dataset_dir,
                                   resolve_dataset, unseen_mask)

from .temporal import TemporalEvents, load_temporal_csv

__all__ = ["KG", "URLS", "download_kg", "find_shared_data", "default_root", "load_dataset", "load_kg",
           "pykeen_dataset_dir", "resolve_dataset", "unseen_mask", "load_temporal_csv", "TemporalEvents"]
