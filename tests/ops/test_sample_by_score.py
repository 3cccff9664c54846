"""sample_by_score: exact distribution (fixed-seed chi-square), log_prob, exclusions, padding, determinism,
bad input. Rows are replicated so that one call yields thousands of independent draws (one stream per row)."""
import itertools
import math

import pytest
import torch

import hardneg
from hardneg.reference.mining import log_probs
from hardneg.testing import assert_chi2, chi2_quantile
from conftest import backend_params

BACKENDS = backend_params("sample_by_score")


def _problem(seed=0, N=12, d=8, R=3000, scale=0.7):
    gen = torch.Generator().manual_seed(seed)
    q1 = torch.randn(1, d, generator=gen) * scale
    c = torch.randn(N, d, generator=gen) * scale
    return q1.expand(R, d).contiguous(), c


def _exclude_rows(R, ids):
    ids = torch.tensor(ids, dtype=torch.int64)
    return torch.arange(R + 1) * len(ids), ids.repeat(R)


def _call(backend, device, q, c, n, ex=None, **kw):
    exd = None if ex is None else (ex[0].to(device), ex[1].to(device))
    ids, lp = hardneg.ops.sample_by_score(q.to(device), c.to(device), n, exclude=exd, backend=backend, **kw)
    return ids.cpu(), lp.cpu()


@pytest.mark.parametrize("backend,device", BACKENDS)
@pytest.mark.parametrize("weighting", ["softmax", "softplus"])
@pytest.mark.parametrize("replacement", [False, True])
@pytest.mark.parametrize("metric", ["dot", "l2"])
def test_first_draw_matches_exact_distribution(backend, device, weighting, replacement, metric):
    q, c = _problem(seed=1)
    R, N = q.shape[0], c.shape[0]
    ex = _exclude_rows(R, [3, 0, 7])
    g = torch.Generator().manual_seed(1234)
    ids, lp = _call(backend, device, q, c, 3, ex, metric=metric, weighting=weighting, temperature=0.8,
                    replacement=replacement, generator=g)
    p = log_probs(q[:1], c, metric=metric, weighting=weighting, temperature=0.8, exclude=_exclude_rows(1, [3, 0, 7]))[0].exp()
    assert not torch.isin(ids, torch.tensor([0, 3, 7])).any()
    assert_chi2(torch.bincount(ids[:, 0], minlength=N), p)
    if replacement:  # every column is an i.i.d. draw
        assert_chi2(torch.bincount(ids.flatten(), minlength=N), p)
    else:
        assert (ids[:, 0] != ids[:, 1]).all() and (ids[:, 1] != ids[:, 2]).all() and (ids[:, 0] != ids[:, 2]).all()
    # log_prob is log p(id) under the full normalised distribution
    ref = torch.log(p)[ids]
    assert torch.allclose(lp.double(), ref, atol=2e-5, rtol=1e-5)


def _inclusion_probs(p, n):
    """Brute force: P(j in the first n sequential draws without replacement)."""
    N = p.numel()
    incl = torch.zeros(N, dtype=torch.float64)
    for seq in itertools.permutations(range(N), n):
        pr, rest = 1.0, 1.0
        for j in seq:
            pr *= float(p[j]) / rest
            rest -= float(p[j])
        for j in seq:
            incl[j] += pr
    return incl


@pytest.mark.parametrize("backend,device", BACKENDS)
@pytest.mark.parametrize("weighting", ["softmax", "softplus"])
def test_inclusion_frequencies_without_replacement(backend, device, weighting):
    q, c = _problem(seed=2, N=7, R=4000, scale=1.0)
    R, N = q.shape[0], c.shape[0]
    ex = _exclude_rows(R, [5])
    g = torch.Generator().manual_seed(99)
    ids, _ = _call(backend, device, q, c, 3, ex, weighting=weighting, generator=g)
    p = log_probs(q[:1], c, weighting=weighting, exclude=_exclude_rows(1, [5]))[0].exp()
    incl = _inclusion_probs(p, 3)
    counts = torch.zeros(N)
    for j in range(N):
        counts[j] = (ids == j).any(1).sum()
    # per-item binomial z-scores; |z| < 5.3 is p ~ 1e-7 per item
    for j in range(N):
        if incl[j] == 0:
            assert counts[j] == 0
            continue
        sd = math.sqrt(R * incl[j] * (1 - incl[j])) + 1e-12
        z = (counts[j] - R * incl[j]) / sd
        assert abs(z) < 5.3, (j, counts[j].item(), R * incl[j].item())
    # second draw given the first: conditional marginal
    first = ids[:, 0]
    top = int(torch.argmax(p))
    sel = first == top
    cond = p.clone()
    cond[top] = 0
    assert_chi2(torch.bincount(ids[sel, 1], minlength=N), cond / cond.sum())


@pytest.mark.parametrize("backend,device", BACKENDS)
def test_padding_and_empty_rows(backend, device):
    q, c = _problem(seed=3, N=6, R=4)
    ex = (torch.tensor([0, 6, 8, 8, 8]), torch.tensor([0, 1, 2, 3, 4, 5, 1, 2]))
    g = torch.Generator().manual_seed(0)
    ids, lp = _call(backend, device, q, c, 5, ex, generator=g)
    assert (ids[0] == -1).all() and torch.isneginf(lp[0]).all()  # nothing admissible
    assert set(ids[1, :4].tolist()) == {0, 3, 4, 5} and ids[1, 4] == -1 and torch.isneginf(lp[1, 4])
    assert (ids[2] >= 0).all() and len(set(ids[2].tolist())) == 5
    ids, lp = _call(backend, device, q, c, 5, ex, generator=g, replacement=True)
    assert (ids[0] == -1).all() and (ids[1:] >= 0).all()
    assert not torch.isin(ids[1], torch.tensor([1, 2])).any()


@pytest.mark.parametrize("backend,device", BACKENDS)
def test_deterministic_per_seed(backend, device):
    q, c = _problem(seed=4, N=300, R=20)
    for repl in (False, True):
        a = _call(backend, device, q, c, 8, generator=torch.Generator().manual_seed(5), replacement=repl)
        b = _call(backend, device, q, c, 8, generator=torch.Generator().manual_seed(5), replacement=repl)
        d = _call(backend, device, q, c, 8, generator=torch.Generator().manual_seed(6), replacement=repl)
        assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
        assert not torch.equal(a[0], d[0])


@pytest.mark.parametrize("N,R", [(150_000, 5), (2_000, 50)])
def test_cpu_result_independent_of_thread_count(monkeypatch, N, R):
    """Two candidate chunks; or one chunk and a batch that small query blocks split across the threads."""
    q, c = _problem(seed=5, N=N, d=4, R=R)
    q = q + 0.1 * torch.randn(q.shape, generator=torch.Generator().manual_seed(1))
    out = []
    for t in ("1", "2", "3", "5"):
        monkeypatch.setenv("HARDNEG_NUM_THREADS", t)
        out.append(hardneg.ops.sample_by_score(q, c, 16, generator=torch.Generator().manual_seed(3), backend="cpu"))
    assert all(torch.equal(out[0][0], o[0]) and torch.equal(out[0][1], o[1]) for o in out[1:])


def test_cpu_large_n_log_prob_and_temperature():
    gen = torch.Generator().manual_seed(8)
    q = torch.randn(4, 16, generator=gen)
    c = torch.randn(140_000, 16, generator=gen)
    for w in ("softmax", "softplus"):
        ids, lp = hardneg.ops.sample_by_score(q, c, 32, weighting=w, temperature=0.5, generator=gen, backend="cpu")
        ref = log_probs(q, c, weighting=w, temperature=0.5)
        assert torch.allclose(lp.double(), torch.gather(ref, 1, ids), atol=1e-4, rtol=1e-4)
        assert all(len(set(r.tolist())) == 32 for r in ids)


@pytest.mark.parametrize(
    "kwargs,exc,frag",
    [
        (dict(num_samples=0), ValueError, "'num_samples' must be >= 1"),
        (dict(temperature=0.0), ValueError, "'temperature' must be finite and > 0"),
        (dict(temperature=-1.0), ValueError, "'temperature' must be finite and > 0"),
        (dict(temperature=float("nan")), ValueError, "'temperature'"),
        (dict(temperature=float("inf")), ValueError, "'temperature'"),
        (dict(weighting="sigmoid"), ValueError, "'weighting' must be one of"),
        (dict(replacement=1), TypeError, "'replacement' must be a bool"),
        (dict(generator=5), TypeError, "'generator' must be a torch.Generator"),
        (dict(metric="bogus"), ValueError, "'metric'"),
        (dict(query=torch.randn(3, 5)), ValueError, "same d"),
        (dict(exclude=(torch.tensor([0, 1, 1, 9]), torch.tensor([1]))), ValueError, "end at len(indices)"),
    ],
)
def test_bad_input(kwargs, exc, frag):
    args = dict(query=torch.randn(3, 4), candidates=torch.randn(10, 4), num_samples=2)
    args.update(kwargs)
    with pytest.raises(exc) as e:
        hardneg.ops.sample_by_score(args.pop("query"), args.pop("candidates"), args.pop("num_samples"), **args)
    assert frag in str(e.value) and "sample_by_score" in str(e.value)


def test_nonfinite_rejected():
    c = torch.randn(10, 4)
    c[2, 1] = float("nan")
    with pytest.raises(ValueError, match="'candidates' must be finite"):
        hardneg.ops.sample_by_score(torch.randn(3, 4), c, 2)


def test_n_above_admissible_pads_without_replacement():
    ids, lp = hardneg.ops.sample_by_score(torch.randn(2, 4), torch.randn(3, 4), 5)
    assert (ids[:, 3:] == -1).all() and torch.isneginf(lp[:, 3:]).all()
    assert (torch.sort(ids[:, :3], 1).values == torch.arange(3)).all()


def test_chi2_threshold_sane():
    assert 30 < chi2_quantile(10) < 60


@pytest.mark.parametrize("backend,device", [p for p in BACKENDS if p.values[0] == "triton"])
def test_triton_two_pass_bound_path_distribution(backend, device):
    # enough candidate tiles that the segment-max bound is used (more segments than draws)
    q, c = _problem(seed=9, N=2048, d=8, R=1500, scale=1.2)
    g = torch.Generator().manual_seed(77)
    ids, lp = _call(backend, device, q, c, 2, generator=g)
    p = log_probs(q[:1], c)[0].exp()
    assert_chi2(torch.bincount(ids[:, 0], minlength=c.shape[0]), p)
    assert (ids[:, 0] != ids[:, 1]).all()
    assert torch.allclose(lp.double(), torch.log(p)[ids], atol=2e-5, rtol=1e-5)
