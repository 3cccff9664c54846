"""Trained embeddings with their names, in the layouts PyKEEN, PyG and the TensorBoard projector load.

Every run with an output folder saves ``embeddings.pt``: ``{table: {"names": [str] | None, "weight": [n, d]}}``
(KG: ``entity`` and ``relation``; other tasks: ``node``, ``user``, ``item`` ...), plus any string metadata the
task adds (linkpred's ``node`` table: ``graph``, the fingerprint of the training graph, which SEAL's
``node_embedding`` checks). ``hardneg export RUN
--format F`` converts it:

* ``pt``: ``embeddings.pt`` as is (``torch.nn.Embedding.from_pretrained(d["entity"]["weight"])``);
* ``npy``: ``<table>.npy`` plus ``<table>_to_id.tsv`` (``id<TAB>label`` with a header, PyKEEN's
  ``entity_to_id.tsv`` layout);
* ``tsv``: ``<table>_vectors.tsv`` and ``<table>_metadata.tsv`` (the TensorBoard Embedding Projector's files).
"""
from __future__ import annotations

import os

FORMATS = ("pt", "npy", "tsv")
FILE = "embeddings.pt"


def save_embeddings(tables: dict, folder: str) -> str | None:
    import torch

    if not tables:
        return None
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, FILE)
    # a table may carry string metadata beside its vectors (linkpred: "graph", the training graph's fingerprint)
    torch.save({k: {**{m: x for m, x in v.items() if isinstance(x, str)}, "names": v.get("names"),
                    "weight": v["weight"].detach().cpu().float()} for k, v in tables.items()}, path)
    return path


def _run_folder(run: str) -> str:
    folder = run[: -len(".json")] if run.endswith(".json") and not os.path.isdir(run) else run
    if run.endswith(".json") and os.path.isfile(run):
        folder = os.path.dirname(os.path.abspath(run))
    if not os.path.isfile(os.path.join(folder, FILE)):
        raise ValueError(f"export: {os.path.join(folder, FILE)!r} not found; RUN must be the output folder of a "
                         f"'hardneg train' run")
    return folder


def export(run: str, fmt: str, out: str | None = None) -> list[str]:
    """Write the run's embeddings in format ``fmt`` into ``out`` (default: ``RUN/export-<fmt>``); returns the
    files written."""
    import numpy as np
    import torch

    if fmt not in FORMATS:
        raise ValueError(f"export: '--format' must be one of {list(FORMATS)} (got {fmt!r})")
    folder = _run_folder(run)
    tables = torch.load(os.path.join(folder, FILE), weights_only=False)
    out = out or os.path.join(folder, f"export-{fmt}")
    os.makedirs(out, exist_ok=True)
    files = []
    if fmt == "pt":
        path = os.path.join(out, FILE)
        torch.save(tables, path)
        return [path]
    for name, t in tables.items():
        w = t["weight"].numpy()
        names = t["names"] or [str(i) for i in range(w.shape[0])]
        if fmt == "npy":
            files.append(os.path.join(out, f"{name}.npy"))
            np.save(files[-1], w)
            files.append(os.path.join(out, f"{name}_to_id.tsv"))
            with open(files[-1], "w", encoding="utf-8") as f:
                f.write("id\tlabel\n")
                f.writelines(f"{i}\t{_clean(n)}\n" for i, n in enumerate(names))
        else:
            files.append(os.path.join(out, f"{name}_vectors.tsv"))
            np.savetxt(files[-1], w, delimiter="\t", fmt="%.7g")
            files.append(os.path.join(out, f"{name}_metadata.tsv"))
            with open(files[-1], "w", encoding="utf-8") as f:
                f.writelines(f"{_clean(n)}\n" for n in names)
    return files


def _clean(name) -> str:
    return str(name).replace("\t", " ").replace("\n", " ")
