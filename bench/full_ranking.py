"""Benchmark full-ranking evaluation (Recall/NDCG@20 over all items, each user's training items excluded).

    python bench/full_ranking.py            # Gowalla: 29,858 users x 40,981 items, d=64, K=20 (needs the data)
    python bench/full_ranking.py --quick    # synthetic 3,000 users x 5,000 items

Providers (all compute the same Recall@20 and NDCG@20 from the same top-20 lists, in batches of users):

* ``hardneg full_ranking``: :func:`hardneg.tasks.rec.evaluation.full_ranking`, i.e. fused ``topk_mine`` with the
  training items as the exclusion CSR; memory O(batch · K), no users x items matrix.
* ``torch matmul+mask+topk``: LightGCN-PyTorch's evaluation: ``U[b] @ I.T``, training items set to −inf,
  ``torch.topk`` (batch of ``b`` users; the baseline).
* ``recbole-style full sort``: RecBole's full-ranking path: the score matrix of the batch, history set to −inf,
  a dense positive matrix [b, I] and a full ``torch.sort`` of each row (RecBole sorts all items when rank
  metrics are requested), then the top 20 gathered.

Embeddings are random N(0, 1) (the ranking work does not depend on training); the exclusions and held-out
items are Gowalla's real train/test split.
"""
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(__file__))
from _harness import Config, Provider, main  # noqa: E402

from hardneg.data import _common as C  # noqa: E402
from hardneg.tasks.rec.evaluation import full_ranking  # noqa: E402

K = 20
_CACHE: dict = {}


def inputs(p):
    key = (p["data"], p["d"])
    if key in _CACHE:
        return _CACHE[key]
    g = torch.Generator().manual_seed(0)
    if p["data"] == "gowalla":
        from hardneg.tasks.rec.data import load_dataset

        sp = load_dataset("gowalla").split("given")
        U, I, train, test = sp.num_users, sp.num_items, sp.train, sp.test  # noqa: E741
    else:
        U, I = p["U"], p["I"]  # noqa: E741
        train = torch.stack([torch.randint(0, U, (U * 27,), generator=g), torch.randint(0, I, (U * 27,), generator=g)], 1)
        train = torch.unique(train, dim=0)
        test = torch.stack([torch.arange(U), torch.randint(0, I, (U,), generator=g)], 1)
        test = test[~torch.isin(test[:, 0] * I + test[:, 1], train[:, 0] * I + train[:, 1])]
    users = torch.unique(test[:, 0])
    truth = C.csr(torch.searchsorted(users, test[:, 0].contiguous()), test[:, 1], users.numel())
    m = torch.isin(train[:, 0], users)
    exclude = C.csr(torch.searchsorted(users, train[m, 0].contiguous()), train[m, 1], users.numel())
    q = torch.randn(users.numel(), p["d"], generator=g)
    items = torch.randn(I, p["d"], generator=g)
    _CACHE[key] = (q, items, truth, exclude)
    return _CACHE[key]


def _metrics(ids_all, truth, I):  # noqa: E741
    """Recall@20 and NDCG@20 from top-K ids [B, K] (shared by the dense baselines)."""
    B = ids_all.shape[0]
    row = torch.repeat_interleave(torch.arange(B), truth[0].diff())
    tkey = row * I + truth[1]
    key = torch.arange(B)[:, None] * I + ids_all
    pos = torch.searchsorted(tkey, key).clamp_max(tkey.numel() - 1)
    hit = (tkey[pos] == key).double()
    n = truth[0].diff()
    disc = 1.0 / torch.log2(torch.arange(K, dtype=torch.float64) + 2)
    idcg = torch.cumsum(disc, 0)[n.clamp(max=K) - 1]
    return float((hit.sum(1) / n).mean()), float(((hit * disc).sum(1) / idcg).mean())


def ours(p, device):
    q, items, truth, exclude = inputs(p)
    return lambda: full_ranking(q, items, truth, exclude, ks=(K,), batch_size=p["b"])


def _dense(p, sort):
    q, items, truth, exclude = inputs(p)
    B, I, b = q.shape[0], items.shape[0], p["b"]  # noqa: E741

    def f():
        out = []
        for s in range(0, B, b):
            e = min(B, s + b)
            sc = q[s:e] @ items.T
            ptr = exclude[0][s:e + 1]
            rows = torch.repeat_interleave(torch.arange(e - s), ptr.diff())
            sc[rows, exclude[1][ptr[0]:ptr[-1]]] = float("-inf")
            if sort:  # RecBole: a dense positive matrix and a full sort of each row
                tp = truth[0][s:e + 1]
                pos = torch.zeros_like(sc, dtype=torch.bool)
                pos[torch.repeat_interleave(torch.arange(e - s), tp.diff()), truth[1][tp[0]:tp[-1]]] = True
                order = torch.sort(sc, dim=1, descending=True).indices[:, :K]
                pos.gather(1, order)
                out.append(order)
            else:
                out.append(torch.topk(sc, K, dim=1).indices)
        return _metrics(torch.cat(out), truth, I)

    return f


def torch_topk(p, device):
    return _dense(p, sort=False)


def recbole_sort(p, device):
    return _dense(p, sort=True)


def configs(quick):
    if quick:
        return [Config("synthetic U=3000 I=5000 d=64 b=512", dict(data="synthetic", U=3000, I=5000, d=64, b=512))]
    return [Config(f"gowalla U=29858 I=40981 d=64 K=20 b={b}", dict(data="gowalla", d=64, b=b),
                   flops=2.0 * 29858 * 40981 * 64) for b in (2048, 256)]


PROVIDERS = [
    Provider("torch matmul+mask+topk", torch_topk, baseline=True),
    Provider("recbole-style full sort", recbole_sort,
             skip=lambda p, d: "one batch size is enough for the full sort (about 1 min per call)" if p["b"] != 2048 else None),
    Provider("hardneg full_ranking", ours),
]

if __name__ == "__main__":
    main("full_ranking", configs, PROVIDERS)
