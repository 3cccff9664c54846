"""torch.compile(fullgraph=True) through the hardneg:: custom ops: full KG training steps (sampler op → model →
loss → backward) compile without a graph break and give the eager loss and gradients for the same seed; and a
CUDA-graph capture/replay of the fixed-shape sampling ops (skipped without a GPU).

``loss.backward()`` inside the compiled function needs ``torch._dynamo.config.trace_autograd_ops`` (torch 2.13).
The aot_eager backend runs dynamo, the fake implementations and AOTAutograd's forward and backward graphs, the
parts the custom ops must get right; one step also runs under inductor (which compiles C++ on this box: ~10 s
with a warm FX-graph cache, ~50 s cold on a loaded 2-core machine).
"""
import copy

import pytest
import torch

import hardneg
from hardneg import losses
from hardneg.ops import _library as L
from hardneg.samplers import Negatives
from hardneg.tasks.kg.models import create_model

H = torch.ops.hardneg
E, R, B, N_NEG = 40, 3, 12, 6
pytestmark = pytest.mark.skipif("corrupt" not in L.OPS, reason="torch without opaque objects (< 2.10)")


@pytest.fixture(autouse=True)
def _one_thread(monkeypatch):
    monkeypatch.setenv("HARDNEG_NUM_THREADS", "1")


@pytest.fixture(scope="module")
def kg():
    g = torch.Generator().manual_seed(0)
    T = torch.stack([torch.randint(0, E, (150,), generator=g), torch.randint(0, R, (150,), generator=g),
                     torch.randint(0, E, (150,), generator=g)], 1)
    return T, hardneg.KnownSet.from_triples(T, E, R)


def kg_step(kind: str, num_negatives: int):
    """One KG training step ``step(model, known, P, seed) -> loss`` through the hardneg:: ops (also timed by
    bench/compile_step.py):

    * ``"uniform"``: filtered uniform tail corruption (the uniform sampler's op) → model → self-adversarial loss;
    * ``"topk"``: top-k mining over all entities minus the known tails (the topk sampler's ops); the mined scores
      are the loss's negative scores directly (differentiable, no second scoring pass);
    * ``"score"``: score-proportional sampling (the score sampler's op) with importance weights from its log_prob.

    Each ends with ``loss.backward()`` and returns the detached loss."""
    n = num_negatives

    def uniform(model, known, P, seed):
        neg, valid = H.corrupt(P, n, model.num_entities, "tail", known.handle, seed=seed)
        pos_s, neg_s = model.forward_scores(P, Negatives(neg[..., 2], valid))
        loss = losses.self_adversarial(pos_s, neg_s, valid=valid)
        loss.backward()
        return loss.detach()

    def topk(model, known, P, seed):
        anchor = P[:, :2]
        indptr, excluded = H.known_exclusion(known.handle, anchor, "tail")
        q = model.query_vectors(anchor, "tail")
        scores, ids = H.topk_mine(q, model.candidate_vectors(), n, model.metric, indptr, excluded)
        valid = ids >= 0
        loss = losses.softplus(model.score_hrt(P), scores.masked_fill(~valid, 0.0), valid=valid)
        loss.backward()
        return loss.detach()

    def score(model, known, P, seed):
        anchor = P[:, :2]
        indptr, excluded = H.known_exclusion(known.handle, anchor, "tail")
        with torch.no_grad():
            q = model.query_vectors(anchor, "tail")
        ids, log_prob = H.sample_by_score(q, model.candidate_vectors().detach(), n, model.metric, "softmax", 1.0,
                                          indptr, excluded, True, seed)
        valid = ids >= 0
        pos_s, neg_s = model.forward_scores(P, Negatives(ids, valid))
        loss = losses.bce(pos_s, neg_s, valid=valid, weights=losses.importance_weights(log_prob, valid))
        loss.backward()
        return loss.detach()

    return {"uniform": uniform, "topk": topk, "score": score}[kind]


def _run(step, model, known, P, seed):
    model.zero_grad()
    loss = step(model, known, P, seed)
    return loss, [p.grad.clone() for p in model.parameters()]


@pytest.mark.parametrize("kind,backend", [("uniform", "aot_eager"), ("topk", "aot_eager"), ("score", "aot_eager"),
                                          ("uniform", "inductor")])
def test_compiled_kg_step_equals_eager(kg, kind, backend):
    T, K = kg
    step = kg_step(kind, N_NEG)
    torch.manual_seed(0)
    eager_model = create_model("distmult", E, R, 8)
    compiled_model = copy.deepcopy(eager_model)
    P = T[:B]
    torch._dynamo.reset()
    with torch._dynamo.config.patch(trace_autograd_ops=True):
        compiled = torch.compile(step, fullgraph=True, backend=backend)
        # a second seed reuses the graph or recompiles once, never breaks it (inductor: one seed, compile time)
        for seed in (3, 4) if backend == "aot_eager" else (3,):
            want_loss, want_grads = _run(step, eager_model, K, P, seed)
            got_loss, got_grads = _run(compiled, compiled_model, K, P, seed)
            if backend == "aot_eager":  # the eager kernels, in the same order
                assert torch.equal(got_loss, want_loss)
            else:  # inductor fuses and reorders float arithmetic
                torch.testing.assert_close(got_loss, want_loss, rtol=1e-6, atol=0.0)
            for a, b in zip(got_grads, want_grads):
                torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need a CUDA device")
@pytest.mark.xfail(reason="not yet run on a GPU: the eager id-range / NaN checks of the public entries synchronise "
                          "(hardneg._validate), which stream capture forbids; capture needs the in-kernel check "
                          "path (issue 19, part 3)", strict=False)
def test_cuda_graph_capture_and_replay(kg):
    """corrupt, topk_mine and temporal_neighbors at fixed shapes: captured once, replayed with new inputs copied
    into the static buffers, equal to eager calls."""
    T, K = kg
    dev = torch.device("cuda")
    Kc = K.to(dev)
    P = T[:B].to(dev).clone()
    q, C = torch.randn(B, 16, device=dev), torch.randn(E, 16, device=dev)
    g = hardneg.TemporalGraph(T[:, 0], T[:, 2], torch.arange(T.shape[0])).to(dev)
    nodes, times = T[:B, 0].to(dev).clone(), torch.full((B,), 100, device=dev)

    def calls():
        return (H.corrupt(P, N_NEG, E, "tail", Kc.handle, seed=5) + H.topk_mine(q, C, 4, "dot")
                + H.temporal_neighbors(g.handle, nodes, times, 3))

    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):  # warm-up outside the capture (allocations, Triton compilation)
        calls()
    torch.cuda.current_stream().wait_stream(s)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        static = calls()
    P.copy_(T[B : 2 * B].to(dev))
    q.copy_(torch.randn(B, 16, device=dev))
    nodes.copy_(T[B : 2 * B, 0].to(dev))
    graph.replay()
    torch.cuda.synchronize()
    for got, want in zip(static, calls()):
        assert torch.equal(got, want)


# ------------------------------------------------------------------------ every registered sampler, seeded
EVENTS = {n for n in hardneg.samplers.available()
          if issubclass(hardneg.samplers.get_class(n), hardneg.samplers.TemporalSampler)}
SIDES = {"bernoulli": None, "dans": "tail", "kbgan": "tail"}  # DANS' generator nets: one fixed side per call


def _sampler(name, known, side):
    opts = {"pool_size": 8} if name in ("topk", "nmiss") else {}
    side = SIDES.get(name, side)
    return hardneg.samplers.create(name, num_negatives=N_NEG, known=known, **opts,
                                   **({} if side is None else {"side": side}))


@pytest.mark.parametrize("side", ["tail", "both"])
@pytest.mark.parametrize("name", sorted(set(hardneg.samplers.available()) - EVENTS))
def test_every_sampler_compiles_a_full_step_with_a_seed(kg, name, side, monkeypatch):
    """sampler.sample(P, scorer=model, seed=s) → model → loss → backward under fullgraph=True: no graph break,
    and the negatives and the loss equal the eager step's for the same seed (both sides: the rows of each side
    are a data-dependent subset, traced with capture_dynamic_output_shape_ops)."""
    if side == "both" and name in SIDES:
        pytest.skip(f"{name} has one side mode here ({SIDES[name]!r}); covered by side='tail'")
    T, K = kg
    P = T[:B]
    torch.manual_seed(0)
    model = create_model("distmult", E, R, 8)
    samplers_ = {m: _sampler(name, K, side) for m in ("eager", "compiled")}
    if samplers_["eager"].trainable:  # DANS / KBGAN build their networks on the first call, eagerly
        for s in samplers_.values():
            s.sample(P, scorer=model, seed=1)

    def step(s, model, P, seed):
        neg = s.sample(P, scorer=model, seed=seed)
        pos_s, neg_s = model.forward_scores(P, neg)
        loss = losses.softplus(pos_s, neg_s, valid=neg.valid)
        loss.backward()
        return loss.detach(), neg.ids, neg.valid

    torch._dynamo.reset()
    dynamic = side == "both" or name == "nscaching"  # (NSCaching: the distinct anchors of a batch)
    twin = copy.deepcopy(model)
    with torch._dynamo.config.patch(trace_autograd_ops=True, capture_dynamic_output_shape_ops=dynamic):
        compiled = torch.compile(step, fullgraph=True, backend="aot_eager")
        # NSCaching: a second step reads and grows the caches the first one wrote
        for seed, batch in ((3, P), (4, T[B : 2 * B])) if name == "nscaching" else ((3, P),):
            want = step(samplers_["eager"], model, batch, seed)
            got = compiled(samplers_["compiled"], twin, batch, seed)
            assert torch.equal(got[1], want[1]) and torch.equal(got[2], want[2]), (name, seed)
            assert torch.equal(got[0], want[0])
    assert samplers_["compiled"].step == samplers_["eager"].step


@pytest.mark.parametrize("name", sorted(EVENTS) + ["ens+exclude_recent", "ens_score+exclude_history"])
def test_every_event_sampler_compiles_with_a_seed(name):
    """The temporal samplers (random, historical, inductive, ens, ens_score; ENS with its exclusions) at fixed
    event times: the compiled draw equals the eager one for the same seed."""
    g = torch.Generator().manual_seed(5)
    N, LOW = 30, 10
    src, dst = torch.randint(0, LOW, (200,), generator=g), torch.randint(LOW, N, (200,), generator=g)
    graph = hardneg.TemporalGraph(src, dst, torch.arange(200), num_nodes=N)
    opts = {"historical": {"graph": graph}, "ens": {"pool_size": 5, "hard_fraction": 0.5}, "ens_score": {},
            "inductive": {"pool": torch.arange(LOW, N, 2)},
            "ens+exclude_recent": {"pool_size": 5, "hard_fraction": 0.5, "exclude_recent": 3, "graph": graph},
            "ens_score+exclude_history": {"exclude_history": True, "graph": graph}}.get(name, {})
    name = name.split("+")[0]
    s = hardneg.samplers.create(name, num_negatives=4, num_entities=N, low=LOW, **opts)
    table = torch.randn(N, 8, generator=g)

    class scorer:  # sources' rows as queries, destinations LOW..N-1 as the candidate table
        metric = "dot"

        def query_vectors(anchor, side="tail"):
            return table[anchor]

        def candidate_vectors(side="tail"):
            return table[LOW:]

    P = torch.stack([src[:16], dst[:16]], 1)
    times = torch.full((16,), 150)

    def draw(P, times, seed):
        neg = s.sample(P, scorer=scorer, times=times, seed=seed)
        return neg.ids, neg.valid, neg.log_prob

    torch._dynamo.reset()
    with torch._dynamo.config.patch(capture_dynamic_output_shape_ops=True):
        got = torch.compile(draw, fullgraph=True, backend="aot_eager")(P, times, 3)
    want = draw(P, times, 3)
    for a, b in zip(got, want):
        assert (a is None and b is None) or torch.equal(a, b), name


def test_seed_stream_equals_the_generator_of_each_sub_seed():
    """A SeedStream's draw i is exactly what the op draws from torch.Generator().manual_seed(sub-seed i)."""
    from hardneg._random import SeedStream

    s = SeedStream(11)
    subs = [SeedStream(11).next() for _ in range(1)] + [None]
    q, c = torch.randn(5, 8), torch.randn(40, 8)
    a = hardneg.ops.sample_by_score(q, c, 4, generator=s)
    b = hardneg.ops.sample_by_score(q, c, 4, generator=torch.Generator().manual_seed(subs[0]))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    w = torch.rand(3, 9)
    t = SeedStream(2)
    t.next()  # draw 1 of the stream
    want = hardneg.ops.sample_from_weights(w, 5, replacement=False,
                                           generator=torch.Generator().manual_seed(t.next()))
    u = SeedStream(2)
    u.next()
    assert torch.equal(hardneg.ops.sample_from_weights(w, 5, replacement=False, generator=u), want)
    assert s.initial_seed() == 11 and s.count == 1


def test_seed_errors(kg):
    T, K = kg
    s = hardneg.samplers.create("uniform", num_negatives=2, known=K)
    with pytest.raises(ValueError, match="pass 'generator' or 'seed', not both"):
        s.sample(T[:3], generator=torch.Generator(), seed=1)
    with pytest.raises(ValueError, match="'seed' must be"):
        s.sample(T[:3], seed=-1)
    with pytest.raises(TypeError, match="'seed' must be"):
        s.sample(T[:3], seed=1.5)
    assert torch.equal(s.sample(T[:5], seed=7).ids, s.sample(T[:5], seed=7).ids)


def test_compiled_time_encoding_equals_eager():
    # the temporal models' encoder under torch.compile goes through the hardneg::time_encode custom op (its fake
    # shapes and its traceable backward): values and gradients equal the eager op's
    torch._dynamo.reset()
    g = torch.Generator().manual_seed(3)
    dt = 10 ** (torch.rand(5, 7, generator=g) * 6)
    w0, b0 = torch.rand(12, 1, generator=g), torch.randn(12, generator=g)

    def f(dt, w, b):
        return (hardneg.ops.time_encode(dt, w, b) * torch.linspace(-1, 1, 12)).sum()

    out = []
    for fn in (f, torch.compile(f, fullgraph=True, backend="eager")):
        w, b = w0.clone().requires_grad_(), b0.clone().requires_grad_()
        y = fn(dt, w, b)
        y.backward()
        out.append((y.detach(), w.grad, b.grad))
    for a, c in zip(*out):
        torch.testing.assert_close(a, c, rtol=1e-5, atol=1e-5)
