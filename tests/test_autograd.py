"""Autograd through the mining ops: topk_mine's scores (every metric) and sample_by_score's log_prob are
differentiable with respect to query and candidates, through the hardneg:: custom ops and the public functions.

Both ops return float32 scores / log-probs by contract, so ``gradcheck`` (float64 inputs) uses a finite-difference
step of 1e-3 and tolerances of 1e-3 that float32 outputs can meet; the exact check is the second one: the
backward equals autograd through the float64 reference formulas (``hardneg.metrics.pairwise``,
``hardneg.reference.mining.log_probs``) to 1e-10.
"""
import pytest
import torch

import hardneg
from hardneg.metrics import pairwise
from hardneg.reference.mining import log_probs

H = torch.ops.hardneg
METRICS = ["dot", "cos", "l2", "l1", "rotate"]
GRADCHECK = dict(eps=1e-3, atol=1e-3, rtol=1e-3, nondet_tol=0.0)
EXCLUDE = (torch.tensor([0, 2, 2, 3]), torch.tensor([1, 4, 0]))  # B = 3 rows: {1, 4}, {}, {0}

@pytest.fixture(autouse=True)
def _one_thread(monkeypatch):
    # tiny problems: with 2 OpenMP threads on a loaded 2-core box each kernel call waits ~10 ms for thread wake-up
    monkeypatch.setenv("HARDNEG_NUM_THREADS", "1")



def _qc(B=3, N=7, d=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(B, d, generator=g, dtype=torch.float64)
    c = torch.randn(N, d, generator=g, dtype=torch.float64)
    return q.requires_grad_(), c.requires_grad_()


def _separated(metric, k, gap=0.05):
    """Inputs whose top-(k+1) admissible scores per row differ by > ``gap``: a finite-difference step then never
    changes which candidates are selected (the scores are piecewise smooth in the inputs)."""
    for seed in range(50):
        q, c = _qc(seed=seed)
        s, _ = hardneg.ops.topk_mine(q.detach(), c.detach(), k + 1, metric=metric, exclude=EXCLUDE)
        if bool((s[:, :-1] - s[:, 1:] > gap).all()):
            return q, c
    raise AssertionError("no well-separated inputs")  # pragma: no cover


@pytest.mark.parametrize("metric", METRICS)
def test_gradcheck_topk_scores(metric):
    q, c = _separated(metric, 3)
    if metric == "cos":  # the custom op once; the public function (the same backward) for every metric
        torch.autograd.gradcheck(lambda q, c: H.topk_mine(q, c, 3, metric, *EXCLUDE)[0], (q, c), **GRADCHECK)
    torch.autograd.gradcheck(lambda q, c: hardneg.ops.topk_mine(q, c, 3, metric=metric, exclude=EXCLUDE)[0], (q, c),
                             **GRADCHECK)


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("backend", ["cpu", "reference"])
def test_topk_backward_equals_reference_formula(metric, backend):
    q, c = _qc(N=5)
    k = 6  # > admissible count of every row: padded slots
    s, i = hardneg.ops.topk_mine(q, c, k, metric=metric, exclude=EXCLUDE, backend=backend)
    assert (i < 0).any()
    g = torch.randn(s.shape, generator=torch.Generator().manual_seed(1), dtype=torch.float32)
    got = torch.autograd.grad(s, (q, c), g)  # padded slots receive a non-zero upstream gradient: ignored
    valid = i >= 0
    ref = pairwise(q[:, None, :], c[i.clamp_min(0)], metric)
    want = torch.autograd.grad(ref, (q, c), torch.where(valid, g.double(), 0.0))
    for a, b in zip(got, want):
        assert a.dtype == torch.float64 and torch.isfinite(a).all()
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)


def test_padded_slots_give_zero_gradient():
    q, c = _qc(N=2)
    ex = (torch.tensor([0, 2, 2, 3]), torch.tensor([1, 0, 0]))
    s, i = H.topk_mine(q, c, 4, "l2", *ex)  # row 0 has nothing admissible, rows 1-2 pad
    assert (i[0] == -1).all()
    gq, gc = torch.autograd.grad(s, (q, c), torch.ones_like(s))  # includes the -inf scores' slots
    assert torch.equal(gq[0], torch.zeros_like(gq[0]))
    assert torch.isfinite(gq).all() and torch.isfinite(gc).all()
    ids, lp = H.sample_by_score(q, c, 3, "dot", "softmax", 1.0, *ex, False, 0)
    assert (ids[0] == -1).all()
    gq, gc = torch.autograd.grad(lp, (q, c), torch.ones_like(lp))
    assert torch.equal(gq[0], torch.zeros_like(gq[0])) and torch.isfinite(gc).all()


def test_half_precision_inputs_get_their_dtype_back():
    q, c = (x.detach().to(torch.bfloat16).requires_grad_() for x in _qc())
    s, _ = hardneg.ops.topk_mine(q, c, 2, metric="cos")
    gq, gc = torch.autograd.grad(s.sum(), (q, c))
    assert gq.dtype == gc.dtype == torch.bfloat16


def test_no_grad_path_unchanged():
    q, c = _qc()
    s, _ = hardneg.ops.topk_mine(q.detach(), c.detach(), 3)
    assert s.grad_fn is None
    with torch.no_grad():
        s, _ = hardneg.ops.topk_mine(q, c, 3)
    assert s.grad_fn is None


@pytest.mark.parametrize("weighting,replacement", [("softmax", False), ("softplus", True)])
def test_gradcheck_log_prob(weighting, replacement):
    q, c = _qc(N=6)
    f = lambda q, c: H.sample_by_score(q, c, 2, "dot", weighting, 0.7, *EXCLUDE, replacement, 3)[1]  # noqa: E731
    torch.autograd.gradcheck(f, (q, c), **GRADCHECK)


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("weighting", ["softmax", "softplus"])
def test_log_prob_backward_equals_reference_formula(metric, weighting):
    q, c = _qc(N=6)
    gen = torch.Generator().manual_seed(2)
    ids, lp = hardneg.ops.sample_by_score(q, c, 3, metric=metric, weighting=weighting, temperature=0.5,
                                          exclude=EXCLUDE, replacement=True, generator=gen)
    g = torch.randn(lp.shape, generator=torch.Generator().manual_seed(1))
    got = torch.autograd.grad(lp, (q, c), g)
    full = log_probs(q, c, metric=metric, weighting=weighting, temperature=0.5, exclude=EXCLUDE)
    want = torch.autograd.grad(full.gather(1, ids), (q, c), g.double())
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-10)
