"""Command line: ``hardneg demo`` (the main job until the KG trainer lands) and ``hardneg info``."""
from __future__ import annotations

import argparse
import os
import sys
import time

import torch


def _demo_graph(args):
    from hardneg.data import find_shared_data, load_kg

    data = find_shared_data()
    if data and os.path.isdir(os.path.join(data, "kg", "umls")):
        kg = load_kg(os.path.join(data, "kg", "umls"), "umls")
        return kg.train, kg.num_entities, kg.num_relations, f"UMLS ({data}/kg/umls)"
    g = torch.Generator().manual_seed(0)
    E, R, M = 135, 46, 5216
    tr = torch.stack([torch.randint(0, E, (M,), generator=g), torch.randint(0, R, (M,), generator=g),
                      torch.randint(0, E, (M,), generator=g)], 1)
    return tr, E, R, "a synthetic UMLS-sized graph (../shared/data not found)"


def cmd_demo(args) -> int:
    """Mine hard negatives for every (h, r) query of a KG with a DistMult scorer, never returning a known tail."""
    import hardneg
    from hardneg.ops import sample_by_score, topk_mine

    hardneg.show_config()
    triples, E, R, what = _demo_graph(args)
    print(f"\n[demo] graph: {what}: {E} entities, {R} relations, {triples.shape[0]} train triples")
    g = torch.Generator().manual_seed(0)
    ent = torch.randn(E, args.dim, generator=g) / args.dim**0.5
    rel = torch.randn(R, args.dim, generator=g)
    hr = torch.unique(triples[:, :2], dim=0)
    known = hardneg.KnownSet.from_triples(triples, E, R)
    ex = known.exclusion(hr, side="tail")  # all known tails of each (h, r) query, as a CSR
    query = ent[hr[:, 0]] * rel[hr[:, 1]]  # DistMult: score(h, r, t) = <e_h * w_r, e_t>
    t = time.perf_counter()
    s, ids = topk_mine(query, ent, args.k, exclude=ex)
    t_top = time.perf_counter() - t
    t = time.perf_counter()
    sid, lp = sample_by_score(query, ent, args.k, exclude=ex, generator=g, weighting="softplus")
    t_samp = time.perf_counter() - t
    truth = set(map(tuple, triples.tolist()))  # brute-force check, independent of KnownSet
    bad = sum((int(h), int(r), int(x)) in truth for (h, r), row_ids in zip(hr.tolist(), ids.tolist()) for x in row_ids if x >= 0)
    bad += sum((int(h), int(r), int(x)) in truth for (h, r), row_ids in zip(hr.tolist(), sid.tolist()) for x in row_ids if x >= 0)
    print(f"[demo] {hr.shape[0]} (h, r) queries: top-{args.k} hard negatives in {t_top * 1e3:.1f} ms, "
          f"{args.k} loss-proportional samples in {t_samp * 1e3:.1f} ms; known positives returned: {bad}")
    t = time.perf_counter()
    neg, valid = hardneg.ops.corrupt(triples, 64, E, side="bernoulli", known=known, generator=g)
    t_cor = time.perf_counter() - t
    leaked = sum(tuple(x) in truth for x in neg[valid].tolist())
    print(f"[demo] Bernoulli filtered corruption, {triples.shape[0]} x 64: {t_cor * 1e3:.1f} ms, "
          f"known triples among them: {leaked}, rows with no admissible negative: {int((~valid).sum())}")
    bad += leaked
    h, r = hr[0].tolist()
    print(f"[demo] query (h={h}, r={r}): hardest tails {ids[0, :8].tolist()} scores {[round(x, 3) for x in s[0, :8].tolist()]}")
    # a larger synthetic mining run, against torch's materialised matmul + topk
    B, N, d, k = args.big
    q = torch.randn(B, d, generator=g)
    c = torch.randn(N, d, generator=g)
    ex2 = (torch.arange(B + 1) * 20, torch.randint(0, N, (B * 20,), generator=g))
    topk_mine(q[:8], c[:1000], k)
    t = time.perf_counter()
    topk_mine(q, c, k, exclude=ex2)
    t_ours = time.perf_counter() - t
    t = time.perf_counter()
    sc = q @ c.T
    sc[torch.repeat_interleave(torch.arange(B), 20), ex2[1]] = float("-inf")
    torch.topk(sc, k, dim=1)
    t_torch = time.perf_counter() - t
    del sc
    print(f"[demo] B={B} N={N} d={d} k={k}, 20 exclusions/query: hardneg {t_ours:.3f} s, torch matmul+topk "
          f"{t_torch:.3f} s ({t_torch / t_ours:.1f}x)")
    return 0 if bad == 0 else 1


def cmd_info(args) -> int:
    import hardneg

    hardneg.show_config()
    return 0


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="hardneg", description="Fast, exact hard negative sampling for link prediction")
    sub = ap.add_subparsers(dest="cmd")
    d = sub.add_parser("demo", help="mine hard negatives on UMLS (or a synthetic graph) and time them")
    d.add_argument("--dim", type=int, default=64)
    d.add_argument("-k", type=int, default=32)
    d.add_argument("--big", type=int, nargs=4, default=[1024, 200_000, 64, 32], metavar=("B", "N", "D", "K"))
    d.set_defaults(func=cmd_demo)
    i = sub.add_parser("info", help="print the build and the backends of each op")
    i.set_defaults(func=cmd_info)
    return ap


def main(argv=None) -> int:
    ap = build_parser()
    args = ap.parse_args(argv)
    if not getattr(args, "func", None):
        args = ap.parse_args(["demo"] + (argv or sys.argv[1:]))
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
