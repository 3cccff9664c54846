"""Benchmark the filtering family: KnownSet build, "known_contains", "corrupt" (filtered), "known_mask" and
"known_exclusion" against PyKEEN's PythonSetFilterer / BloomFilterer / BasicNegativeSampler(filtered=True)
(when pykeen is installed), torch.isin on packed keys, and the pure-torch reference.

    python bench/filtering.py            # WN18RR from ../shared/data (else a synthetic 310k-triple set) + 10M edges
    python bench/filtering.py --quick
    python bench/filtering.py --device cuda
"""
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(__file__))
from _harness import Config, Provider, main  # noqa: E402

import hardneg  # noqa: E402
from hardneg.data import find_shared_data, load_kg  # noqa: E402

_CACHE = {}


def graph(p):
    key = (p["data"], p.get("M"))
    if key in _CACHE:
        return _CACHE[key]
    if p["data"] == "wn18rr":
        root = find_shared_data()
        if root and os.path.isdir(os.path.join(root, "kg", "wn18rr")):
            kg = load_kg(os.path.join(root, "kg", "wn18rr"))
            tr = torch.cat([kg.train, kg.valid, kg.test])
            out = (tr, kg.num_entities, kg.num_relations)
        else:
            p = dict(p, data="synthetic", M=310_000)
    if p["data"] == "synthetic":
        g = torch.Generator().manual_seed(0)
        E, R, M = 40_943, 11, p.get("M", 310_000)
        tr = torch.stack([torch.randint(0, E, (M,), generator=g), torch.randint(0, R, (M,), generator=g),
                          torch.randint(0, E, (M,), generator=g)], 1)
        out = (tr, E, R)
    _CACHE[key] = out
    return out


def queries(p, tr, E, R):
    g = torch.Generator().manual_seed(1)
    Q = p["Q"]
    q = torch.stack([torch.randint(0, E, (Q,), generator=g), torch.randint(0, R, (Q,), generator=g),
                     torch.randint(0, E, (Q,), generator=g)], 1)
    half = Q // 2  # half of the queries are known triples
    q[:half] = tr[torch.randint(0, tr.shape[0], (half,), generator=g)]
    return q


def contains_ours(backend):
    def make(p, device):
        tr, E, R = graph(p)
        ks = hardneg.KnownSet.from_triples(tr, E, R).to(device)
        q = queries(p, tr, E, R).to(device)
        return lambda: ks.contains(q, backend=backend)

    return make


def contains_isin(p, device):
    tr, E, R = graph(p)
    keys = torch.unique((tr[:, 0] * R + tr[:, 1]) * E + tr[:, 2]).to(device)
    q = queries(p, tr, E, R).to(device)
    return lambda: torch.isin((q[:, 0] * R + q[:, 1]) * E + q[:, 2], keys)


def _pykeen_skip(p, device):
    try:
        import pykeen  # noqa: F401
    except ImportError:
        return "pykeen not installed (pip install pykeen)"
    return None


def pykeen_filterer(kind):
    def make(p, device):
        from pykeen.sampling.filtering import BloomFilterer, PythonSetFilterer

        tr, E, R = graph(p)
        f = (PythonSetFilterer if kind == "set" else BloomFilterer)(mapped_triples=tr)
        q = queries(p, tr, E, R)
        return lambda: f.contains(q)

    return make


def corrupt_ours(backend):
    def make(p, device):
        tr, E, R = graph(p)
        ks = hardneg.KnownSet.from_triples(tr, E, R).to(device)
        pos = tr[torch.randint(0, tr.shape[0], (p["B"],), generator=torch.Generator().manual_seed(2))].to(device)
        g = torch.Generator().manual_seed(3)
        return lambda: hardneg.ops.corrupt(pos, p["n"], E, side="both", known=ks, generator=g, backend=backend)

    return make


def corrupt_pykeen(p, device):
    from pykeen.sampling import BasicNegativeSampler
    from pykeen.triples import CoreTriplesFactory

    tr, E, R = graph(p)
    tf = CoreTriplesFactory.create(mapped_triples=tr, num_entities=E, num_relations=R)
    s = BasicNegativeSampler(mapped_triples=tf.mapped_triples, num_negs_per_pos=p["n"], filtered=True)
    pos = tr[torch.randint(0, tr.shape[0], (p["B"],), generator=torch.Generator().manual_seed(2))]
    return lambda: s.sample(pos)


def _edges(p):
    tr, E, R = graph(p)
    ed = torch.unique(tr[:, [0, 2]], dim=0)
    return ed, E


def corrupt_edges_ours(p, device):
    ed, E = _edges(p)
    ks = hardneg.KnownSet.from_edges(ed, E).to(device)
    pos = ed[torch.randint(0, ed.shape[0], (p["B"],), generator=torch.Generator().manual_seed(2))].to(device)
    g = torch.Generator().manual_seed(3)
    return lambda: hardneg.ops.corrupt(pos, p["n"], E, side="tail", known=ks, generator=g)


def pyg_negative_sampling(p, device):
    from torch_geometric.utils import negative_sampling

    ed, E = _edges(p)
    ei = ed.T.contiguous().to(device)
    want = p["B"] * p["n"]

    def f():
        out = negative_sampling(ei, num_nodes=E, num_neg_samples=want)
        f.got = out.shape[1]
        return out
    f.got = None
    return f


def _pyg_skip(p, device):
    try:
        import torch_geometric  # noqa: F401
    except ImportError:
        return "torch_geometric not installed"
    return None if p["op"] == "edges" else "n/a for this op"


def build_ours(p, device):
    g = torch.Generator().manual_seed(0)
    ed = torch.randint(0, p["V"], (p["M"], 2), generator=g).to(device)
    return lambda: hardneg.KnownSet.from_edges(ed, p["V"])


def exclusion_ours(backend):
    def make(p, device):
        tr, E, R = graph(p)
        ks = hardneg.KnownSet.from_triples(tr, E, R).to(device)
        anchor = tr[torch.randint(0, tr.shape[0], (p["B"],), generator=torch.Generator().manual_seed(4)), :2].to(device)
        return lambda: ks.exclusion(anchor, side="tail", backend=backend)

    return make


def mask_ours(backend):
    def make(p, device):
        tr, E, R = graph(p)
        ks = hardneg.KnownSet.from_triples(tr, E, R).to(device)
        g = torch.Generator().manual_seed(5)
        anchor = tr[torch.randint(0, tr.shape[0], (p["B"],), generator=g), :2].to(device)
        cand = torch.randint(0, E, (p["B"], p["n"]), generator=g).to(device)
        return lambda: ks.mask(anchor, cand, side="tail", backend=backend)

    return make


def only(*names):
    return lambda p, d: None if p["op"] in names else "n/a for this op"


PROVIDERS = [
    Provider("hardneg cpu", lambda p, d: {"contains": contains_ours("cpu"), "corrupt": corrupt_ours("cpu"),
                                          "edges": corrupt_edges_ours,
                                          "build": build_ours, "exclusion": exclusion_ours("cpu"),
                                          "mask": mask_ours("cpu")}[p["op"]](p, d), devices=("cpu",)),
    Provider("hardneg cuda", lambda p, d: {"contains": contains_ours("cuda"), "corrupt": corrupt_ours("cuda"),
                                           "edges": corrupt_edges_ours,
                                           "build": build_ours, "exclusion": exclusion_ours("cuda"),
                                           "mask": mask_ours("cuda")}[p["op"]](p, d), devices=("cuda",)),
    Provider("reference (torch searchsorted)", lambda p, d: {"contains": contains_ours("reference"),
                                                            "corrupt": corrupt_ours("reference"),
                                                            "exclusion": exclusion_ours("reference"),
                                                            "mask": mask_ours("reference")}[p["op"]](p, d),
             devices=("cpu", "cuda"), skip=only("contains", "corrupt", "exclusion", "mask")),
    Provider("torch.isin packed keys", contains_isin, devices=("cpu", "cuda"), skip=only("contains")),
    Provider("pykeen PythonSetFilterer", pykeen_filterer("set"), devices=("cpu",), baseline=True,
             skip=lambda p, d: only("contains")(p, d) or _pykeen_skip(p, d)),
    Provider("pykeen BloomFilterer", pykeen_filterer("bloom"), devices=("cpu",),
             skip=lambda p, d: only("contains")(p, d) or _pykeen_skip(p, d)),
    Provider("pykeen Basic(filtered=True)", corrupt_pykeen, devices=("cpu",), baseline=True,
             skip=lambda p, d: only("corrupt")(p, d) or _pykeen_skip(p, d)),
    Provider("PyG negative_sampling (may undershoot)", pyg_negative_sampling, devices=("cpu", "cuda"), baseline=True,
             skip=_pyg_skip),
]


def configs(quick):
    Q = 200_000 if quick else 10_000_000
    B = 10_000 if quick else 100_000
    out = []
    for dev in ("cpu", "cuda"):
        out += [
            Config(f"known_contains {Q} queries vs WN18RR", dict(op="contains", data="wn18rr", Q=Q), device=dev),
            Config(f"corrupt {B} x 64 filtered (WN18RR, side=both)", dict(op="corrupt", data="wn18rr", B=B, n=64), device=dev),
            Config(f"known_mask {B} x 64 (WN18RR)", dict(op="mask", data="wn18rr", B=B, n=64), device=dev),
            Config(f"edge negatives {B} x 64, filtered (WN18RR as a graph)", dict(op="edges", data="wn18rr", B=B, n=64),
                   device=dev),
            Config(f"known_exclusion {B} anchors (WN18RR)", dict(op="exclusion", data="wn18rr", B=B), device=dev),
        ]
    out.append(Config("KnownSet.from_edges 10M edges" if not quick else "KnownSet.from_edges 1M edges",
                      dict(op="build", data="synthetic", M=1_000_000 if quick else 10_000_000, V=2_000_000)))
    return out


def bloom_false_positive_rate():
    try:
        from pykeen.sampling.filtering import BloomFilterer
    except ImportError:
        return
    tr, E, R = graph(dict(data="wn18rr"))
    f = BloomFilterer(mapped_triples=tr)
    ks = hardneg.KnownSet.from_triples(tr, E, R)
    g = torch.Generator().manual_seed(9)
    q = torch.stack([torch.randint(0, E, (1_000_000,), generator=g), torch.randint(0, R, (1_000_000,), generator=g),
                     torch.randint(0, E, (1_000_000,), generator=g)], 1)
    truth = ks.contains(q)
    bloom = f.contains(q)
    fp = (bloom & ~truth).sum().item() / max(1, (~truth).sum().item())
    fn = (~bloom & truth).sum().item()
    print(f"\nBloomFilterer on WN18RR: false-positive rate {fp:.2e} over {(~truth).sum().item()} unknown triples, "
          f"false negatives {fn}; hardneg.KnownSet is exact ({ks.bytes_per_key:.1f} B/key)")


if __name__ == "__main__":
    main("filtering", configs, PROVIDERS)
    bloom_false_positive_rate()
