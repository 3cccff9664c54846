import pytest
import torch

import hardneg
from conftest import backend_params
from filtering_cases import brute_set, random_kg

BACKENDS = backend_params("known_mask")


@pytest.mark.parametrize("backend,device", BACKENDS)
@pytest.mark.parametrize("side", ["tail", "head"])
def test_mask_matches_brute_force(backend, device, side):
    tr, E, R = random_kg(2)
    known = brute_set(tr)
    ks = hardneg.KnownSet.from_triples(tr, E, R).to(device)
    g = torch.Generator().manual_seed(3)
    B, n = 60, 17
    if side == "tail":
        anchor = torch.stack([torch.randint(0, E, (B,), generator=g), torch.randint(0, R, (B,), generator=g)], 1)
    else:
        anchor = torch.stack([torch.randint(0, R, (B,), generator=g), torch.randint(0, E, (B,), generator=g)], 1)
    anchor[:10] = tr[:10, :2] if side == "tail" else tr[:10, 1:]
    cand = torch.randint(0, E, (B, n), generator=g)
    cand[:10, 0] = tr[:10, 2] if side == "tail" else tr[:10, 0]
    got = ks.mask(anchor.to(device), cand.to(device), side=side, backend=backend).cpu()
    want = torch.zeros(B, n, dtype=torch.bool)
    for b in range(B):
        for j in range(n):
            key = (int(anchor[b, 0]), int(anchor[b, 1]), int(cand[b, j])) if side == "tail" else \
                (int(cand[b, j]), int(anchor[b, 0]), int(anchor[b, 1]))
            want[b, j] = key in known
    assert torch.equal(got, want) and got[:10, 0].all()


@pytest.mark.parametrize("backend,device", BACKENDS)
def test_mask_edges_with_node_anchor_and_empty(backend, device):
    ks = hardneg.KnownSet.from_edges(torch.tensor([[0, 1], [0, 2], [2, 1]]), 3).to(device)
    m = ks.mask(torch.tensor([0, 2], device=device), torch.tensor([[1, 2, 0], [1, 1, 0]], device=device), backend=backend)
    assert m.cpu().tolist() == [[True, True, False], [True, True, False]]
    m = ks.mask(torch.tensor([1], device=device), torch.tensor([[0, 2, 1]], device=device), side="head", backend=backend)
    assert m.cpu().tolist() == [[True, True, False]]
    assert ks.mask(torch.zeros(0, dtype=torch.int64, device=device), torch.zeros(0, 4, dtype=torch.int64, device=device),
                   backend=backend).shape == (0, 4)


def test_mask_bad_input():
    ks = hardneg.KnownSet.from_triples(torch.tensor([[0, 0, 1]]), 5, 2)
    with pytest.raises(ValueError, match="'anchor' must be"):
        ks.mask(torch.tensor([0]), torch.tensor([[1]]))
    with pytest.raises(ValueError, match="B=1 rows"):
        ks.mask(torch.tensor([[0, 0]]), torch.tensor([[1], [2]]))
    with pytest.raises(ValueError, match="'candidates' ids must be in"):
        ks.mask(torch.tensor([[0, 0]]), torch.tensor([[5]]))
    with pytest.raises(ValueError, match=r"anchor\[:, 1\]"):
        ks.mask(torch.tensor([[0, 3]]), torch.tensor([[1]]))
    with pytest.raises(ValueError, match="'side' must be one of"):
        ks.mask(torch.tensor([[0, 0]]), torch.tensor([[1]]), side="left")
