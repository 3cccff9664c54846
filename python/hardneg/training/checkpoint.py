"""Checkpoints that resume bit-identically and never leave nothing to resume from.

``CheckpointStore(dir)`` writes ``checkpoint.pt`` atomically (temporary file, fsync, rename) and keeps the
previous good one as ``checkpoint.prev.pt``: a write killed half-way leaves the last good checkpoint in
place. Loading checks the file is a hardneg checkpoint of the same run configuration; a corrupt, truncated or
foreign latest file falls back to the previous one (saying so), and when neither can be used the error is one
line naming the files.
"""
from __future__ import annotations

import os
import pickle
import zipfile

import torch

LATEST = "checkpoint.pt"
PREVIOUS = "checkpoint.prev.pt"
MAGIC = "hardneg-checkpoint-1"


class CheckpointError(ValueError):
    """A checkpoint that cannot be resumed (missing, unreadable, foreign, or from another configuration)."""


class CheckpointStore:
    def __init__(self, directory: str):
        self.dir = directory
        self.latest = os.path.join(directory, LATEST)
        self.previous = os.path.join(directory, PREVIOUS)

    def check_writable(self) -> None:
        """Create the directory and prove a file can be written there (before any training)."""
        try:
            os.makedirs(self.dir, exist_ok=True)
            probe = os.path.join(self.dir, ".hardneg-write-test")
            with open(probe, "w") as f:
                f.write("ok")
            os.remove(probe)
        except OSError as e:
            raise ValueError(f"checkpoint_dir {self.dir!r} is not writable ({e.strerror or e})") from None

    def save(self, state: dict) -> str:
        os.makedirs(self.dir, exist_ok=True)
        tmp = self.latest + ".tmp"
        torch.save({"magic": MAGIC, **state}, tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        if os.path.exists(self.latest):
            os.replace(self.latest, self.previous)
        os.replace(tmp, self.latest)
        return self.latest

    def _read(self, path: str, fingerprint: dict, map_location, defaults=None):
        try:
            state = torch.load(path, map_location=map_location, weights_only=False)
        except (pickle.UnpicklingError, zipfile.BadZipFile, EOFError, RuntimeError, OSError, AttributeError,
                ModuleNotFoundError, ValueError, TypeError) as e:
            raise CheckpointError(f"checkpoint {path!r} is corrupt or truncated ({type(e).__name__}: "
                                  f"{str(e).splitlines()[0][:120] if str(e) else 'unreadable'})") from None
        if not isinstance(state, dict) or state.get("magic") != MAGIC:
            raise CheckpointError(f"checkpoint {path!r} is not a hardneg training checkpoint")
        theirs = state.get("fingerprint", {})
        # a field added after the checkpoint was written: the run it holds used the field's default
        theirs = {**{k: v for k, v in (defaults or {}).items() if k in fingerprint and k not in theirs}, **theirs}
        if theirs != fingerprint:
            keys = sorted(k for k in set(fingerprint) | set(theirs) if theirs.get(k) != fingerprint.get(k))
            diff = ", ".join(f"{k}: checkpoint {theirs.get(k)!r} vs now {fingerprint.get(k)!r}" for k in keys)
            raise CheckpointError(f"resume: checkpoint {path!r} comes from a different config: {diff}")
        return state

    def load(self, fingerprint: dict, *, map_location=None, log=print, defaults=None) -> tuple[dict, str]:
        """(state, path) of the newest usable checkpoint. ``defaults``: field defaults, which stand in for the
        fields a checkpoint's fingerprint lacks (fields added since it was written)."""
        if not os.path.exists(self.latest) and not os.path.exists(self.previous):
            raise CheckpointError(f"resume: no checkpoint at {self.latest!r}")
        try:
            return self._read(self.latest, fingerprint, map_location, defaults), self.latest
        except CheckpointError as e:
            if "different config" in str(e) or not os.path.exists(self.previous):
                raise
            log(f"[train] {e}; resuming from the previous checkpoint {self.previous!r}")
            return self._read(self.previous, fingerprint, map_location, defaults), self.previous
