"""Linkpred metrics: AUC / AP (against scikit-learn when present), OGB Hits@K and MRR with their tie policies."""
import pytest
import torch

from hardneg.tasks.linkpred import evaluation as E


def test_auc_and_ap_hand_cases():
    pos, neg = torch.tensor([3.0, 2.0]), torch.tensor([1.0, 0.0])
    assert E.auc(pos, neg) == 1.0 and E.average_precision(pos, neg) == 1.0
    assert E.auc(neg, pos) == 0.0
    tie = torch.tensor([1.0])
    assert E.auc(tie, tie) == 0.5  # a tie counts one half
    # ranking p n p n: precision 1 at the first positive, 2/3 at the second
    assert E.average_precision(torch.tensor([4.0, 2.0]), torch.tensor([3.0, 1.0])) == pytest.approx((1 + 2 / 3) / 2)
    # tied scores enter together: both at precision 1/2
    assert E.average_precision(torch.tensor([1.0]), torch.tensor([1.0])) == pytest.approx(0.5)
    assert torch.isnan(torch.tensor(E.auc(torch.zeros(0), neg)))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_auc_ap_match_sklearn(seed):
    metrics = pytest.importorskip("sklearn.metrics")
    g = torch.Generator().manual_seed(seed)
    pos = torch.randint(0, 20, (300,), generator=g).float()  # many ties
    neg = torch.randint(0, 15, (250,), generator=g).float()
    y = torch.cat([torch.ones(300), torch.zeros(250)]).numpy()
    s = torch.cat([pos, neg]).numpy()
    assert E.auc(pos, neg) == pytest.approx(metrics.roc_auc_score(y, s), abs=1e-12)
    assert E.average_precision(pos, neg) == pytest.approx(metrics.average_precision_score(y, s), abs=1e-12)


def test_hits_at_k_is_ogb():
    neg = torch.arange(100.0)  # the 20th highest is 80
    pos = torch.tensor([80.0, 80.5, 99.5, 3.0])
    assert E.hits_at_k(pos, neg, 20) == 0.5  # 80 ties the 20th negative: a miss (strictly greater, as OGB)
    assert E.hits_at_k(pos, neg[:10], 20) == 1.0  # fewer negatives than K: every positive is a hit (OGB)
    with pytest.raises(ValueError, match=r"'k' must be >= 1 \(got 0\)"):
        E.hits_at_k(pos, neg, 0)


def test_mrr_ties_half_and_masked_slots():
    pos = torch.tensor([1.0, 1.0])
    neg = torch.tensor([[2.0, 1.0, 0.0], [5.0, 5.0, 0.0]])
    valid = torch.tensor([[True, True, True], [False, True, True]])
    # row 0: one better, one tie -> rank 2.5; row 1: one valid better -> rank 2
    assert E.mrr(pos, neg, valid) == pytest.approx((1 / 2.5 + 1 / 2) / 2)
    with pytest.raises(ValueError, match=r"'neg' must be \[m, k\] with m = len\(pos\) = 2"):
        E.mrr(pos, neg[:1])
    with pytest.raises(TypeError, match=r"'pos' must be a floating tensor"):
        E.mrr(torch.tensor([1, 2]), neg)


def test_evaluate_uses_every_negative_set():
    from types import SimpleNamespace

    sp = SimpleNamespace(test=torch.tensor([[0, 1], [2, 3]]), test_neg=torch.tensor([[0, 2], [1, 3]]),
                         hits_test_neg=torch.tensor([[0, 3], [1, 2], [0, 2]]),
                         test_mrr_neg=torch.tensor([[2, 3], [0, -1]]))
    score = lambda p: (p[:, 0] * 10 + p[:, 1]).float()  # noqa: E731  deterministic pair scores
    out = E.evaluate(score, sp, "test", chunk=2)
    assert out["count"] == 2 and out["hits_negatives"] == 3 and out["mrr_negatives"] == 2
    # positives 1, 23 vs 1:1 negatives 2, 13
    assert out["auc"] == pytest.approx(E.auc(torch.tensor([1.0, 23.0]), torch.tensor([2.0, 13.0])))
    # MRR row 0: (0,1)=1 vs (0,2)=2, (0,3)=3 -> rank 3; row 1: (2,3)=23 vs (2,0)=20 -> rank 1
    assert out["mrr"] == pytest.approx((1 / 3 + 1) / 2)
    with pytest.raises(ValueError, match=r"'part' must be one of \['valid', 'test'\]"):
        E.evaluate(score, sp, "train")
