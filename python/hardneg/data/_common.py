"""What the task data modules (temporal, linkpred, rec) share: finding a dataset by name, reading integer text
tables, seeded generators, id checks, and exact distinct-negative sampling against a :class:`hardneg.KnownSet`.

Search order for a shipped name (:func:`locate`): ``$HARDNEG_DATA``, then ``../shared/data`` (found by
:func:`hardneg.data.find_shared_data`), then the user cache :func:`hardneg.data.default_root`
(``~/.cache/hardneg/datasets``, where ``download=True`` puts what a library downloads).
"""
from __future__ import annotations

import os
import re
import warnings

import numpy as np
import torch

from hardneg import _validate as V
from hardneg._paths import default_root, find_shared_data
from hardneg.known import KnownSet

_INTEGRAL = re.compile(r"^[+-]?\d+(\.0*)?$")


# --------------------------------------------------------------------------------------------- finding
def roots() -> list[str]:
    """The folders searched for shipped datasets, in order (existing ones only, no repeats)."""
    out = []
    for r in (os.environ.get("HARDNEG_DATA"), find_shared_data(), default_root()):
        if r and os.path.isdir(r) and os.path.abspath(r) not in out:
            out.append(os.path.abspath(r))
    return out


def locate(name_or_path, places: dict[str, tuple[str, ...]], aliases: dict[str, str] | None = None):
    """``(path, name)`` for an existing path or a shipped name, else None.

    ``places`` maps each name to the relative paths it may have under a root (the shared layout first, then
    where a library's download puts it); a path counts when it exists."""
    if not isinstance(name_or_path, (str, os.PathLike)):
        raise TypeError(f"find: 'name_or_path' must be a str or os.PathLike (got {V.describe(name_or_path)})")
    s = os.fspath(name_or_path)
    if os.path.exists(s):
        base = os.path.basename(os.path.normpath(s))
        return s, os.path.splitext(base)[0] if os.path.isfile(s) else base
    name = normalize(s, aliases)
    for root in roots():
        for rel in places.get(name, ()):
            p = os.path.join(root, rel)
            if os.path.exists(p):
                return p, name
    return None


def normalize(name: str, aliases: dict[str, str] | None = None) -> str:
    n = name.strip().lower().replace("_", "-")
    return (aliases or {}).get(n, n)


def available(task: str, shipped: dict[str, str], find) -> list[dict]:
    """One entry per shipped name: ``{"name", "task", "available", "where", "description"}``."""
    out = []
    for name, desc in shipped.items():
        hit = find(name)
        out.append({"name": name, "task": task, "available": hit is not None, "where": hit[0] if hit else None,
                    "description": desc})
    return out


def not_found(task: str, name_or_path, shipped, what: str, hint: str = "") -> ValueError:
    """The one-line error for a name or path that resolves nowhere."""
    s = os.fspath(name_or_path)
    if os.sep in s or s.startswith(".") or os.path.splitext(s)[1]:
        return ValueError(f"load_dataset: {task} dataset path not found: {s!r}")
    return ValueError(f"load_dataset: {task} dataset {s!r} not found (shipped names: {sorted(shipped)}, looked in "
                      f"$HARDNEG_DATA, ../shared/data and {default_root()}); or pass a path to {what}{hint}")


# --------------------------------------------------------------------------------------------- reading
def read_text(op: str, path: str) -> str:
    """The text of a data file: UTF-8, a leading BOM stripped; undecodable bytes raise a ValueError naming the
    file and line (``path:line``)."""
    with open(path, "rb") as f:
        raw = f.read()
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw.count(b"\n", 0, e.start) + 1
        raise ValueError(f"{op}: {path}:{line}: not UTF-8 text (byte 0x{raw[e.start]:02x} at offset {e.start}: "
                         f"{e.reason})") from None


def read_rows(op: str, path: str):
    """Tokenise a text table: whitespace- or comma-separated, blank lines skipped, an optional header (a first
    line with a token that is not a number). Returns ``(header tokens or None, rows, line numbers)``."""
    text = read_text(op, path)
    rows, lines, header = [], [], None
    for ln, line in enumerate(text.splitlines(), 1):
        toks = line.replace(",", " ").split()
        if not toks:
            continue
        if header is None and not rows and not all(_number(t) for t in toks):
            header = [h.strip() for h in line.split(",")] if "," in line else toks
            continue
        rows.append(toks)
        lines.append(ln)
    if not rows:
        raise ValueError(f"{op}: no data rows in {path!r} (the file is empty)")
    return header, rows, lines


def _number(tok: str) -> bool:
    try:
        float(tok)
        return True
    except ValueError:
        return False


def column(op, path, rows, lines, col: int, what: str, *, integral: bool = True) -> np.ndarray:
    """Column ``col`` of ``rows`` as int64, parsed exactly from the text (``"12.0"`` is 12; never through a
    float). ``integral=False``: a column with a non-integral value comes back as float64 instead."""
    strs = []
    for r, ln in zip(rows, lines):
        if col >= len(r):
            raise ValueError(f"{path}:{ln}: expected at least {col + 1} columns for {what} (got {len(r)})")
        strs.append(r[col])
    try:
        return np.asarray(strs).astype(np.int64)
    except (ValueError, OverflowError):
        pass
    bad = next((i for i, s in enumerate(strs) if not _INTEGRAL.match(s)), None)
    if bad is None:
        return np.asarray([int(s.split(".")[0]) for s in strs], dtype=np.int64)
    if not integral:
        try:
            return np.asarray(strs).astype(np.float64)
        except ValueError:
            bad = next(i for i, s in enumerate(strs) if not _number(s))
    raise ValueError(f"{path}:{lines[bad]}: cannot parse {what} {strs[bad]!r} as an integer"
                     f"{'' if integral else ' or a number'} (line: {' '.join(rows[bad])[:120]!r})")


# --------------------------------------------------------------------------------------------- checks
def seed_generator(op: str, seed) -> torch.Generator:
    return torch.Generator().manual_seed(V.integer(op, "seed", seed, minimum=0))


def ids(op: str, name: str, x, n: int | None = None) -> torch.Tensor:
    """``x`` as a 1-D int64 tensor whose values lie in [0, n) (n=None: only >= 0)."""
    x = V.tensor(op, name, x, ndim=1, dtypes=V.INDEX_DTYPES, kind="integer tensor").to(torch.int64)
    if x.numel():
        lo, hi = int(x.min()), int(x.max())
        if lo < 0 or (n is not None and hi >= n):
            rng = f"[0, {n})" if n is not None else ">= 0"
            raise ValueError(f"{op}: '{name}' ids must be in {rng} (got min {lo}, max {hi})")
    return x


def compact(*xs: torch.Tensor):
    """Relabel the ids in ``xs`` (one id space) to 0..n-1 in sorted order; returns (relabelled..., raw ids [n])."""
    raw = torch.unique(torch.cat([x.reshape(-1) for x in xs]))
    return (*[torch.searchsorted(raw, x) for x in xs], raw)


def csr(rows: torch.Tensor, cols: torch.Tensor, num_rows: int):
    """``(indptr [num_rows+1], cols)`` grouping ``cols`` by ``rows`` (stable: order within a row is kept)."""
    order = torch.sort(rows, stable=True).indices
    indptr = torch.zeros(num_rows + 1, dtype=torch.int64)
    indptr[1:] = torch.cumsum(torch.bincount(rows, minlength=num_rows), 0)
    return indptr, cols[order]


def occurrence(keys: torch.Tensor, *, last: bool) -> torch.Tensor:
    """bool mask keeping the first (``last=False``) or the last occurrence of each key."""
    uniq, inv = torch.unique(keys, return_inverse=True)
    pos = torch.arange(keys.numel())
    pick = torch.full((uniq.numel(),), -1 if last else keys.numel(), dtype=torch.int64)
    pick.scatter_reduce_(0, inv, pos, "amax" if last else "amin")
    mask = torch.zeros(keys.numel(), dtype=torch.bool)
    mask[pick] = True
    return mask


# --------------------------------------------------------------------------------------------- negatives
def ragged_sample(indptr: torch.Tensor, values: torch.Tensor, k: int, generator: torch.Generator):
    """Up to ``k`` distinct entries per CSR row, uniformly without replacement: ``([B, k] padded with -1,
    counts [B])``; a row with fewer than k entries gives all of them, in random order."""
    B = indptr.numel() - 1
    out = torch.full((B, k), -1, dtype=torch.int64)
    if values.numel() == 0 or k == 0:
        return out, torch.zeros(B, dtype=torch.int64)
    row = torch.repeat_interleave(torch.arange(B), indptr[1:] - indptr[:-1])
    order = torch.randperm(values.numel(), generator=generator)
    order = order[torch.sort(row[order], stable=True).indices]  # rows in order, a random order within a row
    rank = torch.arange(values.numel()) - indptr[row]
    take = rank < k
    out[row[take], rank[take]] = values[order][take]
    return out, (indptr[1:] - indptr[:-1]).clamp(max=k)


def _in_sorted(x: torch.Tensor, sorted_ids: torch.Tensor) -> torch.Tensor:
    """bool [len(x)]: x in ``sorted_ids`` (a sorted 1-D tensor)."""
    if sorted_ids.numel() == 0:
        return torch.zeros(x.shape, dtype=torch.bool)
    i = torch.searchsorted(sorted_ids, x).clamp(max=sorted_ids.numel() - 1)
    return sorted_ids[i] == x


def sample_distinct(op: str, anchor: torch.Tensor, k: int, pool, known: KnownSet | None,
                    generator: torch.Generator, *, chunk: int = 1 << 22) -> torch.Tensor:
    """``k`` ids per anchor, distinct within the row, never ``(anchor, id)`` in ``known``; a uniformly random
    ordered sample of the admissible ids (so any prefix is a uniform subset).

    ``pool``: an int n (ids 0..n-1) or a sorted 1-D tensor of ids. Rejection in row chunks; a row whose
    admissible set is small (< 2k, or under 5% of the pool) is enumerated exactly. A row with fewer than k
    admissible ids is filled with repeats drawn uniformly from them, a row with none with -1 (both warned).
    Membership is :meth:`hardneg.KnownSet.contains` (anchor, id) edges.
    """
    pool_t = torch.arange(pool) if isinstance(pool, int) else pool
    n = pool_t.numel()
    B = anchor.numel()
    out = torch.full((B, k), -1, dtype=torch.int64)
    if B == 0 or k == 0:
        return out
    if known is not None:
        indptr, excl = known.exclusion(anchor)
        row = torch.repeat_interleave(torch.arange(B), indptr[1:] - indptr[:-1])
        in_pool = _in_sorted(excl, pool_t)
        n_excl = torch.bincount(row[in_pool], minlength=B)
    else:
        n_excl = torch.zeros(B, dtype=torch.int64)
    admissible = n - n_excl
    small = (admissible < 2 * k) | (admissible * 20 < n)
    todo = torch.nonzero(~small).flatten()
    width = k + k // 4 + 16
    step = max(1, chunk // (k + width))
    for lo in range(0, todo.numel(), step):
        rows = todo[lo:lo + step]
        got = torch.full((rows.numel(), k), -1, dtype=torch.int64)  # pool indices accepted so far, in draw order
        live = torch.arange(rows.numel())
        for it in range(64):
            if live.numel() == 0:
                break
            R = live.numel()
            draw = torch.randint(0, n, (R, width), generator=generator)
            ok = torch.ones(R, width, dtype=torch.bool)
            if known is not None:
                ids = draw if isinstance(pool, int) else pool_t[draw]
                pairs = torch.stack([anchor[rows[live]][:, None].expand(R, width), ids], 2).view(-1, 2)
                ok = ~known.contains(pairs).view(R, width)
            if it:  # keep what was accepted before, in front
                draw = torch.cat([got[live], draw], 1)
                ok = torch.cat([draw[:, :k] >= 0, ok], 1)
            srt, idx = torch.sort(draw.to(torch.int32), dim=1, stable=True)  # equal ids adjacent, earliest first
            dup = torch.zeros_like(ok)
            dup.scatter_(1, idx[:, 1:], srt[:, 1:] == srt[:, :-1])
            ok &= ~dup
            rank = torch.cumsum(ok, 1) - 1
            new = torch.full((R, k + 1), -1, dtype=torch.int64)  # column k collects what is not kept
            new.scatter_(1, torch.where(ok & (rank < k), rank, k), draw)
            got[live] = new[:, :k]
            live = live[got[live, -1] < 0]
        out[rows] = torch.where(got >= 0, pool_t[got.clamp(min=0)], -1)
        small[rows[live]] = True
    short = none = 0
    for b in torch.nonzero(small).flatten().tolist():
        cand = pool_t
        if known is not None:
            cand = cand[~_in_sorted(cand, excl[indptr[b]:indptr[b + 1]])]
        if cand.numel() >= k:
            out[b] = cand[torch.randperm(cand.numel(), generator=generator)[:k]]
        elif cand.numel():
            short += 1
            extra = torch.randint(0, cand.numel(), (k - cand.numel(),), generator=generator)
            out[b] = torch.cat([cand[torch.randperm(cand.numel(), generator=generator)], cand[extra]])
        else:
            none += 1
    if short or none:
        warnings.warn(f"{op}: of {B} rows, {short} have fewer than {k} admissible negatives (their ids repeat) and "
                      f"{none} have none (filled with -1)", stacklevel=3)
    return out
