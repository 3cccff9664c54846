"""Loaders for continuous-time interaction data: the JODIE/TGN CSV format (``u,i,ts,label[,features...]``, any
header names, e.g. ``src,dest,ts,weight``) and the TGN/DyGLib-processed ``ml_*.csv`` (``,u,i,ts,label,idx``,
with the edge features in a sibling ``ml_<name>.npy`` when present). Paths or http(s)/file URLs.

Ids are kept as in the file (the task layer, :mod:`hardneg.tasks.temporal.data`, relabels them to 0..N-1).
Times are parsed exactly from the text: integral values (``"36"``, ``"1082008561.0"``) become int64 without
passing through a float; only a file with non-integral times gives float64."""
from __future__ import annotations

import os
import urllib.parse
import urllib.request
from dataclasses import dataclass

import numpy as np
import torch

from hardneg.data._common import column, read_rows


@dataclass
class TemporalEvents:
    src: torch.Tensor    # [M] int64
    dst: torch.Tensor    # [M] int64
    t: torch.Tensor      # [M] int64 (integral timestamps) or float64
    label: torch.Tensor  # [M] float32
    features: torch.Tensor | None  # [M, F] float32 or None
    num_nodes: int
    name: str
    bipartite: bool | None = None  # True: sources and destinations are disjoint id sets (JODIE user -> item)

    def graph(self, **kw):
        from hardneg.temporal import TemporalGraph

        return TemporalGraph(self.src, self.dst, self.t, num_nodes=self.num_nodes, **kw)


def _fetch(path_or_url: str, cache_dir: str | None = None) -> str:
    parsed = urllib.parse.urlparse(path_or_url)
    if parsed.scheme in ("", "file") and not (len(parsed.scheme) == 1):  # plain path (or a Windows drive letter)
        path = urllib.request.url2pathname(parsed.path) if parsed.scheme == "file" else path_or_url
        if not os.path.exists(path):
            raise ValueError(f"load_temporal_csv: file not found: {path!r}")
        return path
    if parsed.scheme not in ("http", "https"):
        raise ValueError(f"load_temporal_csv: unsupported URL scheme {parsed.scheme!r} in {path_or_url!r}")
    cache_dir = cache_dir or os.path.join(os.path.expanduser("~"), ".cache", "hardneg", "data")
    os.makedirs(cache_dir, exist_ok=True)
    dst = os.path.join(cache_dir, os.path.basename(parsed.path) or "download.csv")
    if not os.path.exists(dst):
        tmp = dst + ".part"
        urllib.request.urlretrieve(path_or_url, tmp)
        os.replace(tmp, dst)
    return dst


def time_order(op: str, t: torch.Tensor, sort: bool, where) -> torch.Tensor | None:
    """None when ``t`` is non-decreasing; else the stable sorting order (``sort=True``) or a ValueError naming
    the first event whose time goes backwards (``where(i)`` says where event i is)."""
    back = torch.nonzero(t[1:] < t[:-1]).flatten()
    if not back.numel():
        return None
    if not sort:
        i = int(back[0]) + 1
        raise ValueError(f"{op}: event times must be non-decreasing: {where(i)} has time {t[i].item()} after "
                         f"{t[i - 1].item()} at {where(i - 1)}; pass sort=True to sort the events (stable)")
    return torch.sort(t, stable=True).indices


def load_temporal_csv(path_or_url: str, *, name: str | None = None, cache_dir: str | None = None,
                      bipartite: bool | None = None, sort: bool = False) -> TemporalEvents:
    """Read a JODIE/TGN interaction CSV.

    Args:
        bipartite: None: bipartite when no id is both a source and a destination (already-offset JODIE files
            such as ``wikipedia.csv`` here, ``ml_*`` files of bipartite sets), else one shared id space (UCI).
            True: user -> item; item ids that overlap the user ids (raw JODIE files, items restarting at 0) are
            offset by max(user) + 1, as TGN's preprocessing does. False: one shared id space.
        sort: sort the events by time (stable) instead of raising on a time that goes backwards.

    Raises:
        ValueError: file not found, a line that does not parse (``file:line``), no events, event times that go
            backwards without ``sort=True`` (naming the first such line).
    """
    path = _fetch(path_or_url, cache_dir)
    op = "load_temporal_csv"
    header, rows, lines = read_rows(op, path)
    cols = [h.strip() for h in header] if header else []
    ml = bool(cols) and cols[0] == "" and {"u", "i", "ts"} <= set(cols)
    at = {k: cols.index(k) for k in ("u", "i", "ts", "label", "idx") if k in cols} if ml else {}
    ci = at.get
    src = column(op, path, rows, lines, ci("u", 0), "source id")
    dst = column(op, path, rows, lines, ci("i", 1), "destination id")
    t = column(op, path, rows, lines, ci("ts", 2), "timestamp", integral=False)
    if t.dtype == np.float64 and not np.isfinite(t).all():
        bad = int(np.flatnonzero(~np.isfinite(t))[0])
        raise ValueError(f"{path}:{lines[bad]}: timestamp {rows[bad][ci('ts', 2)]!r} is not finite (NaN/Inf times "
                         f"cannot be ordered)")
    lab_col = at.get("label") if ml else 3
    has_label = lab_col is not None and all(len(r) > lab_col for r in rows)
    label = column(op, path, rows, lines, lab_col, "label", integral=False) if has_label else np.zeros(len(rows))
    feats = None
    if ml:
        npy = os.path.join(os.path.dirname(path), os.path.splitext(os.path.basename(path))[0] + ".npy")
        if "idx" in at and os.path.exists(npy):
            arr = np.load(npy)
            if arr.ndim == 2 and arr.shape[1] > 0:
                feats = torch.from_numpy(arr[column(op, path, rows, lines, at["idx"], "edge index")].astype(np.float32))
    elif any(len(r) > 4 for r in rows):
        widths = {len(r) for r in rows}
        if len(widths) != 1:
            ln = next(ln for r, ln in zip(rows, lines) if len(r) != len(rows[0]))
            raise ValueError(f"{path}:{ln}: expected {len(rows[0])} columns like the first row (features)")
        feats = torch.from_numpy(np.asarray([r[4:] for r in rows], dtype=np.float32))
    src, dst = torch.from_numpy(src), torch.from_numpy(dst)
    t, label = torch.from_numpy(t), torch.from_numpy(np.asarray(label, dtype=np.float32))
    order = time_order(op, t, sort, lambda i: f"{path}:{lines[i]}")
    if order is not None:
        src, dst, t, label = src[order], dst[order], t[order], label[order]
        feats = feats[order] if feats is not None else None
    disjoint = not bool(torch.isin(dst, src).any())
    if bipartite is None:
        bipartite = disjoint
    elif bipartite and not disjoint:
        dst = dst + int(src.max()) + 1
    n = int(max(int(src.max()), int(dst.max()))) + 1
    return TemporalEvents(src, dst, t, label, feats, n, name or os.path.splitext(os.path.basename(path))[0],
                          bool(bipartite))
