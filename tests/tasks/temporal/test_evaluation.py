"""Temporal metrics: AP / AUC as scikit-learn defines them, tile-wise ranks against brute force with ties."""
import math

import pytest
import torch

from hardneg.tasks.temporal import evaluation as E


def test_ap_auc_small_cases():
    y = torch.tensor([1, 0, 1, 0])
    assert E.average_precision(y, torch.tensor([0.9, 0.8, 0.7, 0.1])) == pytest.approx((1 + 2 / 3) / 2)
    assert E.roc_auc(y, torch.tensor([0.9, 0.8, 0.7, 0.1])) == pytest.approx(0.75)
    # all tied: AUC 1/2, AP = the positive rate
    assert E.roc_auc(y, torch.zeros(4)) == pytest.approx(0.5)
    assert E.average_precision(y, torch.zeros(4)) == pytest.approx(0.5)
    assert math.isnan(E.average_precision(torch.zeros(3), torch.rand(3)))
    assert math.isnan(E.roc_auc(torch.ones(3), torch.rand(3)))
    with pytest.raises(ValueError, match="same length"):
        E.roc_auc(torch.ones(3), torch.rand(4))


def test_ap_auc_match_scikit_learn_with_ties():
    sk = pytest.importorskip("sklearn.metrics")
    g = torch.Generator().manual_seed(0)
    for _ in range(5):
        y = (torch.rand(300, generator=g) < 0.4).long()
        s = torch.randint(0, 12, (300,), generator=g).double()  # many ties
        assert E.average_precision(y, s) == pytest.approx(sk.average_precision_score(y.numpy(), s.numpy()))
        assert E.roc_auc(y, s) == pytest.approx(sk.roc_auc_score(y.numpy(), s.numpy()))


def test_batched_ap_auc_averages_batches_and_keeps_the_global_value():
    acc = E.BatchedAPAUC()
    acc.add(torch.tensor([3.0, 2.0]), torch.tensor([1.0, 0.0]))  # perfect
    acc.add(torch.tensor([0.0, 1.0]), torch.tensor([2.0, 3.0]))  # reversed
    r = acc.result()
    assert r["auc"] == pytest.approx(0.5) and r["count"] == 4
    assert r["auc_global"] == pytest.approx(E.roc_auc(torch.tensor([1, 1, 1, 1, 0, 0, 0, 0]),
                                                      torch.tensor([3.0, 2, 0, 1, 1, 0, 2, 3])))
    assert math.isnan(E.BatchedAPAUC().result()["ap"])


def combine(a, c):
    return torch.relu(a + c).sum(-1)


def brute(q, C, target, exclude):
    s = combine(q[:, None, :], C[None]).float()
    true = s[torch.arange(q.shape[0]), target]
    gt, eq = [], []
    for b in range(q.shape[0]):
        skip = set(exclude[b]) | {int(target[b])}
        keep = torch.tensor([i not in skip for i in range(C.shape[0])])
        gt.append(int(((s[b] > true[b]) & keep).sum()))
        eq.append(int(((s[b] == true[b]) & keep).sum()))
    return torch.tensor(gt), torch.tensor(eq)


@pytest.mark.parametrize("tile", [1, 3, 7, 1000])
def test_rank_counts_match_brute_force_with_ties_and_exclusions(tile):
    g = torch.Generator().manual_seed(1)
    B, N, d = 13, 17, 5
    q = torch.randint(-2, 3, (B, d), generator=g).float()  # small integers: many exact ties
    C = torch.randint(-2, 3, (N, d), generator=g).float()
    C[5] = C[3]
    target = torch.randint(0, N, (B,), generator=g)
    excl = [[int(x) for x in torch.randint(0, N, (int(torch.randint(0, 4, (1,), generator=g)),), generator=g)]
            for _ in range(B)]
    ptr = torch.tensor([0] + [len(e) for e in excl]).cumsum(0)
    idx = torch.tensor([x for e in excl for x in e], dtype=torch.long)
    gt, eq = E.rank_counts(combine, q, C, target, exclude=(ptr, idx), tile=tile)
    bg, be = brute(q, C, target, excl)
    assert torch.equal(gt, bg) and torch.equal(eq, be)


@pytest.mark.parametrize("tile", [1, 4, 1000])
def test_rank_counts_with_pair_offsets_match_brute_force(tile):
    """``offsets``: listed (row, candidate) pairs score with ``candidates[col] + delta`` (a decoder's pair
    term), the target included; a pair listed twice with the same delta counts once."""
    g = torch.Generator().manual_seed(2)
    B, N, d = 11, 15, 4
    q = torch.randint(-2, 3, (B, d), generator=g).float()
    C = torch.randint(-2, 3, (N, d), generator=g).float()
    target = torch.randint(0, N, (B,), generator=g)
    row = torch.randint(0, B, (30,), generator=g)
    col = torch.where(torch.arange(30) < 8, target[row], torch.randint(0, N, (30,), generator=g))
    key = row * N + col
    uniq, inv = torch.unique(key, return_inverse=True)
    delta = torch.randint(-2, 3, (uniq.numel(), d), generator=g).float()[inv]  # one delta per distinct pair
    row, col, delta = torch.cat([row, row[:5]]), torch.cat([col, col[:5]]), torch.cat([delta, delta[:5]])
    excl = [[int(x) for x in torch.randint(0, N, (2,), generator=g)] for _ in range(B)]
    ptr = torch.tensor([0] + [len(e) for e in excl]).cumsum(0)
    idx = torch.tensor([x for e in excl for x in e], dtype=torch.long)
    gt, eq = E.rank_counts(combine, q, C, target, exclude=(ptr, idx), offsets=(row, col, delta), tile=tile)
    full = C[None].repeat(B, 1, 1)
    full[row, col] = C[col] + delta
    s = combine(q[:, None, :], full)
    true = s[torch.arange(B), target]
    for b in range(B):
        keep = torch.tensor([i not in set(excl[b]) | {int(target[b])} for i in range(N)])
        assert int(gt[b]) == int(((s[b] > true[b]) & keep).sum())
        assert int(eq[b]) == int(((s[b] == true[b]) & keep).sum())
    plain = E.rank_counts(combine, q, C, target, exclude=(ptr, idx), tile=tile)
    assert not torch.equal(plain[0], gt)  # the offsets change the ranks


def test_rank_metrics_ties_are_the_mean_of_optimistic_and_pessimistic():
    # all 10 candidates tie with the target: optimistic 1, pessimistic 10 -> realistic 5.5
    r = E.rank_metrics(torch.tensor([0]), torch.tensor([9]))
    assert r["mrr"] == pytest.approx(1 / 5.5)
    assert r["recall@10"] == pytest.approx(1.0) and r["recall@20"] == pytest.approx(1.0)
    r = E.rank_metrics(torch.tensor([8]), torch.tensor([3]), ks=(10,))  # ranks 9..12, hit@10 for 9 and 10
    assert r["recall@10"] == pytest.approx(0.5)
    r = E.rank_metrics(torch.tensor([0, 30]), torch.tensor([0, 0]))
    assert r["mrr"] == pytest.approx((1 + 1 / 31) / 2) and r["recall@20"] == pytest.approx(0.5)
    assert math.isnan(E.rank_metrics(torch.zeros(0, dtype=torch.long), torch.zeros(0, dtype=torch.long))["mrr"])


def test_rank_counts_errors():
    q, C = torch.randn(2, 3), torch.randn(4, 3)
    with pytest.raises(ValueError, match=r"'target' rows must be in \[0, 4\)"):
        E.rank_counts(combine, q, C, torch.tensor([0, 4]))
    with pytest.raises(ValueError, match="one entry per query"):
        E.rank_counts(combine, q, C, torch.tensor([0]))
    with pytest.raises(ValueError, match=r"'offsets' must be \(row \[E\], col \[E\], delta \[E, 3\]\)"):
        E.rank_counts(combine, q, C, torch.tensor([0, 1]), offsets=(torch.tensor([0]), torch.tensor([1]),
                                                                    torch.zeros(1, 2)))
    with pytest.raises(TypeError, match="'offsets' must be a tuple"):
        E.rank_counts(combine, q, C, torch.tensor([0, 1]), offsets=(torch.tensor([0]), torch.tensor([1])))
    with pytest.raises(TypeError, match="'offsets row' must be a .*integer tensor"):
        E.rank_counts(combine, q, C, torch.tensor([0, 1]), offsets=(torch.tensor([0.0]), torch.tensor([1]),
                                                                    torch.zeros(1, 3)))
    with pytest.raises(ValueError, match="'offsets' delta must have the candidates' dtype"):
        E.rank_counts(combine, q, C, torch.tensor([0, 1]), offsets=(torch.tensor([0]), torch.tensor([1]),
                                                                    torch.zeros(1, 3, dtype=torch.float64)))
    with pytest.raises(ValueError, match=r"'offsets col' candidate rows must be in \[0, 4\)"):
        E.rank_counts(combine, q, C, torch.tensor([0, 1]), offsets=(torch.tensor([0]), torch.tensor([4]),
                                                                    torch.zeros(1, 3)))


def test_group_exclusion_lists_the_other_answers_of_the_same_query():
    src = torch.tensor([0, 0, 0, 1, 0])
    t = torch.tensor([5, 5, 5, 5, 6])
    dst = torch.tensor([7, 8, 7, 8, 9])
    ptr, ids = E.group_exclusion(src, t, dst)
    rows = [sorted(ids[ptr[i]:ptr[i + 1]].tolist()) for i in range(5)]
    assert rows == [[8], [7, 7], [8], [], []]
