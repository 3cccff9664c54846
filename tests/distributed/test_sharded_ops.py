"""Sharded topk_mine / sample_by_score over 2 spawned gloo processes, against the single-process ops."""
import pytest
import torch

import hardneg
from hardneg.distributed import ShardedCandidates

pytest.importorskip("torch.distributed")
if not torch.distributed.is_available() or not torch.distributed.is_gloo_available():
    pytest.skip("torch.distributed with gloo is not available", allow_module_level=True)

import dist_cases as cases  # noqa: E402  (this folder is on sys.path: pytest rootdir-less import)


def test_topk_mine_equals_single_process_with_ties_and_exclusions_across_shards():
    cases.run_world(cases.topk_matches_single_process)


def test_sample_by_score_draws_the_exact_distribution(tmp_path):
    cases.run_world(cases.sample_matches_distribution, str(tmp_path))
    assert len(list(tmp_path.glob("*.pt"))) == 4


def test_bad_inputs():
    cases.run_world(cases.bad_inputs)


def test_no_process_group():
    assert not torch.distributed.is_initialized()
    with pytest.raises(RuntimeError, match="no torch.distributed process group is initialised"):
        ShardedCandidates.from_local(torch.randn(3, 2))
    with pytest.raises(RuntimeError, match="no torch.distributed process group is initialised"):
        ShardedCandidates(torch.randn(3, 2), 0, 3, 3)
