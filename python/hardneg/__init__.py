"""hardneg: fast, exact hard negative sampling for graph link prediction.

Public names: :mod:`hardneg.ops` (``topk_mine``, ``sample_by_score``, ``sample_from_weights``),
:func:`show_config`, :mod:`hardneg.reference` (pure-torch ground truth) and :mod:`hardneg.testing`.
"""
from __future__ import annotations

__version__ = "0.1.0"

from hardneg import ops, reference  # noqa: E402
from hardneg._config import config, show_config  # noqa: E402
from hardneg.known import Domain, KnownSet  # noqa: E402
from hardneg.temporal import TemporalGraph  # noqa: E402

__all__ = ["ops", "reference", "KnownSet", "Domain", "TemporalGraph", "show_config", "config", "__version__"]
