"""Knowledge-graph triples in the standard TSV format (``head<TAB>relation<TAB>tail``, string ids)."""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch

from ..._paths import default_root, find_shared_data


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


def _read_tsv(path: str):
    from hardneg.data._common import read_text

    rows = []
    for ln, line in enumerate(read_text("load_kg", path).split("\n"), 1):
        line = line.rstrip("\r")
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
        if not splits[split]:
            raise ValueError(f"load_kg: {f!r} is empty (no triples)")
    ent, rel = {}, {}
    for split in ("train", "valid", "test"):
        for h, r, t in splits[split]:
            ent.setdefault(h, len(ent))
            rel.setdefault(r, len(rel))
            ent.setdefault(t, len(ent))
    to_t = lambda rows: torch.tensor([[ent[h], rel[r], ent[t]] for h, r, t in rows], dtype=torch.int64).reshape(-1, 3)
    return KG(name or os.path.basename(os.path.normpath(path)), to_t(splits["train"]), to_t(splits["valid"]),
              to_t(splits["test"]), list(ent), list(rel))


# ------------------------------------------------------------------------------------------ named datasets
#: datasets shipped inside the PyKEEN wheel (no download): name -> folder in pykeen/datasets
PYKEEN_BUILTIN = {"umls": "umls", "nations": "nations", "kinships": "kinships"}
#: folder names under ../shared/data/kg
SHARED_NAMES = {"umls": "umls", "nations": "nations", "kinships": "kinship", "wn18rr": "wn18rr",
                "nell-995": "nell-995", "codex-s": "codex-s"}
#: public archives (TSV triples inside), for users with internet
URLS = {"wn18rr": "https://github.com/TimDettmers/ConvE/raw/master/WN18RR.tar.gz",
        "fb15k-237": "https://github.com/TimDettmers/ConvE/raw/master/FB15k-237.tar.gz"}
ALIASES = {"kinship": "kinships", "nell995": "nell-995", "nell": "nell-995", "codexs": "codex-s",
           "codex-small": "codex-s", "fb15k237": "fb15k-237"}


#: shipped names (``hardneg datasets``)
SHIPPED = {"umls": "UMLS medical ontology: 135 entities, 46 relations, 5,216 train triples",
           "nations": "Nations: 14 countries, 55 relations, 1,592 train triples",
           "kinships": "Alyawarra kinship: 104 people, 25 relations, 8,544 train triples",
           "wn18rr": "WordNet WN18RR: 40,943 entities, 11 relations, 86,835 train triples",
           "nell-995": "NELL-995: 200 relations, 149,678 train triples",
           "codex-s": "CoDEx-S (Wikidata): 2,034 entities, 42 relations, 32,888 train triples",
           "fb15k-237": "Freebase FB15k-237: 14,541 entities, 237 relations, 272,115 train triples"}


def _norm(name: str) -> str:
    n = name.lower().replace("_", "-")
    return ALIASES.get(n, n)


def pykeen_dataset_dir(name: str) -> str | None:
    """The folder of a dataset shipped in the installed PyKEEN wheel, found without importing PyKEEN."""
    import importlib.util

    sub = PYKEEN_BUILTIN.get(_norm(name))
    if sub is None:
        return None
    spec = importlib.util.find_spec("pykeen")
    if spec is None or not spec.submodule_search_locations:
        return None
    for base in spec.submodule_search_locations:
        d = os.path.join(base, "datasets", sub)
        if all(os.path.exists(os.path.join(d, f"{s}.txt")) for s in ("train", "valid", "test")):
            return d
    return None


def resolve_dataset(name_or_path: str) -> tuple[str, str]:
    """(directory, name) for a dataset name or a directory path, without downloading.

    Order: an existing directory; UMLS / Nations / Kinships from the PyKEEN wheel; ``$HARDNEG_DATA`` or
    ``../shared/data/kg/<name>``; a previous download under :func:`default_root`."""
    if os.path.isdir(name_or_path):
        return name_or_path, os.path.basename(os.path.normpath(name_or_path))
    name = _norm(name_or_path)
    d = pykeen_dataset_dir(name)
    if d:
        return d, name
    shared = find_shared_data()
    if shared and name in SHARED_NAMES:
        d = os.path.join(shared, "kg", SHARED_NAMES[name])
        if os.path.isdir(d):
            return d, name
    d = os.path.join(default_root(), name)
    if os.path.isdir(d):
        return d, name
    known = sorted(set(SHIPPED) | set(PYKEEN_NAMES))
    hint = ("; PyKEEN downloads it (load_dataset(..., download=True), pip install 'hardneg[pykeen]')"
            if name in PYKEEN_NAMES else "")
    if os.sep in name_or_path or name_or_path.startswith("."):
        raise ValueError(f"dataset directory not found: {name_or_path!r}")
    raise ValueError(f"dataset {name_or_path!r} not found (known names: {known}; or pass a directory with "
                     f"train.txt/valid.txt/test.txt){hint}")


def find(name_or_path: str) -> tuple[str, str] | None:
    """(directory, name) where a KG resolves locally, or None."""
    try:
        return resolve_dataset(name_or_path)
    except ValueError:
        return None


def available() -> list[dict]:
    """One entry per shipped KG: name, task, whether it is available here, where it comes from."""
    out = []
    for name, desc in SHIPPED.items():
        hit = find(name)
        where = hit[0] if hit else ("downloads through PyKEEN on first use" if name in PYKEEN_NAMES else None)
        out.append({"name": name, "task": "kg", "available": hit is not None, "where": where, "description": desc})
    return out


#: our names -> PyKEEN dataset classes (they download once and cache under ~/.data/pykeen)
PYKEEN_NAMES = {"umls": "umls", "nations": "nations", "kinships": "kinships", "wn18rr": "wn18rr",
                "fb15k-237": "fb15k237", "codex-s": "codexsmall", "codex-m": "codexmedium", "codex-l": "codexlarge",
                "yago3-10": "yago310", "wn18": "wn18", "fb15k": "fb15k"}


def load_pykeen(name: str) -> KG:
    """A KG through PyKEEN's dataset class (downloaded and cached by PyKEEN on first use)."""
    key = PYKEEN_NAMES.get(_norm(name))
    if key is None:
        raise ValueError(f"dataset {name!r} has no PyKEEN dataset class (known: {sorted(PYKEEN_NAMES)})")
    try:
        from pykeen.datasets import get_dataset
    except ImportError:
        raise ImportError(f"dataset {name!r} is not here; PyKEEN downloads it: pip install 'hardneg[pykeen]'") from None
    try:
        ds = get_dataset(dataset=key)
        splits = [ds.training.mapped_triples, ds.validation.mapped_triples, ds.testing.mapped_triples]
    except Exception as e:  # network errors surface as many types; say what to do
        raise ValueError(f"dataset {name!r} is not here and PyKEEN could not download it ({type(e).__name__}: "
                         f"{str(e).splitlines()[0][:100] if str(e) else ''}); put train.txt/valid.txt/test.txt in "
                         f"{os.path.join(default_root(), _norm(name))} or pass a folder") from None
    e2id, r2id = ds.training.entity_to_id, ds.training.relation_to_id
    ents = [e for e, _ in sorted(e2id.items(), key=lambda kv: kv[1])]
    rels = [r for r, _ in sorted(r2id.items(), key=lambda kv: kv[1])]
    return KG(_norm(name), *(x.long() for x in splits), ents, rels)


def load_dataset(name_or_path: str, *, download: bool = True) -> KG:
    """Load a KG by name (``hardneg datasets``: ``umls``, ``nations``, ``kinships``, ``wn18rr``, ``nell-995``,
    ``codex-s``, ``fb15k-237`` ...) or a folder with ``train.txt``, ``valid.txt`` and ``test.txt``.

    A name resolves to local files first (the PyKEEN wheel's UMLS / Nations / Kinships, ``$HARDNEG_DATA``, the
    cache ``~/.cache/hardneg/datasets/<name>``), then, with ``download=True`` (the default), to PyKEEN's
    dataset class, which downloads and caches it. Without network the error says where to put the files."""
    try:
        d, name = resolve_dataset(name_or_path)
    except ValueError:
        if download and _norm(name_or_path) in PYKEEN_NAMES:
            return load_pykeen(name_or_path)
        raise
    return load_kg(d, name)


def download_kg(name: str, root: str | None = None, *, url: str | None = None) -> str:
    """Download and unpack a public KG archive (``.tar.gz`` with train/valid/test.txt) into ``root/name``;
    returns that directory. ``url`` overrides the default (any urllib URL, e.g. ``file:///...``). Only the
    three split files are extracted (by base name), so a hostile archive cannot write elsewhere."""
    import io
    import tarfile
    import urllib.request

    name = _norm(name)
    url = url or URLS.get(name)
    if url is None:
        raise ValueError(f"download_kg: no known URL for {name!r} (known: {sorted(URLS)}); pass url=...")
    dest = os.path.join(root or default_root(), name)
    with urllib.request.urlopen(url, timeout=60) as resp:
        blob = resp.read()
    os.makedirs(dest, exist_ok=True)
    found = set()
    with tarfile.open(fileobj=io.BytesIO(blob), mode="r:*") as tar:
        for m in tar.getmembers():
            base = os.path.basename(m.name)
            if m.isfile() and base in ("train.txt", "valid.txt", "test.txt"):
                with tar.extractfile(m) as src, open(os.path.join(dest, base), "wb") as out:
                    out.write(src.read())
                found.add(base)
    missing = {"train.txt", "valid.txt", "test.txt"} - found
    if missing:
        raise ValueError(f"download_kg: archive at {url} lacks {sorted(missing)}")
    return dest


def unseen_mask(kg: KG, triples: torch.Tensor) -> torch.Tensor:
    """bool [M]: triples whose head, tail or relation never occurs in ``kg.train``."""
    seen_e = torch.zeros(kg.num_entities, dtype=torch.bool)
    seen_e[kg.train[:, 0]] = True
    seen_e[kg.train[:, 2]] = True
    seen_r = torch.zeros(kg.num_relations, dtype=torch.bool)
    seen_r[kg.train[:, 1]] = True
    return ~(seen_e[triples[:, 0]] & seen_e[triples[:, 2]] & seen_r[triples[:, 1]])
