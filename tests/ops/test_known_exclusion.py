import pytest
import torch

import hardneg
from conftest import backend_params
from filtering_cases import brute_set, random_kg

BACKENDS = backend_params("known_exclusion")


@pytest.mark.parametrize("backend,device", BACKENDS)
@pytest.mark.parametrize("side", ["tail", "head"])
def test_exclusion_matches_brute_force_and_feeds_topk(backend, device, side):
    tr, E, R = random_kg(4)
    known = brute_set(tr)
    ks = hardneg.KnownSet.from_triples(tr, E, R).to(device)
    anchor = (tr[:50, :2] if side == "tail" else tr[:50, 1:]).clone()
    anchor[-5:, 0] = 0 if side == "tail" else anchor[-5:, 0]
    indptr, idx = ks.exclusion(anchor.to(device), side=side, backend=backend)
    indptr, idx = indptr.cpu(), idx.cpu()
    for b in range(anchor.shape[0]):
        a0, a1 = anchor[b].tolist()
        want = sorted({t for (h, r, t) in known if (h, r) == (a0, a1)} if side == "tail"
                      else {h for (h, r, t) in known if (r, t) == (a0, a1)})
        assert idx[indptr[b]:indptr[b + 1]].tolist() == want
    # plugs straight into topk_mine(exclude=...)
    q = torch.randn(anchor.shape[0], 8)
    c = torch.randn(E, 8)
    s, i = hardneg.ops.topk_mine(q, c, 5, exclude=(indptr, idx))
    for b in range(anchor.shape[0]):
        assert not set(i[b].tolist()) & set(idx[indptr[b]:indptr[b + 1]].tolist())


def test_exclusion_empty_batch():
    ks = hardneg.KnownSet.from_triples(torch.tensor([[0, 0, 1]]), 5, 2)
    indptr, idx = ks.exclusion(torch.zeros(0, 2, dtype=torch.int64))
    assert indptr.tolist() == [0] and idx.numel() == 0


def test_exclusion_bad_input():
    ks = hardneg.KnownSet.from_triples(torch.tensor([[0, 0, 1]]), 5, 2)
    with pytest.raises(ValueError, match=r"'anchor\[:, 0\]' ids must be in \[0, 5\) \(got min 9, max 9\)"):
        ks.exclusion(torch.tensor([[9, 0]]))
    with pytest.raises(ValueError, match=r"anchor\[:, 1\]"):
        ks.exclusion(torch.tensor([[0, 3]]))
    with pytest.raises(TypeError, match="integer"):
        ks.exclusion(torch.tensor([[0.0, 0.0]]))
