"""corrupt: never a known positive, exact counts, uniform over the admissible set (chi-square), Bernoulli side
frequencies, type constraints, empty admissible sets come back invalid, determinism, CPU == CUDA streams."""
import pytest
import torch

import hardneg
from conftest import backend_params
from filtering_cases import brute_set, random_kg
from hardneg.testing import assert_chi2

BACKENDS = backend_params("corrupt")


def _call(backend, device, pos, n, E, **kw):
    if kw.get("known") is not None:
        kw["known"] = kw["known"].to(device)
    if isinstance(kw.get("domain"), hardneg.Domain):
        kw["domain"] = kw["domain"].to(device)
    neg, valid = hardneg.ops.corrupt(pos.to(device), n, E, backend=backend, **kw)
    assert neg.device.type == device
    return neg.cpu(), valid.cpu()


@pytest.mark.parametrize("backend,device", BACKENDS)
@pytest.mark.parametrize("side", ["tail", "head", "both", "bernoulli"])
def test_never_known_and_shapes(backend, device, side):
    tr, E, R = random_kg(5, E=12, R=3, M=150)
    known = brute_set(tr)
    ks = hardneg.KnownSet.from_triples(tr, E, R)
    pos = tr[:64]
    neg, valid = _call(backend, device, pos, 9, E, side=side, known=ks, generator=torch.Generator().manual_seed(0))
    assert neg.shape == (64, 9, 3) and valid.shape == (64, 9) and neg.dtype == torch.int64
    for b in range(64):
        for j in range(9):
            t = tuple(neg[b, j].tolist())
            if valid[b, j]:
                assert t not in known
                # exactly one side differs (or none, if the same id was drawn... impossible: that is known)
                assert (t[1] == pos[b, 1]) and ((t[0] == pos[b, 0]) != (t[2] == pos[b, 2]))
    assert valid.all()


@pytest.mark.parametrize("backend,device", BACKENDS)
@pytest.mark.parametrize("side", ["tail", "head"])
def test_uniform_over_admissible_set(backend, device, side):
    E = 10
    tr = torch.tensor([[0, 0, 1], [0, 0, 4], [0, 0, 5], [2, 0, 3], [7, 0, 3], [9, 0, 3]])
    ks = hardneg.KnownSet.from_triples(tr, E, 1)
    pos = torch.tensor([[0, 0, 1]]) if side == "tail" else torch.tensor([[2, 0, 3]])
    pos = pos.expand(3000, 3).contiguous()
    neg, valid = _call(backend, device, pos, 2, E, side=side, known=ks, generator=torch.Generator().manual_seed(7))
    col = 2 if side == "tail" else 0
    counts = torch.bincount(neg[..., col].flatten(), minlength=E)
    bad = {1, 4, 5} if side == "tail" else {2, 7, 9}
    p = torch.tensor([0.0 if i in bad else 1.0 for i in range(E)])
    assert counts[list(bad)].sum() == 0
    assert_chi2(counts, p / p.sum())


@pytest.mark.parametrize("backend,device", BACKENDS)
def test_rejection_falls_back_to_exact_enumeration(backend, device):
    # anchor (0, 0) knows 98 of 100 tails: rejection almost always fails; the admissible set is {17, 60}
    E = 100
    tails = [t for t in range(E) if t not in (17, 60)]
    tr = torch.tensor([[0, 0, t] for t in tails] + [[5, 0, 5]])
    ks = hardneg.KnownSet.from_triples(tr, E, 1)
    pos = torch.tensor([[0, 0, 3]]).expand(400, 3).contiguous()
    neg, valid = _call(backend, device, pos, 3, E, known=ks, max_tries=2, generator=torch.Generator().manual_seed(1))
    assert valid.all()
    vals = neg[..., 2].flatten()
    assert set(vals.tolist()) == {17, 60}
    assert_chi2(torch.bincount(vals, minlength=E), torch.tensor([1.0 if i in (17, 60) else 0.0 for i in range(E)]) / 2)


@pytest.mark.parametrize("backend,device", BACKENDS)
def test_empty_admissible_set_is_invalid_not_a_hang(backend, device):
    E = 6
    tr = torch.tensor([[0, 0, t] for t in range(E)] + [[1, 0, 2]])
    ks = hardneg.KnownSet.from_triples(tr, E, 1)
    pos = torch.tensor([[0, 0, 1], [1, 0, 2]])
    neg, valid = _call(backend, device, pos, 4, E, known=ks, generator=torch.Generator().manual_seed(2))
    assert not valid[0].any() and (neg[0, :, 2] == -1).all()
    assert valid[1].all()


@pytest.mark.parametrize("backend,device", BACKENDS)
def test_bernoulli_side_frequencies(backend, device):
    # relation 0 is 1-to-N (one head, many tails): tph large, hpt 1 -> corrupt the head rarely
    E = 40
    tr = torch.tensor([[0, 0, t] for t in range(1, 31)] + [[h, 1, 0] for h in range(1, 21)] + [[3, 2, 4], [5, 2, 6]])
    ks = hardneg.KnownSet.from_triples(tr, E, 3)
    ph = ks.head_probability()
    assert abs(ph[0] - 30 / 31) < 1e-6 and abs(ph[1] - 1 / 21) < 1e-6 and abs(ph[2] - 0.5) < 1e-6
    pos = torch.tensor([[0, 0, 1], [1, 1, 0], [3, 2, 4]]).repeat(1000, 1)
    neg, valid = _call(backend, device, pos, 4, E, side="bernoulli", known=ks, generator=torch.Generator().manual_seed(3))
    head = neg[..., 0] != pos[:, None, 0]
    for rel, p in enumerate(ph.tolist()):
        rows = pos[:, 1] == rel
        k = int(head[rows].sum())
        N = int(rows.sum()) * 4
        sd = (N * p * (1 - p)) ** 0.5
        assert abs(k - N * p) < 5.5 * sd + 1, (rel, k, N * p)


@pytest.mark.parametrize("backend,device", BACKENDS)
def test_type_constrained_domain(backend, device):
    tr, E, R = random_kg(6, E=20, R=3, M=120)
    ks = hardneg.KnownSet.from_triples(tr, E, R)
    dom = ks.domain()
    pos = tr[:80]
    neg, valid = _call(backend, device, pos, 6, E, side="both", known=ks, domain=dom, generator=torch.Generator().manual_seed(4))
    known = brute_set(tr)
    hp, hi = dom.head
    tp, ti = dom.tail
    for b in range(80):
        r = int(pos[b, 1])
        for j in range(6):
            if not valid[b, j]:
                continue
            h, _, t = neg[b, j].tolist()
            assert (h, r, t) not in known
            if h != pos[b, 0]:
                assert h in hi[hp[r]:hp[r + 1]].tolist()
            else:
                assert t in ti[tp[r]:tp[r + 1]].tolist()


@pytest.mark.parametrize("backend,device", BACKENDS)
def test_unfiltered_edges_and_determinism(backend, device):
    pos = torch.tensor([[0, 1], [2, 3], [4, 0]])
    a = _call(backend, device, pos, 5, 6, generator=torch.Generator().manual_seed(9))
    b = _call(backend, device, pos, 5, 6, generator=torch.Generator().manual_seed(9))
    assert torch.equal(a[0], b[0]) and a[1].all()
    assert (a[0][..., 0] == pos[:, None, 0]).all()


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cpu_and_cuda_streams_agree():
    tr, E, R = random_kg(8)
    ks = hardneg.KnownSet.from_triples(tr, E, R)
    a = hardneg.ops.corrupt(tr[:100], 8, E, side="bernoulli", known=ks, generator=torch.Generator().manual_seed(5))
    b = hardneg.ops.corrupt(tr[:100].cuda(), 8, E, side="bernoulli", known=ks.to("cuda"),
                            generator=torch.Generator().manual_seed(5))
    assert torch.equal(a[0], b[0].cpu()) and torch.equal(a[1], b[1].cpu())


@pytest.mark.parametrize(
    "kwargs,exc,frag",
    [
        (dict(num_negatives=0), ValueError, "'num_negatives' must be >= 1"),
        (dict(side="left"), ValueError, "'side' must be one of"),
        (dict(side="bernoulli", known=None), ValueError, "needs 'known'"),
        (dict(positives=torch.tensor([[0, 0, 9]])), ValueError, "ids must be in [0, 5)"),
        (dict(positives=torch.tensor([[0.0, 0, 1]])), TypeError, "integer"),
        (dict(positives=torch.tensor([[0, 0, 1, 1]])), ValueError, "[B, 3] or [B, 2]"),
        (dict(domain={"head": (torch.tensor([0, 1]), torch.tensor([0])), "tail": (torch.tensor([0, 1]), torch.tensor([0]))}),
         ValueError, "must have 3 entries"),
        (dict(domain="typed"), TypeError, "'domain' must be"),
        (dict(num_entities=7), ValueError, "does not match the known set"),
        (dict(known="ks"), TypeError, "KnownSet"),
        (dict(generator=3), TypeError, "'generator'"),
    ],
)
def test_bad_input(kwargs, exc, frag):
    ks = hardneg.KnownSet.from_triples(torch.tensor([[0, 0, 1], [1, 1, 2]]), 5, 2)
    args = dict(positives=torch.tensor([[0, 0, 1]]), num_negatives=2, num_entities=5, known=ks)
    args.update(kwargs)
    with pytest.raises(exc) as e:
        hardneg.ops.corrupt(args.pop("positives"), args.pop("num_negatives"), args.pop("num_entities"), **args)
    assert frag in str(e.value)
