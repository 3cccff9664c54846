import pytest
import torch

import hardneg
from conftest import backend_params
from filtering_cases import brute_set, random_kg

BACKENDS = backend_params("known_contains")


@pytest.mark.parametrize("backend,device", BACKENDS)
def test_contains_matches_brute_force(backend, device):
    tr, E, R = random_kg(0)
    ks = hardneg.KnownSet.from_triples(tr, E, R).to(device)
    # 16 B/key for the two packed key arrays + 0.25 B/key for the 1-in-64 fence index
    assert ks.num_keys == len(brute_set(tr)) and ks.bytes_per_key <= 16.25 + 16 / ks.num_keys
    g = torch.Generator().manual_seed(1)
    q = torch.stack([torch.randint(0, E, (500,), generator=g), torch.randint(0, R, (500,), generator=g),
                     torch.randint(0, E, (500,), generator=g)], 1)
    q = torch.cat([q, tr[:100]])
    got = ks.contains(q.to(device), backend=backend).cpu()
    want = torch.tensor([tuple(x) in brute_set(tr) for x in q.tolist()])
    assert torch.equal(got, want)
    assert got[-100:].all()


@pytest.mark.parametrize("backend,device", BACKENDS)
@pytest.mark.parametrize("directed", [True, False])
def test_edges_and_time_aware(backend, device, directed):
    ed = torch.tensor([[0, 1], [1, 2], [0, 1], [3, 0]])
    t = torch.tensor([5.0, 3.0, 2.0, 7.0])
    ks = hardneg.KnownSet.from_edges(ed, 4, directed=directed, times=t).to(device)
    q = torch.tensor([[0, 1], [1, 0], [1, 2], [3, 0], [2, 2]], device=device)
    got = ks.contains(q, backend=backend).cpu().tolist()
    assert got == [True, not directed, True, True, False]
    before = torch.tensor([2.0, 9.0, 3.5, 7.0, 100.0], device=device)
    got = ks.contains(q, before=before, backend=backend).cpu().tolist()
    assert got == [False, not directed, True, False, False]  # (0,1) first seen at 2.0: not strictly before 2.0
    got = ks.contains(q, before=before, inclusive=True, backend=backend).cpu().tolist()
    assert got == [True, not directed, True, True, False]


@pytest.mark.parametrize("backend,device", BACKENDS)
@pytest.mark.parametrize("m", [1, 63, 64, 65, 129, 1000])
def test_fence_boundaries(backend, device, m):
    # key counts around the 64-key fence blocks; queries at, between, before and after every key
    ed = torch.stack([torch.arange(m) * 3 // 7, torch.arange(m) * 3 % 7], 1)
    ks = hardneg.KnownSet.from_edges(ed, max(8, m), directed=True).to(device)
    q = torch.stack([torch.arange(-1, m + 1).clamp(0, max(8, m) - 1).repeat_interleave(8), torch.arange(8).repeat(m + 2)], 1)
    got = ks.contains(q.to(device), backend=backend).cpu()
    want = torch.tensor([tuple(x) in set(map(tuple, ed.tolist())) for x in q.tolist()])
    assert torch.equal(got, want)


def test_build_large_edge_set():
    # build time for 10M edges is measured in bench/filtering.py, not asserted here
    g = torch.Generator().manual_seed(0)
    ed = torch.randint(0, 200_000, (1_000_000, 2), generator=g)
    ed = torch.cat([ed, ed[:1000]])
    ks = hardneg.KnownSet.from_edges(ed, 200_000)
    assert ks.bytes_per_key <= 16.25 + 16 / ks.num_keys and ks.num_keys == torch.unique(ed[:, 0] * 200_000 + ed[:, 1]).numel()
    assert ks.contains(ed[:5000]).all()


@pytest.mark.parametrize(
    "call,exc,frag",
    [
        (lambda: hardneg.KnownSet.from_triples(torch.zeros(0, 3, dtype=torch.int64), 5, 2), ValueError, "empty"),
        (lambda: hardneg.KnownSet.from_triples(torch.tensor([[0, 2, 1]]), 5, 2), ValueError, "'triples[:, 1]' relation ids must be in [0, 2)"),
        (lambda: hardneg.KnownSet.from_triples(torch.tensor([[0, 0, 5]]), 5, 2), ValueError, "ids must be in [0, 5)"),
        (lambda: hardneg.KnownSet.from_triples(torch.tensor([[0.0, 0, 1]]), 5, 2), TypeError, "integer"),
        (lambda: hardneg.KnownSet.from_triples(torch.tensor([[0, 1]]), 5, 2), ValueError, "[M, 3]"),
        (lambda: hardneg.KnownSet.from_edges(torch.tensor([[0, 9]]), 5), ValueError, "ids must be in [0, 5)"),
        (lambda: hardneg.KnownSet.from_edges(torch.tensor([[0, 1]]), 5, times=torch.tensor([float("nan")])), ValueError, "finite"),
        (lambda: hardneg.KnownSet.from_edges(torch.tensor([[0, 1]]), 5, directed="yes"), TypeError, "'directed'"),
        # times are validated alike whatever their dtype or container
        (lambda: hardneg.KnownSet.from_triples(torch.tensor([[0, 0, 1]]), 5, 2,
                                               times=torch.tensor([float("nan")], dtype=torch.float64)),
         ValueError, "'times' must be finite"),
        (lambda: hardneg.KnownSet.from_triples(torch.tensor([[0, 0, 1]]), 5, 2, times=[1.0, 2.0]),
         ValueError, "'times' must be [M] with M=1"),
        (lambda: hardneg.KnownSet.from_triples(torch.tensor([[0, 0, 1]]), 5, 2, times=["noon"]),
         TypeError, "'times' must be a tensor, list or array of M numbers"),
        (lambda: hardneg.KnownSet.from_edges(torch.tensor([[0, 1]]), 5, times=torch.tensor([True])),
         TypeError, "'times' must hold real numbers"),
    ],
)
def test_build_bad_input(call, exc, frag):
    with pytest.raises(exc) as e:
        call()
    assert frag in str(e.value)


def test_times_from_lists_arrays_and_float64_tensors_agree():
    import numpy as np

    tr = torch.tensor([[0, 0, 1], [0, 0, 1], [2, 1, 3]])
    sets = [hardneg.KnownSet.from_triples(tr, 5, 2, times=t)
            for t in ([4, 2, 7], np.array([4.0, 2.0, 7.0]), torch.tensor([4.0, 2.0, 7.0], dtype=torch.float64))]
    for ks in sets:
        assert ks.first_time.tolist() == [2.0, 7.0]  # first seen: the minimum per key (the kernels see ranks)
        assert ks.contains(torch.tensor([[0, 0, 1], [2, 1, 3]]), before=torch.tensor([3.0, 7.0])).tolist() == [True, False]


def test_contains_bad_input():
    ks = hardneg.KnownSet.from_triples(torch.tensor([[0, 0, 1]]), 5, 2)
    with pytest.raises(ValueError, match=r"'keys' must be \[B, 3\]"):
        ks.contains(torch.tensor([[0, 1]]))
    with pytest.raises(ValueError, match="ids must be in"):
        ks.contains(torch.tensor([[0, 0, 7]]))
    with pytest.raises(ValueError, match=r"'keys\[:, 1\]' relation ids must be in \[0, 2\)"):
        ks.contains(torch.tensor([[0, 3, 1]]))
    with pytest.raises(TypeError, match="integer"):
        ks.contains(torch.tensor([[0.0, 0, 1]]))
    with pytest.raises(ValueError, match="needs a known set built with times"):
        ks.contains(torch.tensor([[0, 0, 1]]), before=torch.tensor([1.0]))
    with pytest.raises(TypeError, match="KnownSet"):
        hardneg.ops.known_contains("nope", torch.tensor([[0, 0, 1]]))
    kt = hardneg.KnownSet.from_edges(torch.tensor([[0, 1]]), 3, times=torch.tensor([1.0]))
    with pytest.raises(ValueError, match="NaN"):
        kt.contains(torch.tensor([[0, 1]]), before=torch.tensor([float("nan")]))
    with pytest.raises(ValueError, match=r"'before' must be \[B\]"):
        kt.contains(torch.tensor([[0, 1]]), before=torch.tensor([1.0, 2.0]))
