"""Knowledge-graph triples in the standard TSV format (``head<TAB>relation<TAB>tail``, string ids)."""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch


@dataclass
class KG:
    name: str
    train: torch.Tensor  # [M, 3] int64 (h, r, t)
    valid: torch.Tensor
    test: torch.Tensor
    entities: list[str]
    relations: list[str]

    @property
    def num_entities(self) -> int:
        return len(self.entities)

    @property
    def num_relations(self) -> int:
        return len(self.relations)


def find_shared_data() -> str | None:
    """The benchmark data folder: $HARDNEG_DATA, or ../shared/data next to the checkout / working dir."""
    cands = [os.environ.get("HARDNEG_DATA")]
    here = os.path.dirname(os.path.abspath(__file__))
    for base in (os.getcwd(), here):
        d = base
        for _ in range(6):
            cands.append(os.path.join(d, "..", "shared", "data"))
            d = os.path.dirname(d)
    for c in cands:
        if c and os.path.isdir(c):
            return os.path.abspath(c)
    return None


def _read_tsv(path: str):
    rows = []
    with open(path, encoding="utf-8") as f:
        for ln, line in enumerate(f, 1):
            line = line.rstrip("\n").rstrip("\r")
            if not line.strip():
                continue
            parts = line.split("\t")
            if len(parts) != 3 or not all(p.strip() for p in parts):
                raise ValueError(f"{path}:{ln}: expected 'head<TAB>relation<TAB>tail', got {line[:120]!r}")
            rows.append(tuple(p.strip() for p in parts))
    return rows


def load_kg(path: str, name: str | None = None) -> KG:
    """Load ``train.txt``/``valid.txt``/``test.txt`` from a directory; ids are assigned in order of first
    appearance in train, then valid, then test."""
    if not os.path.isdir(path):
        raise ValueError(f"load_kg: dataset directory not found: {path!r}")
    splits = {}
    for split in ("train", "valid", "test"):
        f = os.path.join(path, f"{split}.txt")
        if not os.path.exists(f):
            raise ValueError(f"load_kg: missing {split}.txt in {path!r}")
        splits[split] = _read_tsv(f)
    ent, rel = {}, {}
    for split in ("train", "valid", "test"):
        for h, r, t in splits[split]:
            ent.setdefault(h, len(ent))
            rel.setdefault(r, len(rel))
            ent.setdefault(t, len(ent))
    to_t = lambda rows: torch.tensor([[ent[h], rel[r], ent[t]] for h, r, t in rows], dtype=torch.int64).reshape(-1, 3)
    return KG(name or os.path.basename(os.path.normpath(path)), to_t(splits["train"]), to_t(splits["valid"]),
              to_t(splits["test"]), list(ent), list(rel))
