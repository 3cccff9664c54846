import pytest
import torch

import hardneg
from hardneg.testing import assert_chi2


def test_distribution_without_and_with_replacement():
    w = torch.tensor([0.0, 1.0, 2.0, 3.0, 0.5, 0.0])
    W = w.expand(4000, -1).contiguous()
    p = w / w.sum()
    g = torch.Generator().manual_seed(0)
    ids = hardneg.ops.sample_from_weights(W, 3, replacement=False, generator=g)
    assert_chi2(torch.bincount(ids[:, 0], minlength=6), p)
    assert ((ids[:, 0] != ids[:, 1]) & (ids[:, 1] != ids[:, 2])).all()
    assert not torch.isin(ids, torch.tensor([0, 5])).any()
    ids = hardneg.ops.sample_from_weights(W, 3, replacement=True, generator=g)
    assert_chi2(torch.bincount(ids.flatten(), minlength=6), p)


def test_padding():
    w = torch.tensor([[0.0, 1.0, 0.0], [0.0, 0.0, 0.0]])
    ids = hardneg.ops.sample_from_weights(w, 2, replacement=False)
    assert ids.tolist() == [[1, -1], [-1, -1]]
    ids = hardneg.ops.sample_from_weights(w, 2, replacement=True)
    assert ids.tolist() == [[1, 1], [-1, -1]]


def test_uniform_over_pool_and_determinism():
    pool = torch.ones(5, 64)
    a = hardneg.ops.sample_from_weights(pool, 10, replacement=False, generator=torch.Generator().manual_seed(1))
    b = hardneg.ops.sample_from_weights(pool, 10, replacement=False, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a, b) and all(len(set(r.tolist())) == 10 for r in a)


@pytest.mark.parametrize(
    "w,n,kw,exc,frag",
    [
        (torch.tensor([[1.0, -1.0]]), 1, dict(replacement=False), ValueError, "'weights' must be >= 0"),
        (torch.tensor([[1.0, float("nan")]]), 1, dict(replacement=False), ValueError, "finite"),
        (torch.tensor([[1.0, float("inf")]]), 1, dict(replacement=True), ValueError, "finite"),
        (torch.tensor([1.0, 2.0]), 1, dict(replacement=False), ValueError, "2-D"),
        (torch.tensor([[1, 2]]), 1, dict(replacement=False), TypeError, "floating"),
        (torch.ones(2, 3), 0, dict(replacement=False), ValueError, "'n' must be >= 1"),
        (torch.ones(2, 3), 1, dict(replacement="yes"), TypeError, "'replacement' must be a bool"),
    ],
)
def test_bad_input(w, n, kw, exc, frag):
    with pytest.raises(exc, match=None) as e:
        hardneg.ops.sample_from_weights(w, n, **kw)
    assert frag in str(e.value)
