"""Per-step cost of every hardneg sampler in a real training step, against uniform filtered sampling and
PyKEEN's BasicNegativeSampler(filtered=True).

One step = draw negatives for a batch of 1024 WN18RR training triples (64 per positive, head or tail) + DistMult
(d = 200) scores of positives and negatives + softplus loss + backward + Adam update. The model trains across
calls, so hard samplers mine against a moving model, as in training. A second table times the sampler alone.

    python bench/samplers.py                 # WN18RR from ../shared/data (else a synthetic graph of its size)
    python bench/samplers.py --quick         # batch 128, d 32
"""
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(__file__))
from _harness import Config, Provider, main  # noqa: E402

import hardneg  # noqa: E402
from hardneg import losses, samplers  # noqa: E402
from hardneg.data import find_shared_data, load_kg  # noqa: E402

_DATA = {}


def data():
    if "kg" not in _DATA:
        root = find_shared_data()
        if root and os.path.isdir(os.path.join(root, "kg", "wn18rr")):
            kg = load_kg(os.path.join(root, "kg", "wn18rr"))
            _DATA["kg"] = (kg.train, kg.num_entities, kg.num_relations, "WN18RR")
        else:
            g = torch.Generator().manual_seed(0)
            E, R, M = 40_943, 11, 86_835
            tr = torch.stack([torch.randint(0, E, (M,), generator=g), torch.randint(0, R, (M,), generator=g),
                              torch.randint(0, E, (M,), generator=g)], 1)
            _DATA["kg"] = (torch.unique(tr, dim=0), E, R, "synthetic WN18RR-sized")
        tr, E, R, _ = _DATA["kg"]
        _DATA["known"] = hardneg.KnownSet.from_triples(tr, E, R)
    return _DATA["kg"], _DATA["known"]


class Setup:
    def __init__(self, p, sampler_fn):
        (tr, E, R, _), known = data()
        torch.manual_seed(0)
        d = p["d"]
        self.ent = torch.nn.Embedding(E, d)
        self.rel = torch.nn.Embedding(R, d)
        torch.nn.init.normal_(self.ent.weight, std=d ** -0.5)
        torch.nn.init.normal_(self.rel.weight, std=1.0)
        self.opt = torch.optim.Adam(list(self.ent.parameters()) + list(self.rel.parameters()), lr=1e-3)
        self.tr, self.known, self.B, self.n = tr, known, p["B"], p["n"]
        self.g = torch.Generator().manual_seed(0)
        self.sampler_fn = sampler_fn
        self.i = 0

    def batch(self):
        idx = torch.randint(0, self.tr.shape[0], (self.B,), generator=self.g)
        return self.tr[idx]

    def score(self, t):
        return (self.ent(t[..., 0]) * self.rel(t[..., 1]) * self.ent(t[..., 2])).sum(-1)

    def step(self):
        P = self.batch()
        neg_t, valid = self.sampler_fn(self, P)
        loss = losses.softplus(self.score(P), self.score(neg_t.clamp_min(0)), valid=valid)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()

    def sample_only(self):
        self.sampler_fn(self, self.batch())


def hardneg_sampler(name, **opts):
    def make(p, device):
        (tr, E, R, _), known = data()
        s = samplers.create(name, num_negatives=p["n"], known=known, **opts)

        def fn(st, P):
            sc = samplers.DistMultScorer(st.ent.weight, st.rel.weight) if s.requires_scorer else None
            neg = s.sample(P, scorer=sc, generator=st.g)
            return neg.triples(P), neg.valid

        st = Setup(p, fn)
        return st.step if p["what"] == "step" else st.sample_only
    return make


def pykeen_basic(p, device):
    from pykeen.sampling import BasicNegativeSampler

    (tr, E, R, _), known = data()
    ns = BasicNegativeSampler(mapped_triples=tr, num_entities=E, num_relations=R, num_negs_per_pos=p["n"],
                              filtered=True, corruption_scheme=("head", "tail"))

    def fn(st, P):
        neg, mask = ns.sample(P)
        if mask is None:
            mask = torch.ones(neg.shape[:2], dtype=torch.bool)
        return neg, mask.view(neg.shape[:2])

    st = Setup(p, fn)
    return st.step if p["what"] == "step" else st.sample_only


def _no_pykeen(p, d):
    try:
        import pykeen  # noqa: F401
    except ImportError:
        return "pykeen not installed"
    return None


PROVIDERS = [Provider("uniform", hardneg_sampler("uniform"), baseline=True)] + [
    Provider(name, hardneg_sampler(name, **opts)) for name, opts in [
        ("bernoulli", {}), ("typed", {}), ("in_batch", {}), ("khop", {}), ("topk", {"pool_size": 64}),
        ("score", {}), ("nmiss", {}), ("nscaching", {}), ("mixed", {"schedule": "constant", "end": 0.5})]
] + [Provider("pykeen-basic-filtered", pykeen_basic, skip=_no_pykeen)]


def configs(quick):
    B, d, n = (128, 32, 16) if quick else (1024, 200, 64)
    (tr, E, R, what), _ = data()
    return [Config(f"training step ({what}, DistMult d={d}, B={B}, n={n})", dict(what="step", B=B, d=d, n=n)),
            Config(f"sampler only ({what}, B={B}, n={n})", dict(what="sample", B=B, d=d, n=n))]


if __name__ == "__main__":
    main("samplers", configs, PROVIDERS)
