"""The engine drives any task: a toy task registered here (no engine change) trains, resumes bit-identically,
keeps the last good checkpoint, writes its files, reports progress without a TTY, and compares samplers."""
import json
import os
from dataclasses import dataclass

import pytest
import torch

from hardneg.training import Task, TrainConfig, Trainer, compare, register_task, train
from hardneg.training.config import opt


@dataclass
class ToyConfig(TrainConfig):
    task: str = opt("toy", "the toy task")
    dataset: str = opt("toy", "synthetic")
    model: str = opt("linear", "a linear model")
    dim: int = opt(4, "features")
    num_negatives: int = opt(1, "unused")
    batch_size: int = opt(16, "rows per step")
    lr: float = opt(0.05, "learning rate")
    noise: float = opt(0.0, "label noise", )


@register_task("toy")
class ToyTask(Task):
    """Least squares on synthetic data; the 'sampler' only perturbs the batch order (state: a step counter)."""

    Config = ToyConfig
    primary_metric = "mse"
    higher_is_better = False
    table_columns = [("MSE", "test.mse", "{:.4f}"), ("epochs", "epochs_trained", "{:.0f}")]
    steps_seen = 0

    def __init__(self, cfg, *, data=None, device):
        super().__init__(cfg, data=data, device=device)
        g = torch.Generator().manual_seed(123)
        if data is None:
            w = torch.randn(cfg.dim, generator=g)
            x = torch.randn(300, cfg.dim, generator=g)
            data = {"x": x, "y": x @ w + cfg.noise * torch.randn(300, generator=g)}
        self.data = data
        self.model = torch.nn.Sequential(torch.nn.Dropout(0.1), torch.nn.Linear(cfg.dim, 1))
        self.counter = 0

    def batches(self, generator):
        perm = torch.randperm(200, generator=generator)
        for s in range(0, 200, self.cfg.batch_size):
            yield perm[s : s + self.cfg.batch_size]

    def step(self, idx, generator):
        with self.clock.measure("sampler"):
            self.counter += 1
            type(self).steps_seen += 1
        x, y = self.data["x"][idx], self.data["y"][idx]
        return (self.model(x).squeeze(1) - y).pow(2).mean()

    def evaluate(self, split):
        sl = slice(200, 250) if split == "valid" else slice(250, 300)
        x, y = self.data["x"][sl], self.data["y"][sl]
        return {"mse": float((self.model(x).squeeze(1) - y).pow(2).mean())}

    def describe(self):
        return {"name": "toy", "rows": 300}

    def state_dict(self):
        return {"counter": self.counter}

    def load_state_dict(self, state):
        self.counter = state["counter"]


def test_a_registered_task_trains_and_writes_its_files(tmp_path):
    cfg = TrainConfig(task="toy", epochs=20, eval_every=2)
    assert isinstance(cfg, ToyConfig)
    res = train(cfg, output=str(tmp_path / "run"), progress=False, log=None)
    assert res["test"]["mse"] < 0.05 and res["primary_metric"] == "mse" and res["task"] == "toy"
    d = json.loads((tmp_path / "run" / "results.json").read_text())
    assert d["files"]["json"].endswith("results.json") and d["history"][1]["valid_mse"] >= 0
    assert 0 < d["timings"]["sampler_share"] < 1
    if d["files"]["plot"]:  # matplotlib installed
        assert os.path.getsize(d["files"]["plot"]) > 1000


def test_early_stopping_on_a_lower_is_better_metric():
    res = train(TrainConfig(task="toy", epochs=200, eval_every=1, patience=3, lr=0.2, noise=2.0),
                progress=False, log=None)
    assert res["stopped_early"] and res["epochs_trained"] < 200
    best = min(h["valid_mse"] for h in res["history"] if "valid_mse" in h)
    assert res["valid"]["mse"] == pytest.approx(best)  # the best model was restored


def test_resume_is_bit_identical_including_task_state_and_dropout(tmp_path):
    base = dict(task="toy", epochs=6, eval_every=2, checkpoint_every=1, seed=5)
    full = Trainer(TrainConfig(**base, checkpoint_dir=str(tmp_path / "a")), progress=False, log=None)
    ra = full.run()
    Trainer(TrainConfig(**dict(base, epochs=3), checkpoint_dir=str(tmp_path / "b")), progress=False, log=None).run()
    resumed = Trainer(TrainConfig(**base, checkpoint_dir=str(tmp_path / "b")), progress=False, log=None)
    rb = resumed.run(resume=True)
    for (k, a), (_, b) in zip(full.model.state_dict().items(), resumed.model.state_dict().items()):
        assert torch.equal(a, b), k
    assert resumed.task.counter == full.task.counter
    assert [h["loss"] for h in ra["history"]] == [h["loss"] for h in rb["history"]]


def test_a_bad_latest_checkpoint_falls_back_to_the_previous_one(tmp_path):
    cfg = dict(task="toy", epochs=2, eval_every=0, checkpoint_every=1, checkpoint_dir=str(tmp_path))
    Trainer(TrainConfig(**cfg), progress=False, log=None).run()
    assert (tmp_path / "checkpoint.pt").exists() and (tmp_path / "checkpoint.prev.pt").exists()
    (tmp_path / "checkpoint.pt").write_bytes(b"truncated")
    msgs = []
    tr = Trainer(TrainConfig(**dict(cfg, epochs=3)), progress=False, log=msgs.append)
    tr.run(resume=True)
    assert any("corrupt or truncated" in m and "checkpoint.prev.pt" in m for m in msgs)
    assert tr.epoch == 3 and any("resumed from" in m and "prev" in m for m in msgs)


def test_unusable_checkpoints_give_one_line_errors(tmp_path):
    cfg = dict(task="toy", epochs=1, eval_every=0, checkpoint_every=1, checkpoint_dir=str(tmp_path))
    with pytest.raises(ValueError, match="no checkpoint at"):
        Trainer(TrainConfig(**cfg), progress=False, log=None).run(resume=True)
    torch.save({"something": "else"}, tmp_path / "checkpoint.pt")
    with pytest.raises(ValueError, match="not a hardneg training checkpoint") as e:
        Trainer(TrainConfig(**cfg), progress=False, log=None).run(resume=True)
    assert "\n" not in str(e.value) and "checkpoint.pt" in str(e.value)
    Trainer(TrainConfig(**cfg), progress=False, log=None).run()
    with pytest.raises(ValueError, match="different config: lr: checkpoint 0.05 vs now 0.5"):
        Trainer(TrainConfig(**dict(cfg, lr=0.5)), progress=False, log=None).run(resume=True)


def test_a_checkpoint_from_before_a_new_config_field_resumes_at_that_fields_default(tmp_path):
    """A field added to the config after a checkpoint was written: the checkpoint's run used its default, so
    resuming with the default works and any other value is a different config."""
    cfg = dict(task="toy", epochs=1, eval_every=0, checkpoint_every=1, checkpoint_dir=str(tmp_path))
    Trainer(TrainConfig(**cfg), progress=False, log=None).run()
    state = torch.load(tmp_path / "checkpoint.pt", weights_only=False)
    assert state["fingerprint"].pop("grad_clip") == 0.0  # as written before 'grad_clip' existed
    torch.save(state, tmp_path / "checkpoint.pt")
    tr = Trainer(TrainConfig(**dict(cfg, epochs=2)), progress=False, log=None)
    tr.run(resume=True)
    assert tr.epoch == 2
    state = torch.load(tmp_path / "checkpoint.pt", weights_only=False)
    state["fingerprint"].pop("grad_clip")
    torch.save(state, tmp_path / "checkpoint.pt")
    with pytest.raises(ValueError, match="different config: grad_clip: checkpoint 0.0 vs now 1.0"):
        Trainer(TrainConfig(**dict(cfg, epochs=2, grad_clip=1.0)), progress=False, log=None).run(resume=True)


def test_an_unwritable_output_fails_before_training(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    if os.access(str(ro), os.W_OK):  # running as root: permissions are not enforced
        target = str(tmp_path / "file.json" / "r.json")  # a path under a regular file
        (tmp_path / "file.json").write_text("x")
    else:
        target = str(ro / "sub" / "r.json")
    before = ToyTask.steps_seen
    with pytest.raises(ValueError, match="not writable"):
        train(TrainConfig(task="toy", epochs=3), output=target, progress=False, log=None)
    assert ToyTask.steps_seen == before
    with pytest.raises(ValueError, match="checkpoint_dir .* is not writable"):
        train(TrainConfig(task="toy", epochs=3, checkpoint_every=1, checkpoint_dir=str(tmp_path / "file.json")),
              progress=False, log=None)
    assert ToyTask.steps_seen == before


def test_progress_prints_one_line_per_evaluation_without_a_tty():
    lines = []
    train(TrainConfig(task="toy", epochs=4, eval_every=2), progress=None, log=lines.append)
    evals = [m for m in lines if "valid mse" in m]
    assert len(evals) == 2 and "epoch 2/4" in evals[0] and "epoch 4/4" in evals[1]


def test_compare_prints_each_samplers_gap_to_uniform(tmp_path):
    out = compare(dict(task="toy", epochs=3, eval_every=0), ["uniform", "topk"], seeds=[0, 1],
                  output=str(tmp_path / "cmp"), progress=False, log=None)
    assert set(out["runs"]) == {"uniform", "topk"} and len(out["runs"]["topk"]) == 2
    head, uni, top = out["table"].splitlines()
    assert "Δmse" in head and uni.split()[0] == "uniform" and top.split()[0] == "topk"
    assert "±" in top and top.split()[-1].startswith(("+", "-"))
    assert out["summary"].startswith("best: ") and "seed-to-seed std" in out["summary"]
    assert json.loads((tmp_path / "cmp" / "results.json").read_text())["summary"] == out["summary"]
    # two seeds: topk against uniform, paired by seed, in the summary and the JSON
    assert "paired by seed, test mse" in out["summary"] and "topk − uniform" in out["summary"]
    assert [(p["a"], p["b"], p["n"]) for p in out["paired"]] == [("topk", "uniform", 2)]
    assert json.loads((tmp_path / "cmp" / "results.json").read_text())["paired"][0]["seeds"] == [0, 1]
    single = compare(dict(task="toy", epochs=1, eval_every=0), ["uniform", "topk"], seeds=[0], progress=False,
                     log=None)
    assert single["paired"] == [] and "paired" not in single["summary"]


def test_config_dispatch_and_errors():
    assert TrainConfig(dataset="umls").task == "kg"
    with pytest.raises(ValueError, match="unknown task 'nope'"):
        TrainConfig(task="nope")
    with pytest.raises(ValueError, match=r"unknown option\(s\) \['regularizer'\] for task 'toy'"):
        TrainConfig.from_dict({"task": "toy", "regularizer": "n3"})
    with pytest.raises(TypeError, match="'deterministic' must be a bool"):
        TrainConfig.from_dict({"task": "toy", "deterministic": "yes"})
    with pytest.raises(ValueError, match="'device' is 'cuda:7'|'device' must be"):
        Trainer(TrainConfig(task="toy", device="cuda:7"), progress=False, log=None)
    with pytest.raises(ValueError, match="'device' must be"):
        Trainer(TrainConfig(task="toy", device="tpu"), progress=False, log=None)


def test_grid_runs_every_cell_against_a_baseline(tmp_path):
    from hardneg.training import grid

    out = grid(dict(task="toy", epochs=2, eval_every=1), {"lr": [0.05, 0.2], "batch_size": [16]},
               baseline={"lr": 0.001}, output=str(tmp_path / "g"), progress=False, log=None)
    assert list(out["runs"]) == ["baseline", "lr=0.05, batch_size=16", "lr=0.2, batch_size=16"]
    assert out["runs"]["lr=0.2, batch_size=16"][0]["config"]["lr"] == 0.2
    assert "cells worse than the baseline: none" in out["summary"]  # lr 0.001 barely moves in 2 epochs
    assert (tmp_path / "g" / "results.json").exists() and "Δmse" in out["table"]
    nested = grid(dict(task="toy", epochs=1, eval_every=0, model_options={"a": 1}), {"model_options.b": [2]},
                  progress=False, log=None)
    assert nested["runs"]["b=2"][0]["config"]["model_options"] == {"a": 1, "b": 2}
    with pytest.raises(ValueError, match="'axes' must map each field to a non-empty list"):
        grid(dict(task="toy"), {"lr": []})


def test_the_plot_draws_the_tasks_plot_metrics(tmp_path, monkeypatch):
    """A task's ``plot_metrics`` reach the results and get one validation panel each (beside the loss)."""
    pytest.importorskip("matplotlib")
    import matplotlib.pyplot as plt

    monkeypatch.setattr(ToyTask, "plot_metrics", ("mse", "mae"), raising=False)
    orig_eval = ToyTask.evaluate
    monkeypatch.setattr(ToyTask, "evaluate", lambda self, split: dict(orig_eval(self, split), mae=0.5))
    panels = []
    orig = plt.subplots
    monkeypatch.setattr(plt, "subplots", lambda *a, **k: panels.append(a) or orig(*a, **k))
    res = train(TrainConfig(task="toy", epochs=2, eval_every=1), output=str(tmp_path / "run"), progress=False, log=None)
    assert res["plot_metrics"] == ["mae"] and panels[-1] == (1, 3)
    assert os.path.exists(res["files"]["plot"])


def test_deterministic_switch_is_restored_and_skips_the_nan_fill():
    from hardneg.training.engine import deterministic

    fill = torch.utils.deterministic.fill_uninitialized_memory
    before = torch.are_deterministic_algorithms_enabled()
    with deterministic(True, torch.device("cpu")):
        assert torch.are_deterministic_algorithms_enabled()
        assert torch.utils.deterministic.fill_uninitialized_memory is False
    assert torch.are_deterministic_algorithms_enabled() == before
    assert torch.utils.deterministic.fill_uninitialized_memory == fill
    with pytest.raises(RuntimeError):
        with deterministic(True, torch.device("cpu")):
            raise RuntimeError("inside")
    assert torch.are_deterministic_algorithms_enabled() == before
    assert torch.utils.deterministic.fill_uninitialized_memory == fill
