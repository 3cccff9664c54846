"""Loaders for continuous-time interaction data: the JODIE/TGN CSV format (``u,i,ts,label[,features...]``)
and the TGN/DyGLib-processed ``ml_*.csv`` (``,u,i,ts,label,idx``). Paths or http(s)/file URLs."""
from __future__ import annotations

import os
import urllib.parse
import urllib.request
from dataclasses import dataclass

import torch


@dataclass
class TemporalEvents:
    src: torch.Tensor    # [M] int64
    dst: torch.Tensor    # [M] int64
    t: torch.Tensor      # [M] int64 (integral timestamps) or float64
    label: torch.Tensor  # [M] float32
    features: torch.Tensor | None  # [M, F] float32 or None
    num_nodes: int
    name: str

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


def load_temporal_csv(path_or_url: str, *, name: str | None = None, cache_dir: str | None = None) -> TemporalEvents:
    """Read a JODIE/TGN interaction CSV. Item ids that overlap user ids (raw JODIE files) are offset by
    max(user) + 1, as TGN's preprocessing does; already-offset files (e.g. ``wikipedia.csv`` here) and ``ml_*``
    files are kept as they are. Integral timestamps come back as int64, others as float64."""
    path = _fetch(path_or_url, cache_dir)
    us, vs, ts, ls, feats = [], [], [], [], []
    with open(path, encoding="utf-8") as f:
        header = f.readline().rstrip("\n").split(",")
        ml = header[0].strip() == "" and "u" in header
        cols = [h.strip() for h in header]
        for ln, line in enumerate(f, 2):
            line = line.strip()
            if not line:
                continue
            parts = line.split(",")
            try:
                if ml:
                    u, i, t, lab = parts[cols.index("u")], parts[cols.index("i")], parts[cols.index("ts")], parts[cols.index("label")]
                    rest = []
                else:
                    u, i, t, lab, rest = parts[0], parts[1], parts[2], parts[3] if len(parts) > 3 else "0", parts[4:]
                us.append(int(float(u)))
                vs.append(int(float(i)))
                ts.append(float(t))
                ls.append(float(lab))
                if rest:
                    feats.append([float(x) for x in rest])
            except (ValueError, IndexError) as e:
                raise ValueError(f"{path}:{ln}: cannot parse {line[:120]!r} ({e})") from None
    if not us:
        raise ValueError(f"load_temporal_csv: no events in {path!r}")
    src = torch.tensor(us, dtype=torch.int64)
    dst = torch.tensor(vs, dtype=torch.int64)
    t = torch.tensor(ts, dtype=torch.float64)
    if bool((t == t.round()).all()) and float(t.abs().max()) < 2**53:
        t = t.to(torch.int64)
    if not ml and int(dst.min()) <= int(src.max()):
        dst = dst + int(src.max()) + 1
    F = torch.tensor(feats, dtype=torch.float32) if feats and len(feats) == len(us) else None
    n = int(max(int(src.max()), int(dst.max()))) + 1
    return TemporalEvents(src, dst, t, torch.tensor(ls, dtype=torch.float32), F, n,
                          name or os.path.splitext(os.path.basename(path))[0])
