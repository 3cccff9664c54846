"""Dataset loaders: knowledge graphs (TSV triples; UMLS / Nations / Kinships from the PyKEEN wheel; WN18RR,
NELL-995, CoDEx-S from a directory; WN18RR / FB15k-237 download) and temporal edge lists."""
from .kg import (KG, URLS, download_kg, find_shared_data, load_dataset, load_kg, pykeen_dataset_dir,
                 resolve_dataset, unseen_mask)
from .temporal import TemporalEvents, load_temporal_csv

__all__ = ["KG", "URLS", "download_kg", "find_shared_data", "load_dataset", "load_kg", "pykeen_dataset_dir",
           "resolve_dataset", "unseen_mask", "load_temporal_csv", "TemporalEvents"]
