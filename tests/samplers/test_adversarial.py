"""DANS and KBGAN: what each promises beyond the generic sampler contract (tests/samplers/test_samplers_generic.py):
the pathway split, continuous negatives, learning through ``update``, pretraining, exact checkpoints, the
candidate-set softmax and its REINFORCE step, and every documented error."""
import pytest
import torch

from hardneg import samplers
from hardneg.models import DistMult, TransE

from test_sampler_invariants import E, R, kg as graph

D = 8


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


@pytest.fixture(scope="module")
def kg():
    return graph()


def model(seed=0):
    torch.manual_seed(seed)
    return DistMult(E, R, D)


# ------------------------------------------------------------------------------------------------------ DANS
def test_dans_split_and_entity_mode(kg):
    tr, known = kg
    s = samplers.create("dans", num_negatives=20, known=known, side="tail")
    assert (s.entity_negatives, s.relation_negatives) == (5, 5)  # the paper's 5 + 5 + 10 uniform
    neg = s.sample(tr[:64], scorer=model(), generator=gen())
    assert neg.ids.shape == (64, 20) and bool(neg.valid.all()) and neg.vectors is None
    truth = set(map(tuple, tr.tolist()))
    assert not [t for t in neg.triples(tr[:64]).reshape(-1, 3).tolist() if tuple(t) in truth]
    assert samplers.create("dans", num_negatives=5, known=known).entity_negatives + \
        samplers.create("dans", num_negatives=5, known=known).relation_negatives == 3


@pytest.mark.parametrize("match_metric", [None, "l2", "cos"])
def test_dans_maps_fakes_to_the_nearest_entities(kg, match_metric):
    """mode="entity" with match_k=1 returns, for each fake, the best admissible entity by the decoder's metric
    (DistMult: the dot product) or by ``match_metric``."""
    tr, known = kg
    m = model()
    s = samplers.create("dans", num_negatives=4, known=known, side="tail", entity_negatives=2, relation_negatives=2,
                        match_metric=match_metric)
    P = tr[:16]
    neg = s.sample(P, scorer=m, generator=gen(3))
    fE, fR = s._last["groups"][0]["fakes"]
    fakes = torch.cat([fE.reshape(16, 2, -1), fR.reshape(16, 2, -1)], 1).detach()
    C = m.entity_vectors().detach()
    if match_metric is None:
        scores = fakes @ C.T  # [16, 4, E], DistMult's metric is the dot product
    elif match_metric == "l2":
        scores = -(fakes[:, :, None, :] - C[None, None]).pow(2).sum(-1)
    else:
        scores = torch.nn.functional.cosine_similarity(fakes[:, :, None, :], C[None, None], dim=-1)
    ptr, idx = known.exclusion(P[:, :2], side="tail")
    for b in range(16):
        banned = set(idx[ptr[b]: ptr[b + 1]].tolist()) | {int(P[b, 2])}
        for j in range(4):
            best = max((float(scores[b, j, e]), -e) for e in range(E) if e not in banned)
            assert int(neg.ids[b, j]) == -best[1]


def test_dans_embedding_mode_feeds_vectors_to_the_model(kg):
    tr, known = kg
    m = model()
    s = samplers.create("dans", num_negatives=6, known=known, mode="embedding", side="tail")
    P = tr[:32]
    neg = s.sample(P, scorer=m, generator=gen())
    k = s.entity_negatives + s.relation_negatives
    assert neg.vectors.shape == (32, 6, D)
    assert bool(neg.vector_mask[:, :k].all()) and not bool(neg.vector_mask[:, k:].any())
    assert bool((neg.ids[:, :k] == -1).all()) and bool(neg.valid.all())
    pos_s, neg_s = m.forward_scores(P, neg)
    q = m.query_vectors(P[:, :2], "tail")
    assert torch.allclose(neg_s[:, :k], (q[:, None, :] * neg.vectors[:, :k]).sum(-1), atol=1e-6)
    assert torch.allclose(neg_s, m.score_negatives(P, neg), atol=1e-6)
    neg_s.sum().backward()  # the model's loss consumes vectors; the generator is not in this graph
    assert all(p.grad is None for p in s.nets.parameters())


def test_dans_update_trains_generator_and_discriminator(kg):
    tr, known = kg
    m = model()
    s = samplers.create("dans", num_negatives=8, known=known)
    g = gen()
    neg = s.sample(tr[:64], scorer=m, generator=g)
    before = {k: v.clone() for k, v in s.nets.state_dict().items()}
    stats = s.update(tr[:64], neg, scorer=m, generator=g)
    assert set(stats) == {"disc_loss", "gen_loss"}
    after = s.nets.state_dict()
    for net in ("gen_entity", "gen_relation", "disc"):
        assert any(not torch.equal(before[k], after[k]) for k in before if k.startswith(net)), net
    assert s.update(tr[:64], neg, scorer=m, generator=g) is None  # the hand-over is consumed


def test_dans_pretraining_gives_uniform_negatives(kg):
    tr, known = kg
    s = samplers.create("dans", num_negatives=6, known=known, pretrain_epochs=2)
    u = samplers.create("uniform", num_negatives=6, known=known)
    m = model()
    for epoch in (1, 2):
        s.on_epoch_start(epoch)
        assert s.pretraining
        a, b = s.sample(tr[:40], scorer=m, generator=gen(epoch)), u.sample(tr[:40], generator=gen(epoch))
        assert torch.equal(a.ids, b.ids)
        assert s.update(tr[:40], a, scorer=m, generator=gen()) is not None  # the GAN trains meanwhile
    s.on_epoch_start(3)
    assert not s.pretraining


@pytest.mark.parametrize("name", ["dans", "kbgan"])
def test_state_dict_resumes_training_exactly(kg, name):
    """Networks, optimiser states, baselines and the epoch all travel in state_dict()."""
    tr, known = kg
    m = TransE(E, R, D) if name == "kbgan" else model()
    a = samplers.create(name, num_negatives=4, known=known)
    for i in range(3):
        neg = a.sample(tr[:50], scorer=m, generator=gen(i))
        a.update(tr[:50], neg, scorer=m, generator=gen(10 + i))
    a.on_epoch_start(4)
    b = samplers.create(name, num_negatives=4, known=known)
    b.load_state_dict(a.state_dict())
    assert b.epoch == 4
    for s in (a, b):
        neg = s.sample(tr[:50], scorer=m, generator=gen(7))
        s.update(tr[:50], neg, scorer=m, generator=gen(8))
    x = a.sample(tr[:50], scorer=m, generator=gen(9))
    y = b.sample(tr[:50], scorer=m, generator=gen(9))
    assert torch.equal(x.ids, y.ids)
    if x.log_prob is not None:
        assert torch.equal(x.log_prob, y.log_prob)


# ------------------------------------------------------------------------------------------------------ KBGAN
def test_kbgan_draws_from_the_softmax_over_its_candidate_set(kg):
    tr, known = kg
    s = samplers.create("kbgan", num_negatives=3, known=known, candidates=7, temperature=0.5)
    P = tr[:30]
    neg = s.sample(P, scorer=TransE(E, R, D), generator=gen())
    G = s.gen.scorer()
    for grp in s._last["groups"]:
        rows, side, cand = grp["rows"], grp["side"], grp["cand"]
        anchor = P[rows][:, :2] if side == "tail" else P[rows][:, 1:]
        lsm = torch.log_softmax(G.score_candidates(anchor, cand, side) / 0.5, 1)
        j = grp["choice"]
        assert torch.equal(neg.ids[rows], cand.gather(1, j))
        assert torch.allclose(neg.log_prob[rows], lsm.gather(1, j).float(), atol=1e-5)
    truth = set(map(tuple, tr.tolist()))
    assert not [t for t in neg.triples(P).reshape(-1, 3).tolist() if tuple(t) in truth]


def test_kbgan_reinforce_moves_probability_towards_rewarded_negatives(kg):
    """With a discriminator that rewards one entity, the generator's log-probability of that entity rises."""
    tr, known = kg
    P = tr[:64]
    s = samplers.create("kbgan", num_negatives=1, known=known, candidates=None, side="tail", gen_lr=0.05)
    target = 7

    class Rewarder(samplers.DistMultScorer):
        def score_negatives(self, positives, negatives):
            return (negatives.ids == target).float() * 10.0

    rew = Rewarder(torch.randn(E, D), torch.randn(R, D))

    def logp_target():
        G = s.gen.scorer()
        q = G.query_vectors(P[:, :2], "tail")
        return torch.log_softmax(q @ G.candidate_vectors("tail").T, 1)[:, target].mean().item()

    first = logp_target()
    for i in range(30):
        neg = s.sample(P, scorer=rew, generator=gen(i))
        stats = s.update(P, neg, scorer=rew, generator=gen(i))
    assert stats is not None and "baseline" in stats
    assert logp_target() > first + 0.5


@pytest.mark.parametrize("loss", ["softmax", "logistic"])
def test_kbgan_pretrains_its_generator(kg, loss):
    """Pretraining moves the generator, leaves the base model's uniform negatives those of a uniform sampler
    (the softmax loss draws its candidate sets from a stream of its own) and repeats for the same seed."""
    tr, known = kg
    P = tr[:32]
    weights = []
    for _ in range(2):
        s = samplers.create("kbgan", num_negatives=2, known=known, pretrain_epochs=1, pretrain_loss=loss)
        s.on_epoch_start(1)
        before = s.gen.entity.weight.detach().clone()
        m = TransE(E, R, D)
        g = gen(5)
        neg = s.sample(P, scorer=m, generator=g)
        stats = s.update(P, neg, scorer=m, generator=g)
        assert "gen_pretrain_loss" in stats and not torch.equal(before, s.gen.entity.weight)
        after = s.sample(P, scorer=m, generator=g)
        weights.append(s.gen.entity.weight.detach().clone())
    u = samplers.create("uniform", num_negatives=2, known=known)
    g = gen(5)
    assert torch.equal(neg.ids, u.sample(P, generator=g).ids) and torch.equal(after.ids, u.sample(P, generator=g).ids)
    assert torch.equal(*weights)


def test_kbgan_softmax_pretraining_over_all_entities_is_the_filtered_cross_entropy(kg):
    """candidates=None: the loss is −log softmax of the positive against every entity, the other known tails of
    its (head, relation) left out, as a brute-force loop computes it."""
    tr, known = kg
    P = tr[:24]
    s = samplers.create("kbgan", num_negatives=1, known=known, pretrain_epochs=1, candidates=None, side="tail")
    G = s.gen.scorer()
    truth = set(map(tuple, tr.tolist()))
    want = []
    for h, r, t in P.tolist():
        sc = (G.query_vectors(torch.tensor([[h, r]]), "tail") @ G.candidate_vectors("tail").T)[0]
        keep = [e for e in range(E) if e == t or (h, r, e) not in truth]
        want.append(-torch.log_softmax(sc[keep], 0)[keep.index(t)])
    got = s._pretrain_loss(P, None, gen())
    assert torch.allclose(got, torch.stack(want).mean(), atol=1e-5)


def test_kbgan_softmax_pretraining_over_candidate_sets(kg):
    """candidates=N_s: each positive against N_s filtered corruptions of its tail: the loss lies between 0 and
    log(N_s + 1) at a flat generator and falls as the generator learns the positives."""
    tr, known = kg
    P = tr[:64]
    s = samplers.create("kbgan", num_negatives=1, known=known, pretrain_epochs=1, candidates=5, side="tail",
                        gen_lr=0.05)
    with torch.no_grad():
        s.gen.entity.weight.zero_()
    flat = s._pretrain_loss(P, None, gen()).item()
    assert abs(flat - torch.log(torch.tensor(6.0)).item()) < 1e-5  # all 6 logits equal
    s.gen.reset_parameters(gen(1))
    first = s._pretrain_loss(P, None, gen()).item()
    for i in range(40):
        s.step = i
        loss = s._pretrain_loss(P, None, gen())
        s.opt.zero_grad()
        loss.backward()
        s.opt.step()
    assert s._pretrain_loss(P, None, gen()).item() < first - 0.3


# ------------------------------------------------------------------------------------------------------ errors
@pytest.mark.parametrize("name", ["dans", "kbgan"])
def test_without_the_model_is_a_clear_error(kg, name):
    tr, known = kg
    s = samplers.create(name, num_negatives=2, known=known)
    with pytest.raises(ValueError, match="needs the model being trained"):
        s.sample(tr[:4], generator=gen())


def test_kbgan_update_without_the_discriminator(kg):
    tr, known = kg
    s = samplers.create("kbgan", num_negatives=2, known=known)
    neg = s.sample(tr[:4], scorer=TransE(E, R, D), generator=gen())
    with pytest.raises(ValueError, match="needs the model being trained"):
        s.update(tr[:4], neg, scorer=None)


def test_update_with_other_negatives(kg):
    tr, known = kg
    s = samplers.create("dans", num_negatives=2, known=known)
    m = model()
    s.sample(tr[:4], scorer=m, generator=gen())
    other = samplers.create("uniform", num_negatives=2, known=known).sample(tr[:4], generator=gen())
    with pytest.raises(ValueError, match="last sample"):
        s.update(tr[:4], other, scorer=m)


def test_dans_dim_mismatch(kg):
    tr, known = kg
    s = samplers.create("dans", num_negatives=2, known=known, dim=16)
    with pytest.raises(ValueError, match="16-dimensional \\('dim'\\).*8-dimensional"):
        s.sample(tr[:4], scorer=model(), generator=gen())
    s = samplers.create("dans", num_negatives=2, known=known)
    s.sample(tr[:4], scorer=model(), generator=gen())
    torch.manual_seed(0)
    with pytest.raises(ValueError, match="must match"):  # networks built for d = 8, then a d = 12 model
        s.sample(tr[:4], scorer=DistMult(E, R, 12), generator=gen())


def test_kbgan_generator_discriminator_mismatch(kg):
    tr, known = kg
    with pytest.raises(ValueError, match="generator model scores 30 entities but num_entities is 40"):
        samplers.create("kbgan", num_negatives=2, known=known, generator_model=DistMult(30, R, D))
    s = samplers.create("kbgan", num_negatives=2, num_entities=E, num_relations=R)
    with pytest.raises(ValueError, match="num_entities is 40"):
        s.sample(tr[:4], scorer=TransE(50, R, D), generator=gen())
    with pytest.raises(TypeError, match="'generator_model'"):
        samplers.create("kbgan", num_negatives=2, known=known, generator_model=3)
    with pytest.raises(ValueError, match="'generator_model'"):
        samplers.create("kbgan", num_negatives=2, known=known, generator_model="transe")
    with pytest.raises(ValueError, match="'num_entities' and 'num_relations'"):
        samplers.create("kbgan", num_negatives=2)


def test_dans_option_errors(kg):
    tr, known = kg
    with pytest.raises(ValueError, match="'entity_negatives' \\+ 'relation_negatives'"):
        samplers.create("dans", num_negatives=4, known=known, entity_negatives=3, relation_negatives=3)
    with pytest.raises(ValueError, match="'mode'"):
        samplers.create("dans", num_negatives=4, known=known, mode="vectors")
    with pytest.raises(ValueError, match="'match_metric'"):
        samplers.create("dans", num_negatives=4, known=known, match_metric="euclid")
    s = samplers.create("dans", num_negatives=2, known=known)
    with pytest.raises(TypeError, match="relation embeddings"):
        s.sample(tr[:4], scorer=_NoRelations(), generator=gen())
    with pytest.raises(ValueError, match="unknown option\\(s\\) \\['pool'\\] for sampler 'dans'"):
        samplers.create("dans", num_negatives=4, known=known, pool=3)


class _NoRelations(samplers.Scorer):
    metric = "dot"

    def __init__(self):
        self.t = torch.randn(E, D)

    def query_vectors(self, anchor, side="tail"):
        return self.t[anchor[:, 0]]

    def candidate_vectors(self, side="tail"):
        return self.t
