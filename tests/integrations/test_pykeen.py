"""The PyKEEN adapter inside a real (short) PyKEEN pipeline on Nations (shipped in the PyKEEN wheel)."""
import warnings

import pytest
import torch

pykeen = pytest.importorskip("pykeen", reason="PyKEEN is not installed (extra hardneg[pykeen])")


@pytest.fixture(scope="module")
def nations():
    from pykeen.datasets import Nations

    return Nations()


@pytest.mark.parametrize("sampler", ["topk", "uniform", "score"])
def test_pipeline_trains_with_hardneg_sampler(nations, sampler):
    from pykeen.models import DistMult
    from pykeen.pipeline import pipeline

    from hardneg.integrations.pykeen import HardNegativeSampler

    model = DistMult(triples_factory=nations.training, embedding_dim=16, random_seed=0)
    res = pipeline(dataset=nations, model=model, negative_sampler=HardNegativeSampler,
                   negative_sampler_kwargs=dict(sampler=sampler, model=model, num_negs_per_pos=4, seed=0),
                   training_kwargs=dict(num_epochs=3, batch_size=256, use_tqdm=False),
                   evaluation_kwargs=dict(use_tqdm=False, batch_size=256), random_seed=0)
    assert len(res.losses) == 3 and all(torch.isfinite(torch.tensor(res.losses)))
    mrr = res.metric_results.get_metric("both.realistic.inverse_harmonic_mean_rank")
    assert 0.0 < mrr <= 1.0


def test_negatives_are_filtered_and_follow_the_model(nations):
    from pykeen.models import ComplEx, DistMult, RotatE, TransE

    from hardneg.integrations.pykeen import HardNegativeSampler, scorer_from_pykeen

    tf = nations.training
    truth = set(map(tuple, tf.mapped_triples.tolist()))
    for cls in (DistMult, ComplEx, TransE, RotatE):
        model = cls(triples_factory=tf, embedding_dim=8, random_seed=0)
        sc = scorer_from_pykeen(model)
        batch = tf.mapped_triples[:64]
        # the scorer reproduces the model's own ranking of tails
        q = sc.query_vectors(batch[:, :2], "tail")
        from hardneg.reference.mining import scores
        ours = scores(q, sc.candidate_vectors("tail"), sc.metric)
        theirs = model.score_t(batch[:, :2]).detach().double()
        assert torch.equal(ours.argsort(1, descending=True)[:, :3], theirs.argsort(1, descending=True)[:, :3]), cls
        ns = HardNegativeSampler(mapped_triples=tf.mapped_triples, num_negs_per_pos=6, sampler="topk", model=model, seed=0)
        neg, mask = ns.sample(batch)
        assert neg.shape == (64, 6, 3)
        assert not any(tuple(x) in truth for x in neg[mask if mask is not None else slice(None)].reshape(-1, 3).tolist())
        if cls is DistMult:  # corruption keeps the relation
            assert bool((neg[:, :, 1] == batch[:, None, 1]).all())


def test_cross_device_generator_is_seeded_from_the_samplers_own(nations):
    """When the model lives on another device than the batches, sampling there uses a generator on that device,
    seeded once from the sampler's own: the same seed gives the same negatives."""
    from pykeen.models import DistMult

    from hardneg.integrations.pykeen import HardNegativeSampler

    def make():
        model = DistMult(triples_factory=nations.training, embedding_dim=8, random_seed=0)
        return HardNegativeSampler(mapped_triples=nations.training.mapped_triples, num_negs_per_pos=4,
                                   sampler="score", model=model, seed=3)

    a, b = make(), make()
    ga, gb = a._generator_on(torch.device("cpu")), b._generator_on(torch.device("cpu"))
    assert ga is a._generator_on(torch.device("cpu"))  # one per device, kept
    assert torch.equal(torch.rand(5, generator=ga), torch.rand(5, generator=gb))
    if not torch.cuda.is_available():
        pytest.skip("the cross-device branch itself needs a CUDA device")
    dev = torch.device("cuda")
    for s in (a, b):
        s._model.to(dev)
    batch = nations.training.mapped_triples[:32]
    assert torch.equal(a.sample(batch)[0], b.sample(batch)[0])


def test_without_a_model_hard_samplers_fall_back_to_filtered_uniform_and_warn_once(nations):
    from hardneg.integrations.pykeen import HardNegativeSampler

    tf = nations.training
    ns = HardNegativeSampler(mapped_triples=tf.mapped_triples, num_negs_per_pos=4, sampler="topk", seed=0)
    with pytest.warns(UserWarning, match="filtered uniform negatives.*HardNegativeTrainingLoop"):
        neg, mask = ns.sample(tf.mapped_triples[:32])
    truth = set(map(tuple, tf.mapped_triples.tolist()))
    assert mask is None and not any(tuple(x) in truth for x in neg.reshape(-1, 3).tolist())
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message="HardNegativeSampler")  # once only
        ns.sample(tf.mapped_triples[:32])


def _pipeline(nations, sampler="topk", **kw):
    from pykeen.pipeline import pipeline

    from hardneg.integrations.pykeen import HardNegativeSampler, HardNegativeTrainingLoop

    loop, epochs = kw.pop("training_loop", HardNegativeTrainingLoop), kw.pop("epochs", 4)
    return pipeline(dataset=nations, model="DistMult", model_kwargs=dict(embedding_dim=16), training_loop=loop,
                    negative_sampler=HardNegativeSampler,
                    negative_sampler_kwargs=dict(sampler=sampler, num_negs_per_pos=4, seed=0, **kw),
                    training_kwargs=dict(num_epochs=epochs, batch_size=256, use_tqdm=False),
                    evaluation_kwargs=dict(use_tqdm=False, batch_size=256), random_seed=0)


def test_pipeline_built_model_gives_harder_negatives_than_uniform(nations):
    """model="DistMult" (a name): the training loop binds the model the pipeline built; its hard negatives
    score higher under that model than filtered uniform ones."""
    from hardneg import samplers
    from hardneg.integrations.pykeen import scorer_from_pykeen

    with warnings.catch_warnings():
        warnings.filterwarnings("error", message="HardNegativeSampler", category=UserWarning)  # model bound
        res = _pipeline(nations)
    ns = res.training_loop.hardneg_sampler
    assert ns.model is res.model
    batch = nations.training.mapped_triples[:256]
    sc = scorer_from_pykeen(res.model)
    hard = ns.hardneg_sampler.sample(batch, scorer=sc, generator=torch.Generator().manual_seed(1))
    uni = samplers.create("uniform", num_negatives=4, known=ns.hardneg_sampler.known).sample(
        batch, generator=torch.Generator().manual_seed(1))
    h, u = sc.score_negatives(batch, hard).flatten(), sc.score_negatives(batch, uni).flatten()
    stderr = float((h.var() / h.numel() + u.var() / u.numel()).sqrt())
    assert float(h.mean() - u.mean()) > 5 * stderr, (float(h.mean()), float(u.mean()), stderr)


def _loop(nations, sampler, loop=None, epochs=2, **kw):
    """A training loop without the pipeline's evaluation (faster)."""
    from pykeen.models import DistMult

    from hardneg.integrations.pykeen import HardNegativeSampler, HardNegativeTrainingLoop

    model = DistMult(triples_factory=nations.training, embedding_dim=8, random_seed=0)
    tl = (loop or HardNegativeTrainingLoop)(model=model, triples_factory=nations.training,
                                            negative_sampler=HardNegativeSampler,
                                            negative_sampler_kwargs=dict(sampler=sampler, num_negs_per_pos=4, seed=0,
                                                                         **kw))
    tl.train(triples_factory=nations.training, num_epochs=epochs, batch_size=512, use_tqdm=False)
    return tl


@pytest.mark.parametrize("sampler", ["dans", "kbgan"])
def test_the_training_loop_trains_trainable_samplers(nations, sampler):
    tl = _loop(nations, sampler)
    s = tl.hardneg_sampler.hardneg_sampler
    assert s.epoch == 2 and s.step == 2 * -(-nations.training.num_triples // 512)  # batches of 512, 2 epochs
    state = s.state_dict()
    assert ("dans" in state and state["dans"]["opt_gen"]["state"]) or ("kbgan" in state and state["kbgan"]["baseline"])


def test_a_model_that_is_not_the_trained_one(nations):
    from pykeen.models import DistMult
    from pykeen.training import SLCWATrainingLoop

    other = DistMult(triples_factory=nations.training, embedding_dim=8, random_seed=1)
    with pytest.raises(ValueError, match="is not the model being trained"):
        _loop(nations, "topk", model=other)
    with pytest.warns(UserWarning, match="have not changed over 3 batches"):  # PyKEEN's own loop: detected late
        _loop(nations, "topk", loop=SLCWATrainingLoop, model=other, epochs=2)


def test_topk_pool_defaults_to_a_fraction_of_the_entities(nations):
    from hardneg.integrations.pykeen import HardNegativeSampler

    tf = nations.training  # 14 entities: the old default pool (64) covered all of them, silently uniform
    ns = HardNegativeSampler(mapped_triples=tf.mapped_triples, num_negs_per_pos=2, sampler="topk", seed=0)
    assert ns.hardneg_sampler.pool_size == 4
    wide = HardNegativeSampler(mapped_triples=tf.mapped_triples, num_negs_per_pos=2, sampler="topk", seed=0,
                               sampler_kwargs=dict(pool_size=64))
    from pykeen.models import DistMult

    wide.bind(DistMult(triples_factory=tf, embedding_dim=8, random_seed=0), _from_loop=True)
    with pytest.warns(UserWarning, match="covers all 14 candidates"):
        wide.sample(tf.mapped_triples[:8])
