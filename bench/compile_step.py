"""A KG training step through the hardneg:: custom ops, eager against torch.compile(fullgraph=True).

One step = negatives for a batch of WN18RR training triples (uniform filtered corruption, top-k mining minus the
known tails, or score-proportional sampling with importance weights; tail side) + DistMult scores + loss +
``loss.backward()`` (the steps of tests/test_compile.py, whose compiled losses equal eager), either calling the
ops directly or through the public sampler objects (``sampler:*``: ``sampler.sample(..., seed=s)``). Compiled providers
compile once while the harness warms up (that time is printed, not in the table); the table times the
compiled step against the eager one.

    python bench/compile_step.py                 # WN18RR from ../shared/data (else a synthetic graph of its size)
    python bench/compile_step.py --quick         # batch 128, d 32
"""
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))
from _harness import Config, Provider, main  # noqa: E402

from samplers import data  # noqa: E402  (bench/samplers.py: WN18RR or a synthetic graph of its size)
from test_compile import kg_step  # noqa: E402

import hardneg  # noqa: E402
from hardneg.tasks.kg.models import create_model  # noqa: E402


KINDS = ("uniform", "topk", "score", "sampler:uniform", "sampler:topk", "sampler:score")


def configs(quick):
    sizes = [dict(B=128, n=16, d=32)] if quick else [dict(B=1024, n=64, d=200)]
    return [Config(f"{kind} B={s['B']} n={s['n']} d={s['d']}", dict(kind=kind, **s))
            for s in sizes for kind in KINDS]


def sampler_step(name, n, known):
    """The same step through the public sampler object: ``sampler.sample(P, scorer=model, seed=s)`` (tail side;
    top-K pool 4n) → the model's scores → softplus loss (importance-weighted for ``score``) → backward."""
    opts = {"pool_size": 4 * n} if name == "topk" else {}
    s = hardneg.samplers.create(name, num_negatives=n, known=known, side="tail", **opts)

    def step(model, known_, P, seed):
        neg = s.sample(P, scorer=model, seed=seed)
        pos_s, neg_s = model.forward_scores(P, neg)
        w = hardneg.losses.importance_weights(neg.log_prob, neg.valid) if neg.log_prob is not None else None
        loss = hardneg.losses.softplus(pos_s, neg_s, valid=neg.valid, weights=w)
        loss.backward()
        return loss.detach()

    return step


def make(backend):
    def build(p, device):
        (tr, E, R, _), known = data()
        torch.manual_seed(0)
        model = create_model("distmult", E, R, p["d"])
        P = tr[: p["B"]]
        kind = p["kind"]
        step = sampler_step(kind.split(":")[1], p["n"], known) if kind.startswith("sampler:") else kg_step(kind, p["n"])
        if backend is not None:
            torch._dynamo.config.trace_autograd_ops = True
            step = torch.compile(step, fullgraph=True, backend=backend)
            t = time.perf_counter()
            step(model, known, P, 0)
            print(f"  [{kind}] compile ({backend}) + first call: {time.perf_counter() - t:.1f} s", flush=True)
        seed = iter(range(1, 1 << 30))

        def call():
            model.zero_grad(set_to_none=True)
            return step(model, known, P, next(seed))

        return call

    return build


PROVIDERS = [
    Provider("eager", make(None), baseline=True),
    Provider("compiled-inductor", make("inductor")),
    Provider("compiled-aot_eager", make("aot_eager")),
]

if __name__ == "__main__":
    main("compile_step", configs, PROVIDERS)
