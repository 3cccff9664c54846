"""The KG task with trainable samplers (DANS, KBGAN): the update hook after each step, exact resume, the
R-GCN encoder they pair with, the shipped recipes, and recipe / option errors."""
import pytest
import torch

from hardneg.training import TrainConfig, Trainer

from test_training import tiny_kg

DANS = dict(dataset="tiny", model="distmult", dim=8, sampler="dans", num_negatives=6, epochs=2, lr=0.01,
            eval_every=0, batch_size=64, reciprocal=True, loss="infonce", encoder="rgcn",
            encoder_options={"num_bases": 2, "dropout": 0.2})
KBGAN = dict(dataset="tiny", model="transe", dim=8, sampler="kbgan", num_negatives=1, epochs=3, lr=0.01,
             eval_every=0, batch_size=64, loss="margin", loss_options={"margin": 1.0},
             sampler_options={"pretrain_epochs": 1, "generator_dim": 4})


@pytest.mark.parametrize("cfg", [DANS, KBGAN], ids=["dans", "kbgan"])
def test_the_task_updates_the_sampler_after_each_step(cfg):
    tr = Trainer(TrainConfig(**cfg), kg=tiny_kg(), progress=False, log=None)
    s = tr.task.sampler
    calls = []
    real = s.update

    def spy(P, neg, **kw):
        assert kw["scorer"] is tr.model  # the model being trained is the discriminator / the conditioning
        calls.append(P.shape[0])
        return real(P, neg, **kw)

    s.update = spy
    res = tr.run()
    steps = sum(1 for _ in tr.task.batches(torch.Generator().manual_seed(0)))
    assert len(calls) == cfg["epochs"] * steps == s.step
    assert s.epoch == cfg["epochs"]
    assert 0.0 < res["timings"]["sampler_share"] < 1.0


@pytest.mark.parametrize("cfg", [DANS, KBGAN], ids=["dans", "kbgan"])
def test_resume_equals_uninterrupted(tmp_path, cfg):
    """Generator / discriminator weights and optimiser states resume exactly through the task's checkpoint."""
    kg = tiny_kg()
    base = dict(cfg, epochs=3, checkpoint_every=1, seed=2)
    full = Trainer(TrainConfig(**base, checkpoint_dir=str(tmp_path / "a")), kg=kg, progress=False, log=None)
    ra = full.run()
    Trainer(TrainConfig(**dict(base, epochs=2), checkpoint_dir=str(tmp_path / "b")), kg=kg, progress=False,
            log=None).run()
    resumed = Trainer(TrainConfig(**base, checkpoint_dir=str(tmp_path / "b")), kg=kg, progress=False, log=None)
    rb = resumed.run(resume=True)
    for (k, a), (_, b) in zip(full.model.state_dict().items(), resumed.model.state_dict().items()):
        assert torch.equal(a, b), k
    sa, sb = full.task.sampler.state_dict(), resumed.task.sampler.state_dict()
    key = "dans" if "dans" in sa else "kbgan"
    nets = "nets" if key == "dans" else "generator"
    for k in sa[key][nets]:
        assert torch.equal(sa[key][nets][k], sb[key][nets][k]), k
    assert ra["test"] == rb["test"]


@pytest.mark.parametrize("sampler", ["dans", "topk"])
def test_an_encoder_step_encodes_once_for_the_sampler_without_dropout_and_once_for_the_loss(sampler):
    tr = Trainer(TrainConfig(**dict(DANS, sampler=sampler, epochs=1)), kg=tiny_kg(), progress=False, log=None)
    enc, seen = tr.model.encoder, []
    enc.register_forward_hook(lambda mod, args, out: seen.append((mod.training, torch.is_grad_enabled())))
    P = next(iter(tr.task.batches(torch.Generator().manual_seed(0))))
    tr.model.train()
    tr.task.step(P, torch.Generator().manual_seed(1))
    assert seen == [(False, False), (True, True)]  # the sampler's view (eval, no grad), then the loss's encoding
    view = tr.model.sampling_view()
    tr.model.eval()
    assert torch.equal(view.candidate_vectors("tail"), tr.model.entity_vectors().detach())
    q = view.query_vectors(P[:, :2], "tail")
    assert not q.requires_grad and torch.allclose(q, tr.model.query_vectors(P[:, :2], "tail").detach())
    assert view.relation is tr.model.relation and view.metric == tr.model.metric


def test_rgcn_layer_is_pygs_rgcnconv():
    pyg = pytest.importorskip("torch_geometric.nn", reason="PyTorch Geometric not installed (extra hardneg[pyg])")
    from hardneg.models import RGCN

    kg = tiny_kg()
    E, R = len(kg.entities), len(kg.relations)
    enc = RGCN(kg.train, E, R, 6, num_bases=3)
    lay = enc.convs[0]
    conv = pyg.RGCNConv(6, 6, 2 * R, num_bases=3)
    with torch.no_grad():
        for name in ("weight", "comp", "root"):
            getattr(conv, name).copy_(getattr(lay, name))
        lay.bias.normal_()
        conv.bias.copy_(lay.bias)
    h, r, t = kg.train.T
    x = torch.randn(E, 6)
    want = conv(x, torch.stack([torch.cat([h, t]), torch.cat([t, h])]), torch.cat([r, r + R]))
    got = lay(x, enc.means(x.dtype), enc.node, enc.node_type)
    assert torch.allclose(got, want, atol=1e-5)


@pytest.mark.parametrize("name", ["umls-dans", "wn18rr-dans", "nell-995-dans", "umls-kbgan", "wn18rr-kbgan"])
def test_shipped_recipes_validate(name):
    from hardneg.cli import load_recipe

    d = load_recipe(name)
    d.pop("compare", None)
    cfg = TrainConfig.from_dict(d)
    assert cfg.sampler in ("dans", "kbgan")


def test_recipe_and_option_errors():
    with pytest.raises(ValueError, match=r"unknown option\(s\) \['negatives'\]"):
        TrainConfig.from_dict({"dataset": "tiny", "sampler": "dans", "negatives": 20})
    with pytest.raises(ValueError, match=r"'sampler_options'.*\['pool_size'\] for sampler 'dans'"):
        TrainConfig.from_dict({"dataset": "tiny", "sampler": "dans", "sampler_options": {"pool_size": 3}})
    with pytest.raises(ValueError, match=r"unknown encoder_options \['layers'\]"):
        TrainConfig.from_dict({"dataset": "tiny", "encoder": "rgcn", "encoder_options": {"layers": 3}})
    with pytest.raises(ValueError, match="without an encoder"):
        TrainConfig.from_dict({"dataset": "tiny", "encoder_options": {"num_bases": 3}})
    with pytest.raises(ValueError, match="'num_bases' must be >= 1"):
        Trainer(TrainConfig(**dict(DANS, encoder_options={"num_bases": 0})), kg=tiny_kg(), progress=False, log=None)
