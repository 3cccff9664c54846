"""Rec task data: user-item interactions, the LightGCN given split and leave-one-out, per-user sequences,
the training CSR for full-ranking exclusion and fixed sampled candidates (1 + 99, 1 + 999).

Shapes: ``U`` users, ``I`` items (separate id spaces, both 0-based), ``M`` interactions, ``B`` evaluated users.

* Interactions are kept per user in order (grouped by user, then by time where there are timestamps, else in
  file order: SASRec files are time-ordered by construction, LightGCN files are not known to be, so
  ``time_ordered`` is False for them). A repeated (user, item) keeps its LAST occurrence (the latest one in
  that order; warned with the count), so an item is held out at most once.
* ``protocol="given"``: the train/test files as they are (LightGCN); no validation part.
  ``protocol="leave_one_out"`` (SASRec's ``data_partition``, SelfGNN/HardGNN): per user the last interaction
  is test, the second-to-last valid, the rest train; users with fewer than 3 go entirely to train (counted as
  ``train_only_users``).
* Users with no training interaction are skipped: their valid/test interactions are dropped from evaluation;
  both are counted in ``describe()``.
* :meth:`RecSplit.eval_candidates`: per evaluated user the held-out item first, then ``num_negatives`` distinct
  items drawn uniformly among the items the user never interacted with (in any part), seeded (defaults: valid
  0, test 1); membership through :class:`hardneg.KnownSet`.
"""
from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field

import numpy as np
import torch

from hardneg import _validate as V
from hardneg.data import _common as C
from hardneg.data.temporal import load_temporal_csv
from hardneg.known import KnownSet
from hardneg.tasks.temporal.data import PLACES as _TEMPORAL_PLACES

__all__ = ["SHIPPED", "PROTOCOLS", "RecDataset", "RecSplit", "find", "available", "load_dataset"]

SHIPPED = {
    "gowalla": "Gowalla check-ins, LightGCN/NGCF split: 29,858 users x 40,981 items, 810,128 train / 217,242 test",
    "games": "Amazon Video Games, SASRec format: 31,013 users x 23,715 items, 287,107 time-ordered interactions",
    "wikipedia-rec": "JODIE Wikipedia as rec: 8,227 users -> 1,000 pages with edit times (18,257 distinct pairs)",
    "uci-rec": "UCI messages as rec: senders -> receivers with message times",
}
PLACES = {"gowalla": ("rec/gowalla",), "games": ("rec/sasrec-games/Video.txt",),
          "wikipedia-rec": _TEMPORAL_PLACES["wikipedia"], "uci-rec": _TEMPORAL_PLACES["uci"]}
FORMATS = ("lightgcn", "sasrec", "interactions", "jodie")
_FORMAT_OF = {"gowalla": "lightgcn", "games": "sasrec", "wikipedia-rec": "jodie", "uci-rec": "jodie"}
PROTOCOLS = ("given", "leave_one_out")
EVAL_SEEDS = {"valid": 0, "test": 1}


@dataclass
class RecSplit:
    """Interactions of each part as [m, 2] (user, item) int64 pairs, grouped by user in order."""
    protocol: str
    num_users: int
    num_items: int
    train: torch.Tensor
    valid: torch.Tensor
    test: torch.Tensor
    train_time: torch.Tensor | None    # [m] times of each part's interactions, or None
    valid_time: torch.Tensor | None
    test_time: torch.Tensor | None
    skipped_users: torch.Tensor        # users with no training interaction (not evaluated)
    dropped_eval_interactions: int     # their valid/test interactions, removed
    train_only_users: int              # leave-one-out: users with < 3 interactions
    dataset: "RecDataset" = field(repr=False)
    _candidates: dict = field(default_factory=dict, repr=False, compare=False)

    def train_csr(self):
        """``(indptr [U+1], items)``: each user's training items, sorted and unique (full-ranking exclusion)."""
        key = torch.unique(self.train[:, 0] * self.num_items + self.train[:, 1])
        return C.csr(key // self.num_items, key % self.num_items, self.num_users)

    def history(self, part: str = "train"):
        """``(indptr [U+1], items, times or None)``: each user's interactions in order that precede ``part``:
        ``train`` or ``valid``: the training ones; ``test``: training then validation (SASRec's test input)."""
        V.choice("RecSplit.history", "part", part, ("train", "valid", "test"))
        pairs, times = self.train, self.train_time
        if part == "test" and self.valid.numel():
            pairs = torch.cat([pairs, self.valid])
            if times is not None:
                times = torch.cat([times, self.valid_time])
            order = torch.sort(pairs[:, 0], stable=True).indices
            pairs, times = pairs[order], (times[order] if times is not None else None)
        indptr, items = C.csr(pairs[:, 0], pairs[:, 1], self.num_users)
        return indptr, items, times

    def eval_candidates(self, part: str = "test", *, num_negatives: int = 99, seed: int | None = None):
        """``(users [B], items [B, 1 + num_negatives])``: column 0 the user's held-out item, then distinct
        items the user never interacted with, uniform (module docstring). Needs one held-out item per user
        (``leave_one_out``).

        Raises:
            ValueError: unknown part, ``protocol="given"``, num_negatives < 1.

        A user with fewer admissible items than ``num_negatives`` gets repeats (warned). The result is cached on
        the split (the same seed gives the same candidates; building 1 + 999 for 31k users takes seconds)."""
        op = "RecSplit.eval_candidates"
        V.choice(op, "part", part, tuple(EVAL_SEEDS))
        if self.protocol != "leave_one_out":
            raise ValueError(f"{op}: sampled candidates need one held-out item per user (protocol='leave_one_out'; "
                             f"got {self.protocol!r})")
        k = V.integer(op, "num_negatives", num_negatives, minimum=1)
        seed = EVAL_SEEDS[part] if seed is None else seed
        key = (part, k, seed)
        if key not in self._candidates:
            gen = C.seed_generator(op, seed)
            pos = self.valid if part == "valid" else self.test
            neg = C.sample_distinct(op, pos[:, 0], k, self.num_items, self.dataset.known(), gen)
            self._candidates[key] = (pos[:, 0].clone(), torch.cat([pos[:, 1:], neg], 1))
        users, items = self._candidates[key]
        return users.clone(), items.clone()

    def describe(self) -> dict:
        return {"protocol": self.protocol, "train": int(self.train.shape[0]), "valid": int(self.valid.shape[0]),
                "test": int(self.test.shape[0]), "skipped_users": int(self.skipped_users.numel()),
                "dropped_eval_interactions": self.dropped_eval_interactions,
                "train_only_users": self.train_only_users,
                "evaluated_users": int(torch.unique(self.test[:, 0]).numel())}


@dataclass
class RecDataset:
    """All interactions, grouped by user (ascending) and in order within a user (module docstring).

    ``user``/``item`` [M] int64; ``time`` [M] int64 (float64 for non-integral times) or None; ``given_test``
    [M] bool (the LightGCN test file's interactions) or None; ``user_ids``/``item_ids`` the source's ids of
    each user / item where they were relabelled, else None."""
    name: str
    num_users: int
    num_items: int
    user: torch.Tensor
    item: torch.Tensor
    time: torch.Tensor | None = None
    given_test: torch.Tensor | None = None
    time_ordered: bool = True
    duplicates_removed: int = 0
    user_ids: torch.Tensor | None = None
    item_ids: torch.Tensor | None = None
    source: str = ""
    _known: KnownSet | None = field(default=None, repr=False, compare=False)
    _splits: dict = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_interactions(cls, user, item, time=None, *, num_users: int | None = None, num_items: int | None = None,
                          given_test=None, time_ordered: bool = True, name: str = "custom", user_ids=None,
                          item_ids=None, source: str = "") -> "RecDataset":
        """Build from [M] user and item ids (kept as given, 0-based), in order. With ``time`` the order within a
        user is by time (stable), else the given order. Repeated (user, item) pairs keep the last occurrence.

        Raises:
            TypeError: non-integer ids, times not a 1-D tensor.
            ValueError: lengths differ, user or item ids out of [0, num_users) / [0, num_items).
        """
        op = "RecDataset.from_interactions"
        U = None if num_users is None else V.integer(op, "num_users", num_users, minimum=1)
        I = None if num_items is None else V.integer(op, "num_items", num_items, minimum=1)  # noqa: E741
        user, item = C.ids(op, "user", user, U), C.ids(op, "item", item, I)
        if user.numel() != item.numel() or user.numel() == 0:
            raise ValueError(f"{op}: 'user' and 'item' must have the same length > 0 (got {user.numel()}, "
                             f"{item.numel()})")
        if time is not None:
            time = V.tensor(op, "time", time, ndim=1, dtypes=(torch.int64, torch.int32, torch.float64, torch.float32))
            if time.numel() != user.numel():
                raise ValueError(f"{op}: 'time' must have one entry per interaction (got {time.numel()})")
            time = time.to(torch.float64 if time.is_floating_point() else torch.int64)
        U, I = U or int(user.max()) + 1, I or int(item.max()) + 1  # noqa: E741
        order = torch.sort(user, stable=True).indices
        if time is not None:
            order = torch.sort(time, stable=True).indices
            order = order[torch.sort(user[order], stable=True).indices]
        user, item = user[order], item[order]
        time = time[order] if time is not None else None
        given_test = torch.as_tensor(given_test, dtype=torch.bool)[order] if given_test is not None else None
        keep = C.occurrence(user * I + item, last=True)
        dups = int((~keep).sum())
        if dups:
            warnings.warn(f"{op}: removed {dups} repeated (user, item) interactions, keeping the last of each",
                          stacklevel=2)
            user, item = user[keep], item[keep]
            time = time[keep] if time is not None else None
            given_test = given_test[keep] if given_test is not None else None
        return cls(name, U, I, user, item, time, given_test, time_ordered, dups, user_ids, item_ids, source)

    @property
    def num_interactions(self) -> int:
        return self.user.numel()

    def known(self) -> KnownSet:
        """Every (user, item) interaction as a :class:`hardneg.KnownSet` of edges (built once)."""
        if self._known is None:
            pairs = torch.stack([self.user, self.item], 1)
            self._known = KnownSet.from_edges(pairs, num_sources=self.num_users, num_destinations=self.num_items)
        return self._known

    def sequences(self):
        """``(indptr [U+1], items [M], times [M] or None)``: each user's items in order (sequential models)."""
        indptr, items = C.csr(self.user, self.item, self.num_users)
        return indptr, items, self.time

    def split(self, protocol: str = "leave_one_out") -> RecSplit:
        """``"given"`` (the LightGCN files' split) or ``"leave_one_out"`` (module docstring); built once per
        protocol and cached (so its sampled evaluation candidates are built once too).

        Raises:
            ValueError: unknown protocol, ``"given"`` on data without a given split.
        """
        op = "RecDataset.split"
        V.choice(op, "protocol", protocol, PROTOCOLS)
        if protocol not in self._splits:
            self._splits[protocol] = self._split(protocol)
        return self._splits[protocol]

    def _split(self, protocol: str) -> RecSplit:
        op = "RecDataset.split"
        U = self.num_users
        count = torch.bincount(self.user, minlength=U)
        part = torch.zeros(self.num_interactions, dtype=torch.int64)  # 0 train, 1 valid, 2 test
        train_only = 0
        if protocol == "given":
            if self.given_test is None:
                raise ValueError(f"{op}: {self.name!r} has no given train/test split (a LightGCN folder has one); "
                                 f"use protocol='leave_one_out'")
            part[self.given_test] = 2
        else:
            if not self.time_ordered:
                warnings.warn(f"{op}: {self.name!r} is not known to be in time order; leave-one-out holds out the "
                              f"last items in file order", stacklevel=2)
            end = torch.cumsum(count, 0)
            eligible = count >= 3
            part[end[eligible] - 1] = 2
            part[end[eligible] - 2] = 1
            train_only = int(((count > 0) & ~eligible).sum())
        has_train = torch.bincount(self.user[part == 0], minlength=U) > 0
        skipped = torch.nonzero(~has_train).flatten()
        drop = (part > 0) & ~has_train[self.user]
        pairs = torch.stack([self.user, self.item], 1)
        rows = [(part == p) & ~drop for p in range(3)]
        times = [self.time[r] if self.time is not None else None for r in rows]
        return RecSplit(protocol, U, self.num_items, *(pairs[r] for r in rows), *times, skipped, int(drop.sum()),
                        train_only, self)

    def describe(self, split: RecSplit | None = None) -> dict:
        out = {"name": self.name, "task": "rec", "users": self.num_users, "items": self.num_items,
               "interactions": self.num_interactions,
               "density": self.num_interactions / (self.num_users * self.num_items),
               "timestamps": self.time is not None, "time_ordered": self.time_ordered,
               "duplicates_removed": self.duplicates_removed, "source": self.source}
        if split is not None:
            out["split"] = split.describe()
        return out


# ---------------------------------------------------------------------------------------------- readers
def read_lightgcn(folder: str, name: str | None = None) -> RecDataset:
    """A LightGCN/NGCF folder: ``train.txt`` and ``test.txt``, one line per user ``user item item ...``
    (0-based ids, kept; ``num_users``/``num_items`` = largest id + 1 as LightGCN computes them)."""
    parts = []
    for f in ("train.txt", "test.txt"):
        path = os.path.join(folder, f)
        if not os.path.exists(path):
            raise ValueError(f"read_lightgcn: missing {f} in {folder!r}")
        _, rows, lines = C.read_rows("read_lightgcn", path)
        users = C.column("read_lightgcn", path, rows, lines, 0, "user id")
        n = np.asarray([len(r) - 1 for r in rows])
        flat = [(tok, ln) for r, ln in zip(rows, lines) for tok in r[1:]]
        items = C.column("read_lightgcn", path, [[t] for t, _ in flat], [ln for _, ln in flat], 0, "item id")
        parts.append((np.repeat(users, n), items))
    user = torch.from_numpy(np.concatenate([parts[0][0], parts[1][0]]))
    item = torch.from_numpy(np.concatenate([parts[0][1], parts[1][1]]))
    test = torch.cat([torch.zeros(len(parts[0][0]), dtype=torch.bool), torch.ones(len(parts[1][0]), dtype=torch.bool)])
    return RecDataset.from_interactions(user, item, given_test=test, time_ordered=False,
                                        name=name or os.path.basename(os.path.normpath(folder)),
                                        source=os.path.abspath(folder))


def read_interactions(path: str, name: str | None = None) -> RecDataset:
    """A ``user item [time]`` file (whitespace or comma separated, optional header), e.g. SASRec's format
    (``user item`` per line, grouped by user, in time order). User and item ids are relabelled to 0-based
    contiguous ids in sorted order (SASRec's 1-based ids become id - 1); a third column is the time."""
    op = "read_interactions"
    _, rows, lines = C.read_rows(op, path)
    u = torch.from_numpy(C.column(op, path, rows, lines, 0, "user id"))
    i = torch.from_numpy(C.column(op, path, rows, lines, 1, "item id"))
    t = None
    if all(len(r) >= 3 for r in rows):
        t = torch.from_numpy(C.column(op, path, rows, lines, 2, "time", integral=False))
    return _relabelled(u, i, t, name or os.path.splitext(os.path.basename(path))[0], path)


def _relabelled(u, i, t, name, path) -> RecDataset:
    u, raw_u = C.compact(u)
    i, raw_i = C.compact(i)
    return RecDataset.from_interactions(u, i, t, num_users=raw_u.numel(), num_items=raw_i.numel(), name=name,
                                        user_ids=raw_u, item_ids=raw_i, source=os.path.abspath(path))


def read_jodie(path: str, name: str | None = None, *, sort: bool = False) -> RecDataset:
    """A JODIE/TGN temporal CSV as rec data: sources are users, destinations items (each relabelled in its own
    id space), event times kept."""
    ev = load_temporal_csv(path, sort=sort)
    return _relabelled(ev.src, ev.dst, ev.t, name or ev.name, path)


# ---------------------------------------------------------------------------------------------- finding
def find(name_or_path) -> tuple[str, str] | None:
    """``(path, name)`` where a shipped name (or a path) resolves locally, else None."""
    return C.locate(name_or_path, PLACES)


def available() -> list[dict]:
    return C.available("rec", SHIPPED, find)


def load_dataset(name_or_path, *, format: str | None = None, sort: bool = False) -> RecDataset:  # noqa: A002
    """A shipped name or a path: a LightGCN folder, a SASRec-format or ``user item [time]`` file, or a
    JODIE/TGN CSV (``format`` is guessed: a folder is ``lightgcn``, a CSV with a ``ts`` column ``jodie``, any
    other file ``interactions``). ``sort`` applies to JODIE files whose times go backwards.

    Raises:
        ValueError: not found (names the shipped sets), unknown format, unreadable file.
    """
    hit = find(name_or_path)
    if hit is None:
        raise C.not_found("rec", name_or_path, SHIPPED, "a LightGCN folder or a 'user item [time]' file")
    path, name = hit
    fmt = format or _FORMAT_OF.get(name)
    if fmt is None and os.path.isdir(path):
        fmt = "lightgcn"
    elif fmt is None:
        with open(path, encoding="utf-8") as f:
            fmt = "jodie" if "ts" in f.readline().replace(",", " ").split() else "interactions"
    V.choice("load_dataset", "format", fmt, FORMATS)
    if fmt == "lightgcn":
        return read_lightgcn(path, name)
    if fmt == "jodie":
        return read_jodie(path, name, sort=sort)
    ds = read_interactions(path, name)
    if fmt == "sasrec" and ds.time is not None:
        raise ValueError(f"load_dataset: a SASRec file has two columns, user and item (got a third in {path!r})")
    return ds
