"""The training loop: learns on Nations, resume == uninterrupted, config errors, results JSON; models."""
import json
import math

import pytest
import torch

import hardneg
from hardneg.data import load_kg
from hardneg.models import create_model
from hardneg.training import TrainConfig, Trainer, train

from conftest import shared_path


def tiny_kg(seed=0):
    """A small structured KG (two relations with a pattern a model can learn), no files needed."""
    from hardneg.data.kg import KG

    g = torch.Generator().manual_seed(seed)
    E = 30
    h = torch.randint(0, E, (400,), generator=g)
    r = torch.randint(0, 2, (400,), generator=g)
    t = torch.where(r == 0, (h + 1) % E, (h * 7 + 3) % E)
    tr = torch.unique(torch.stack([h, r, t], 1), dim=0)
    perm = torch.randperm(tr.shape[0], generator=g)
    tr = tr[perm]
    n = tr.shape[0]
    return KG("tiny", tr[: n - 40], tr[n - 40 : n - 20], tr[n - 20 :], [str(i) for i in range(E)], ["r0", "r1"])


def umls():
    try:
        return hardneg.data.load_dataset("umls")
    except ValueError:
        return load_kg(shared_path("data", "kg", "umls"), "umls")


def nations():
    try:
        return hardneg.data.load_dataset("nations")
    except ValueError:
        return load_kg(shared_path("data", "kg", "nations"), "nations")


@pytest.mark.parametrize("sampler", ["uniform", "topk"])
def test_training_beats_a_random_model_on_nations(sampler):
    kg = nations()
    cfg = TrainConfig(dataset="nations", model="distmult", dim=32, sampler=sampler, num_negatives=8, epochs=15,
                      lr=0.01, eval_every=0, batch_size=128)
    before = Trainer(cfg, kg=kg, progress=False).evaluate("test")["mrr"]
    res = train(cfg, kg=kg, progress=False)
    assert res["test"]["mrr"] > before + 0.15, (before, res["test"]["mrr"])
    assert res["test"]["mrr"] > 0.5


def test_resume_equals_uninterrupted(tmp_path):
    kg = tiny_kg()
    base = dict(dataset="tiny", model="complex", dim=8, sampler="nscaching", num_negatives=4, epochs=6, lr=0.01,
                eval_every=2, batch_size=64, checkpoint_every=1, seed=3)
    full = Trainer(TrainConfig(**base, checkpoint_dir=str(tmp_path / "a")), kg=kg, progress=False)
    ra = full.run()
    # a run "killed" after 3 epochs, then resumed
    part = Trainer(TrainConfig(**dict(base, epochs=3), checkpoint_dir=str(tmp_path / "b")), kg=kg, progress=False)
    part.run()
    resumed = Trainer(TrainConfig(**base, checkpoint_dir=str(tmp_path / "b")), kg=kg, progress=False)
    rb = resumed.run(resume=True)
    for (k, a), (_, b) in zip(full.model.state_dict().items(), resumed.model.state_dict().items()):
        assert torch.equal(a, b), k
    assert ra["test"] == rb["test"] and [h["loss"] for h in ra["history"]] == [h["loss"] for h in rb["history"]]


def test_checkpoint_from_a_different_config(tmp_path):
    kg = tiny_kg()
    cfg = dict(dataset="tiny", dim=8, epochs=1, eval_every=0, checkpoint_every=1, checkpoint_dir=str(tmp_path))
    Trainer(TrainConfig(**cfg), kg=kg, progress=False).run()
    other = Trainer(TrainConfig(**dict(cfg, lr=0.5)), kg=kg, progress=False)
    with pytest.raises(ValueError, match="different config: lr: checkpoint 0.001 vs now 0.5"):
        other.run(resume=True)
    with pytest.raises(ValueError, match="no checkpoint"):
        Trainer(TrainConfig(**dict(cfg, checkpoint_dir=str(tmp_path / "none"))), kg=kg, progress=False).run(resume=True)


def test_results_json_and_early_stopping(tmp_path):
    kg = tiny_kg()
    out = tmp_path / "r.json"
    res = train(dict(dataset="tiny", dim=8, epochs=50, eval_every=1, patience=2, lr=0.05, sampler="score",
                     importance_weighting=True, regularizer="n3", reg_weight=1e-3), kg=kg, output=str(out), progress=False)
    d = json.loads(out.read_text())
    assert set(d) >= {"config", "valid", "test", "timings", "versions", "history"}
    assert set(d["test"]) >= {"mrr", "hits@1", "hits@3", "hits@10", "mr"}
    assert d["versions"]["torch"] == torch.__version__ and 0 <= d["timings"]["sampler_share"] <= 1
    if d["stopped_early"]:
        assert d["epochs_trained"] < 50 and d["best_epoch"] <= d["epochs_trained"] - 2


CASES = [("distmult", "softplus", {}), ("distmult", "bce", {"label_smoothing": 0.1}), ("complex", "margin", {}),
         ("complex", "softplus", {}), ("transe", "margin", {"margin": 1.0}), ("transe", "sans", {"margin": 3.0}),
         ("rotate", "sans", {"margin": 6.0}), ("rotate", "softplus", {"margin": 6.0})]


@pytest.mark.parametrize("model,loss,opts", CASES)
def test_every_model_and_loss_trains(model, loss, opts):
    kg = umls()
    cfg = TrainConfig(dataset="umls", model=model, loss=loss, loss_options=opts, dim=32, epochs=10, lr=0.02,
                      eval_every=0, num_negatives=8, sampler="topk" if model == "complex" else "uniform")
    before = Trainer(cfg, kg=kg, progress=False).evaluate("test")["mrr"]
    res = train(cfg, kg=kg, progress=False)
    assert math.isfinite(res["test"]["mrr"]) and res["test"]["mrr"] > before + 0.2, (before, res["test"]["mrr"])


def test_models_are_scorers():
    for name in ("transe", "distmult", "complex", "rotate"):
        m = create_model(name, 12, 3, 4)
        tr = torch.tensor([[0, 1, 2], [3, 2, 5]])
        with torch.no_grad():
            s = m.score_hrt(tr)
            q = m.query_vectors(tr[:, 1:], "head")
            alt = hardneg.samplers.pairwise(q, m.candidate_vectors("head")[tr[:, 0]], m.metric)
        torch.testing.assert_close(s, alt)
    with pytest.raises(ValueError, match="unknown model 'conve'"):
        create_model("conve", 3, 3)


def test_rgcn_encoder_trains():
    pytest.importorskip("torch_geometric", reason="PyTorch Geometric not installed (extra hardneg[pyg])")
    kg = tiny_kg()
    res = train(dict(dataset="tiny", model="distmult", encoder="rgcn", dim=8, epochs=3, eval_every=0,
                     sampler="topk", num_negatives=4), kg=kg, progress=False)
    assert math.isfinite(res["test"]["mrr"])


def test_config_errors():
    with pytest.raises(ValueError, match="unknown option"):
        TrainConfig.from_dict({"modle": "distmult"})
    with pytest.raises(ValueError, match="unknown sampler 'hard'"):
        TrainConfig.from_dict({"sampler": "hard"})
    with pytest.raises(ValueError, match="unknown loss 'hinge'"):
        TrainConfig.from_dict({"loss": "hinge"})
    with pytest.raises(ValueError, match="unknown model"):
        TrainConfig.from_dict({"model": "conve"})
    with pytest.raises(ValueError, match="'lr'"):
        TrainConfig.from_dict({"lr": -1})
    with pytest.raises(ValueError, match="optimizer"):
        TrainConfig.from_dict({"optimizer": "lbfgs"})


def test_same_seed_same_model_with_two_threads():
    """Top-K hard negatives amplify last-bit differences; deterministic kernels keep runs identical."""
    kg = umls()
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        cfg = TrainConfig(dataset="umls", model="distmult", dim=64, sampler="topk", num_negatives=16, epochs=3,
                          eval_every=0, lr=0.01)
        models = []
        for _ in range(2):
            tr = Trainer(cfg, kg=kg, progress=False, log=None)
            for _ in range(3):
                tr.train_epoch()
            models.append(tr.model.state_dict())
        for k in models[0]:
            assert torch.equal(models[0][k], models[1][k]), k
    finally:
        torch.set_num_threads(threads)


@pytest.mark.parametrize("mode", ["slcwa", "1vsall", "kvsall"])
def test_reciprocal_and_full_scoring_modes_train(mode):
    kg = nations()
    cfg = TrainConfig(dataset="nations", model="complex", dim=16, reciprocal=True, training_mode=mode,
                      sampler="topk", num_negatives=4, epochs=12, lr=0.05, eval_every=0, batch_size=128,
                      regularizer="n3", reg_weight=0.01, label_smoothing=0.1 if mode != "slcwa" else 0.0)
    before = Trainer(cfg, kg=kg, progress=False, log=None).evaluate("test")["mrr"]
    res = train(cfg, kg=kg, progress=False, log=None)
    assert res["test"]["mrr"] > before + 0.15 and res["test"]["count"] == 2 * kg.test.shape[0]
    assert "inverse relation" in res["protocol"]


def test_reciprocal_errors():
    from hardneg.evaluation import evaluate

    kg = tiny_kg()
    rec = create_model("distmult", 30, 2, 4, reciprocal=True)
    plain = create_model("distmult", 30, 2, 4)
    known = hardneg.KnownSet.from_triples(kg.train, 30, 2)
    with pytest.raises(ValueError, match="trained with reciprocal relations; pass reciprocal=True"):
        evaluate(rec, kg.test, None)
    with pytest.raises(ValueError, match="needs a model trained with reciprocal relations"):
        evaluate(plain, kg.test, known, reciprocal=True)
    with pytest.raises(ValueError, match="only tails are corrupted"):
        TrainConfig.from_dict({"reciprocal": True, "sampler_options": {"side": "head"}})
    with pytest.raises(ValueError, match="'training_mode' must be one of"):
        TrainConfig.from_dict({"training_mode": "kvs"})
    with pytest.raises(ValueError, match="'dropout' must be"):
        create_model("distmult", 30, 2, 4, dropout=1.5)
