"""Where datasets are found: the benchmark data folder and the user cache."""
from __future__ import annotations

import os


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


def default_root() -> str:
    return os.environ.get("HARDNEG_DATASETS", os.path.join(os.path.expanduser("~"), ".cache", "hardneg", "datasets"))
