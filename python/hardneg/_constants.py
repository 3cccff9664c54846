"""The one vocabulary: the names that ops, samplers, kernels and the CLI share, and the codes kernels take.

A tuple's order is the kernel code (:func:`code`): ``code(METRICS, "cos") == 1`` is ``kCos`` in
``csrc/common/common.h`` and ``METRIC_COS`` in ``kernels/mining/_tiles.py``; ``code(SIDE_MODES, "both") == 2``
is ``side_mode`` 2 in ``csrc/filtering/known_set.h``. This module imports nothing.

Words:

* *metric*: how a query vector scores a candidate vector (:mod:`hardneg.metrics`).
* *weighting*: how a score becomes a sampling weight (:func:`hardneg.ops.sample_by_score`).
* *side*: which entity of a positive (h, r, t) or (u, v) is replaced: ``"tail"`` (t / v) or ``"head"`` (h / u).
  A tail query's anchor is (h, r), a head query's (r, t).
* *side mode*: how each negative picks its side: one of the two sides, ``"both"`` (each with probability 1/2)
  or ``"bernoulli"`` (head with the relation's tph / (tph + hpt)). Public arguments keep the keyword
  ``side=`` for either.
* *strategy*: which temporal neighbours a query gets: the ``"recent"`` k, or k drawn ``"uniform"``-ly.
"""
from __future__ import annotations

METRICS = ("dot", "cos", "l2", "l1", "rotate")
WEIGHTINGS = ("softmax", "softplus")
SIDES = ("tail", "head")
SIDE_MODES = SIDES + ("both", "bernoulli")
STRATEGIES = ("recent", "uniform")


def code(names: tuple[str, ...], name: str) -> int:
    """The kernel code of ``name`` (its position in ``names``)."""
    return names.index(name)
