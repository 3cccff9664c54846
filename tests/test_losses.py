"""Every loss against a direct per-row formula, with valid masks and weights; the combination rules."""
import math

import pytest
import torch

from hardneg import losses

sig = lambda x: 1 / (1 + math.exp(-x))


def data(seed=0, B=6, n=5):
    g = torch.Generator().manual_seed(seed)
    pos = torch.randn(B, generator=g, dtype=torch.float64)
    neg = torch.randn(B, n, generator=g, dtype=torch.float64)
    valid = torch.rand(B, n, generator=g) > 0.3
    valid[0] = False  # a row with no valid negative
    w = torch.rand(B, n, generator=g, dtype=torch.float64) + 0.1
    return pos, neg, valid, w


def combine(vals, ws, normalize):
    if not vals:
        return 0.0
    if ws is None:
        return sum(vals) / len(vals)
    s = sum(w * v for w, v in zip(ws, vals))
    return s / sum(ws) if normalize else s


def direct(name, pos, neg, valid, w, normalize=True, **o):
    rows = []
    for i in range(pos.shape[0]):
        p = float(pos[i])
        vs = [float(neg[i, j]) for j in range(neg.shape[1]) if valid[i, j]]
        ws = None if w is None else [float(w[i, j]) for j in range(neg.shape[1]) if valid[i, j]]
        if name == "margin":
            rows.append(None if not vs else combine([max(0.0, o.get("margin", 1.0) - p + v) for v in vs], ws, normalize))
        elif name == "softplus":
            rows.append(-math.log(sig(p)) + combine([-math.log(1 - sig(v)) for v in vs], ws, normalize))
        elif name == "bce":
            e = o.get("label_smoothing", 0.0)
            bce = lambda x, y: -(y * math.log(sig(x)) + (1 - y) * math.log(1 - sig(x)))
            rows.append(bce(p, 1 - e) + combine([bce(v, e) for v in vs], ws, normalize))
        elif name == "sans":
            g, a = o.get("margin", 0.0), o.get("temperature", 1.0)
            ex = [math.exp(a * v) for v in vs]
            pr = [x / sum(ex) for x in ex]
            if ws is not None:
                pr = [x * y for x, y in zip(pr, ws)]
                pr = [x / sum(pr) for x in pr]
            rows.append(-math.log(sig(g + p)) - sum(q * math.log(sig(-v - g)) for q, v in zip(pr, vs)))
        elif name == "infonce":
            tau = o.get("temperature", 0.1)
            ws2 = ws or [1.0] * len(vs)
            rows.append(-math.log(math.exp(p / tau) / (math.exp(p / tau) + sum(x * math.exp(v / tau) for x, v in zip(ws2, vs)))))
        elif name == "bpr":
            rows.append(None if not vs else combine([-math.log(sig(p - v)) for v in vs], ws, normalize))
    kept = [r for r in rows if r is not None]
    return sum(kept) / len(kept), rows


CASES = [("margin", {}), ("margin", {"margin": 0.3}), ("softplus", {}), ("bce", {}), ("bce", {"label_smoothing": 0.1}),
         ("sans", {}), ("sans", {"margin": 2.0, "temperature": 0.5}), ("infonce", {}), ("infonce", {"temperature": 1.0}),
         ("bpr", {})]


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("name,opts", CASES)
def test_loss_matches_formula(name, opts, weighted):
    pos, neg, valid, w = data()
    w = w if weighted else None
    got = losses.create(name, **opts)(pos, neg, valid=valid, weights=w)
    want, rows = direct(name, pos, neg, valid, w, **opts)
    assert abs(float(got) - want) < 1e-9
    per = losses.create(name, **opts)(pos, neg, valid=valid, weights=w, reduction="none")
    for i, r in enumerate(rows):
        if r is not None:
            assert abs(float(per[i]) - r) < 1e-9


@pytest.mark.parametrize("name", ["margin", "softplus", "bpr", "bce"])
def test_unnormalised_weights(name):
    pos, neg, valid, w = data(1)
    got = losses.LOSSES[name](pos, neg, valid=valid, weights=w, normalize=False)
    want, _ = direct(name, pos, neg, valid, w, normalize=False)
    assert abs(float(got) - want) < 1e-9


def test_invalid_negatives_get_no_gradient_and_weights_are_detached():
    pos, neg, valid, w = data(2)
    neg = neg.clone().requires_grad_(True)
    w = w.clone().requires_grad_(True)
    losses.softplus(pos, neg, valid=valid, weights=w).backward()
    assert bool((neg.grad[~valid] == 0).all()) and bool((neg.grad[valid] != 0).all())
    assert w.grad is None


def test_sans_weights_are_detached():
    pos, neg, valid, _ = data(3)
    neg = neg.clone().requires_grad_(True)
    losses.self_adversarial(pos, neg, valid=valid).backward()
    p = torch.softmax(torch.where(valid, neg.detach(), torch.tensor(float("-inf"))), 1)
    g = p * torch.sigmoid(neg.detach())  # d/dx softplus(x) = sigmoid(x), times the detached weight
    torch.testing.assert_close(neg.grad[valid], (g / pos.shape[0])[valid])


def test_importance_weights():
    lp = torch.log(torch.tensor([[0.5, 0.25, 0.25], [0.1, 0.2, 0.7]], dtype=torch.float64))
    w = losses.importance_weights(lp)
    want = (1 / lp.exp()) / (1 / lp.exp()).sum(1, keepdim=True)
    torch.testing.assert_close(w, want)
    u = losses.importance_weights(lp, num_candidates=4, self_normalize=False)
    torch.testing.assert_close(u, 1 / (4 * lp.exp()))
    with pytest.raises(ValueError, match="num_candidates"):
        losses.importance_weights(lp, self_normalize=False)


def test_bad_input():
    pos, neg, valid, w = data()
    with pytest.raises(ValueError, match="unknown loss 'hinge'"):
        losses.create("hinge")
    with pytest.raises(ValueError, match="'neg' \\[B, n\\]"):
        losses.softplus(pos, neg[:3])
    with pytest.raises(ValueError, match="'valid' must be a bool tensor"):
        losses.softplus(pos, neg, valid=valid.long())
    with pytest.raises(ValueError, match="'weights'"):
        losses.softplus(pos, neg, weights=-w)
    with pytest.raises(TypeError, match="'pos'"):
        losses.bpr(pos.long(), neg)
    with pytest.raises(ValueError, match="reduction"):
        losses.bpr(pos, neg, reduction="avg")
    with pytest.raises(ValueError, match="temperature"):
        losses.infonce(pos, neg, temperature=0.0)
