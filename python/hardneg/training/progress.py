"""Progress: a tqdm bar on a terminal; one line per evaluation when the output is redirected."""
from __future__ import annotations

import sys
import time


class Progress:
    """``enabled``: True, False, or None (a bar on a TTY, lines otherwise)."""

    def __init__(self, enabled: bool | None, *, total: int, initial: int = 0, desc: str = "", log=print):
        self.total, self.desc, self.log = total, desc, log or (lambda *a, **k: None)
        self.t0 = time.perf_counter()
        self.bar = None
        self.lines = False
        if enabled is False:
            return
        tty = sys.stderr.isatty()
        if tty:
            try:
                from tqdm.auto import tqdm

                self.bar = tqdm(total=total, initial=initial, desc=desc, unit="epoch", leave=False)
                return
            except ImportError:  # pragma: no cover - tqdm is a declared dependency
                pass
        self.lines = True

    def update(self, rec: dict, key: str) -> None:
        if self.bar is not None:
            self.bar.update(1)
            post = {"loss": round(rec["loss"], 4)}
            if f"valid_{key}" in rec:
                post[f"val_{key}"] = round(rec[f"valid_{key}"], 4)
            self.bar.set_postfix(post)
        elif self.lines and "valid" in rec:
            val = rec[f"valid_{key}"]
            self.log(f"[{self.desc}] epoch {rec['epoch']}/{self.total}  loss {rec['loss']:.4f}  valid {key} "
                     f"{val:.4f}  ({time.perf_counter() - self.t0:.0f} s)")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
