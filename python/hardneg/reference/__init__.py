"""Pure-torch ground truth for every op, with the same names as :mod:`hardneg.ops`.

Readable and exact (float64 where precision matters); slow and memory-hungry by design.
"""
from hardneg.reference.mining import mlp_topk_mine, pair_scores, sample_by_score, sample_from_weights, scores, topk_mine

__all__ = ["scores", "pair_scores", "topk_mine", "mlp_topk_mine", "sample_by_score", "sample_from_weights"]
