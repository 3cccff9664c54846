"""Sharded ops and data-parallel training over 2 spawned gloo processes (the cases are in ``dist_cases.py``;
the ``case`` fixture runs them all once, in one spawn, since each spawn costs seconds of imports).

* sharded topk_mine / sample_by_score against the single-process ops (ties and exclusions across shards,
  chi-square against the exact distribution, every bad input);
* data-parallel training through the engine: DDP steps equal one process on the combined batch, only rank 0
  writes, a resumed run continues exactly, the KG task's sharded evaluation equals its single-process one.
"""
import pytest
import torch

if not torch.distributed.is_available() or not torch.distributed.is_gloo_available():
    pytest.skip("torch.distributed with gloo is not available", allow_module_level=True)

import dist_cases  # noqa: E402  (this folder is on sys.path; registers the dist_lstsq task)
from hardneg.distributed import ShardedCandidates  # noqa: E402
from hardneg.training import Task, TrainConfig, Trainer  # noqa: E402


@pytest.fixture(scope="module")
def dist_results(tmp_path_factory):
    out = tmp_path_factory.mktemp("dist")
    return dist_cases.run_cases(str(out)), out


@pytest.fixture
def case(dist_results):
    def check(name):
        results, out = dist_results
        assert results[name] == "ok", results[name]
        return out / name
    return check

def test_topk_mine_equals_single_process_with_ties_and_exclusions_across_shards(case):
    case("topk")  # also: the topk / nmiss / dns samplers on a sharded scorer equal their single-process draws


def test_sample_by_score_draws_the_exact_distribution(case):
    out = case("sample")  # chi-square of first and conditional second draws, log_prob, padding, determinism
    assert len(list(out.glob("*.pt"))) == 4


def test_bad_inputs(case):
    case("bad")  # different d / dtype across ranks, ranges not tiling [0, N), exclusions >= N, no group


def test_no_process_group():
    assert not torch.distributed.is_initialized()
    with pytest.raises(RuntimeError, match="no torch.distributed process group is initialised"):
        ShardedCandidates.from_local(torch.randn(3, 2))
    with pytest.raises(RuntimeError, match="no torch.distributed process group is initialised"):
        ShardedCandidates(torch.randn(3, 2), 0, 3, 3)


def _one_process(over):
    tr = Trainer(TrainConfig.from_dict({"task": "dist_lstsq", **over}), progress=False, log=None)
    assert tr.dp is None
    return tr, tr.run()


@pytest.mark.parametrize("name,batch_size,rows", [("ddp16", 16, 31), ("ddp15", 15, 30)])
def test_two_ddp_steps_equal_one_process_with_the_combined_batch(case, name, batch_size, rows):
    out = case(name)  # 2 steps: [8 | 8] + [8 | 7], or [8 | 7] twice (uneven shards)
    got = torch.load(out / "rank0.pt")
    one, res = _one_process({"epochs": 1, "batch_size": batch_size, "rows": rows})
    for k, v in one.model.state_dict().items():
        torch.testing.assert_close(got["state"][k], v, rtol=1e-5, atol=1e-6)
    assert got["loss"] == pytest.approx(res["history"][-1]["loss"], rel=1e-5)
    assert got["seen"] == 16  # rank 0's share: 8 + 8
    assert (out / "run" / "results.json").exists()  # written by rank 0


def test_a_global_batch_smaller_than_the_world_is_skipped(case):
    assert torch.load(case("skip") / "rank0.pt")["seen"] == 16  # 31 rows = 15 + 15 + 1: rank 0 sees 8 + 8


def test_resume_continues_exactly(case):
    case("resume")


def test_resume_with_another_world_size_is_refused(case):
    ck = str(case("ckpt") / "ck")
    one = Trainer(TrainConfig.from_dict({"task": "dist_lstsq", "epochs": 2, "checkpoint_dir": ck,
                                         "checkpoint_every": 1}), progress=False, log=None)
    with pytest.raises(ValueError, match="written by 2 process"):
        one.run(resume=True)


def test_kg_sharded_evaluation_equals_single_process(case):
    case("kg")


def test_non_tensor_batches_need_shard_batch():
    with pytest.raises(NotImplementedError, match="define shard_batch"):
        Task(None, device=torch.device("cpu")).shard_batch([1, 2], 0, 2)


# ----------------------------------------------------------------------------- the row-sharded layout
def test_sharded_embedding_lookups_gradients_and_per_rank_mining(case):
    case("embedding")  # also: bad ids raise on every rank, a rank with no ids takes part, exclude on one rank


@pytest.mark.parametrize("name,over", [("kg_sharded_adagrad", {"optimizer": "adagrad"}),
                                       ("kg_sharded_adam", {"optimizer": "adam", "model": "transe", "lr": 0.01})])
def test_sharded_kg_training_equals_one_process_with_the_whole_table(case, name, over):
    """2 ranks × their rows of the entity table (sparse Adagrad / dense Adam on the owning rank, hard negatives
    mined over the shards, n3 regularisation, collective evaluation) = one process, whole table, same batches."""
    from kg.test_training import tiny_kg

    got = torch.load(case(name) / "rank0.pt")
    cfg = TrainConfig.from_dict({**dist_cases.SHARDED_KG, **over})
    one = Trainer(cfg, data=tiny_kg(), progress=False, log=None)
    res = one.run()
    torch.testing.assert_close(got["entity"], one.model.entity.weight.detach(), rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(got["relation"], one.model.relation.weight.detach(), rtol=1e-4, atol=1e-5)
    assert got["history"] == pytest.approx([h["loss"] for h in res["history"]], rel=1e-4)
    for split in ("valid", "test"):
        assert got[split]["mrr"] == pytest.approx(res[split]["mrr"], rel=1e-6)
        assert got[split]["count"] == res[split]["count"]
    from hardneg.training.export import FILE

    saved = torch.load(case(name) / "run" / FILE)  # rank 0 wrote the whole table, gathered from both ranks
    torch.testing.assert_close(saved["entity"]["weight"], got["entity"])


def test_sharded_kg_resume_continues_exactly(case):
    case("kg_sharded_resume")


def test_sharded_layout_errors():
    from kg.test_training import tiny_kg

    base = {**dist_cases.SHARDED_KG, "entity_layout": "sharded"}
    with pytest.raises(ValueError, match="needs a data-parallel run"):
        Trainer(TrainConfig.from_dict(base), data=tiny_kg(), progress=False, log=None)
    for over, why in (({"training_mode": "1vsall"}, "training_mode must be 'slcwa'"),
                      ({"encoder": "rgcn"}, "an encoder needs the whole entity table"),
                      ({"grad_clip": 1.0}, "grad_clip"),
                      ({"sampler": "kbgan", "sampler_options": {}}, "the trainable sampler 'kbgan'")):
        with pytest.raises(ValueError, match=f"entity_layout='sharded' does not work here: {why}"):
            TrainConfig.from_dict({**base, **over}).validate()
    with pytest.raises(ValueError, match="'entity_layout' must be one of"):
        TrainConfig.from_dict({**base, "entity_layout": "rows"}).validate()
    from hardneg.distributed import ShardedEmbedding

    with pytest.raises(RuntimeError, match="no torch.distributed process group is initialised"):
        ShardedEmbedding(10, 4)


# ----------------------------------------------------------------------------- the other tasks
@pytest.mark.parametrize("name", [n for n, _, _ in dist_cases.TASK_RUNS])
def test_linkpred_and_rec_train_data_parallel(case, name):
    """2 ranks train the task to the same model (SEAL's frozen GCN embedding included) and the same metrics;
    rank 0 writes the run."""
    got = torch.load(case(name) / "rank0.pt", weights_only=False)["res"]
    assert got["world_size"] == 2 and (case(name) / "run" / "results.json").exists()
    for split in ("valid", "test"):
        assert got[split], split
    assert all(h["loss"] == h["loss"] for h in got["history"])  # finite, not NaN


def test_temporal_is_refused_before_the_process_group(monkeypatch):
    """A torchrun launch of the temporal task fails at once with the reason, not at its first step."""
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(ValueError, match="task 'temporal' cannot train data-parallel .*TGN's memory"):
        Trainer(TrainConfig.from_dict({"task": "temporal"}), progress=False, log=None)
    assert not torch.distributed.is_initialized()
