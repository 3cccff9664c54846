"""The PyKEEN adapter inside a real (short) PyKEEN pipeline on Nations (shipped in the PyKEEN wheel)."""
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


def test_hard_sampler_without_model_is_a_clear_error(nations):
    from hardneg.integrations.pykeen import HardNegativeSampler

    ns = HardNegativeSampler(mapped_triples=nations.training.mapped_triples, num_negs_per_pos=2, sampler="topk")
    with pytest.raises(ValueError, match="model"):
        ns.sample(nations.training.mapped_triples[:4])
