"""Public functional ops. Each validates once, resolves its backend from the registry, then runs it."""
from hardneg.ops.filtering import corrupt, known_contains, known_exclusion, known_mask
from hardneg.ops.mining import mlp_topk_mine, sample_by_score, sample_from_weights, topk_mine
from hardneg.ops.sparse import spmm
from hardneg.ops.subgraph import Subgraphs, enclosing_subgraphs
from hardneg.ops.temporal import temporal_assemble, temporal_neighbors, time_encode
from hardneg.ops import _library  # noqa: F401,E402  registers the hardneg:: custom ops

__all__ = ["topk_mine", "mlp_topk_mine", "sample_by_score", "sample_from_weights", "corrupt", "known_contains", "known_mask",
           "known_exclusion", "temporal_neighbors", "temporal_assemble", "time_encode", "enclosing_subgraphs",
           "Subgraphs", "spmm"]
