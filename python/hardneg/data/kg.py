"""KG triples loaders; they live in :mod:`hardneg.tasks.kg.data` (re-exported here)."""
from hardneg.tasks.kg.data import (KG, URLS, download_kg, load_dataset, load_kg, pykeen_dataset_dir,  # noqa: F401
                                   resolve_dataset, unseen_mask)
