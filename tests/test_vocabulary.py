"""One vocabulary: the constants and their kernel codes, the one id range check, the seed helper and the
device-safe uniform draw, and the one pairwise-score implementation (hardneg.metrics)."""
import pytest
import torch

import hardneg
from hardneg import _validate as V
from hardneg import metrics, samplers
from hardneg._constants import METRICS, SIDE_MODES, SIDES, STRATEGIES, WEIGHTINGS, code
from hardneg._random import generator_device, seed_from, uniform


def test_codes_match_the_kernels():
    assert [code(METRICS, m) for m in ("dot", "cos", "l2", "l1", "rotate")] == [0, 1, 2, 3, 4]  # csrc/common/common.h
    assert SIDE_MODES[:2] == SIDES and code(SIDE_MODES, "bernoulli") == 3  # CorruptArgs::side_mode
    assert code(WEIGHTINGS, "softplus") == 1 and code(STRATEGIES, "uniform") == 1
    pytest.importorskip("triton")
    from hardneg.kernels.mining import _tiles

    assert [_tiles.METRIC_DOT.value, _tiles.METRIC_COS.value, _tiles.METRIC_L2.value, _tiles.METRIC_L1.value,
            _tiles.METRIC_ROTATE.value] == [0, 1, 2, 3, 4]


@pytest.mark.parametrize(
    "x,n,what,frag",
    [
        (torch.tensor([0, 5]), 5, "ids", "op: 'x' ids must be in [0, 5) (got min 0, max 5)"),
        (torch.tensor([[-2, 1]]), 3, "node ids", "op: 'x' node ids must be in [0, 3) (got min -2, max 1)"),
        (torch.tensor([-1]), None, "entity ids", "op: 'x' entity ids must be >= 0 (got min -1, max -1)"),
        (torch.tensor([[0, 1, 2], [4, 2, 0]]), [5, 2, None], ("entity ids", "relation ids", "entity ids"),
         "op: 'x[:, 1]' relation ids must be in [0, 2) (got min 1, max 2)"),
    ],
)
def test_ids_names_op_argument_range_and_what_it_got(x, n, what, frag):
    with pytest.raises(ValueError) as e:
        V.ids("op", "x", x, n, what=what)
    assert str(e.value) == frag


def test_ids_device_and_dtype():
    out = V.ids("op", "x", torch.tensor([1, 2], dtype=torch.int32), 3)
    assert out.dtype == torch.int64 and V.ids("op", "x", torch.zeros(0, dtype=torch.int64), 1).numel() == 0
    with pytest.raises(ValueError, match="'x' must be on meta like the other inputs"):
        V.ids("op", "x", torch.tensor([1]), 3, device=torch.device("meta"))


def test_seed_and_uniform_keep_the_streams():
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    assert seed_from(g1) == int(torch.randint(0, 2**63 - 1, (1,), generator=g2).item())
    assert seed_from(g1, high=2**62) == int(torch.randint(0, 2**62, (1,), generator=g2).item())
    assert torch.equal(uniform((3, 2), g1, "cpu"), torch.rand(3, 2, generator=g2, dtype=torch.float64))
    assert uniform(4, g1, "cpu", torch.float32).dtype == torch.float32
    torch.manual_seed(9)
    a = seed_from(None)
    torch.manual_seed(9)
    assert a == seed_from(None) and generator_device(None) == torch.device("cpu")


def test_csr_normalisation_sorts_and_dedupes_rows_and_keeps_rows_of_one_id_as_they_are():
    """The one CSR check: ids sorted and unique per row. Rows of at most one id (a sampler's own-target exclusion)
    come back as given; others go through the sort, and both agree with a row-by-row set."""
    g = torch.Generator().manual_seed(3)
    for counts in ([1, 0, 1, 1, 0], [2, 0, 1, 3, 1], [0, 0, 0]):
        c = torch.tensor(counts)
        ptr = torch.cat([torch.zeros(1, dtype=torch.int64), c.cumsum(0)])
        idx = torch.randint(0, 4, (int(c.sum()),), generator=g)
        p2, i2 = V.csr("op", "exclude", (ptr, idx), len(counts), 4, torch.device("cpu"))
        for r in range(len(counts)):
            assert i2[p2[r]:p2[r + 1]].tolist() == sorted(set(idx[ptr[r]:ptr[r + 1]].tolist()))
    with pytest.raises(ValueError, match="'exclude' ids must be in"):
        V.csr("op", "exclude", (torch.tensor([0, 1, 1]), torch.tensor([7])), 2, 4, torch.device("cpu"))


def test_own_target_exclusion_is_one_id_a_row():
    from hardneg.samplers.base import exclusion_with_self

    ptr, ids = exclusion_with_self(None, torch.tensor([0, 1, 2]), torch.tensor([5, 3, 5], dtype=torch.int32), "tail")
    assert ptr.tolist() == [0, 1, 2, 3] and ids.tolist() == [5, 3, 5] and ids.dtype == torch.int64
    extra = (torch.tensor([0, 2, 2, 3]), torch.tensor([4, 1, 0]))
    ptr, ids = exclusion_with_self(None, torch.tensor([0, 1, 2]), torch.tensor([5, 3, 5]), "tail", extra=extra)
    assert ptr.tolist() == [0, 3, 4, 6] and ids.tolist() == [4, 1, 5, 3, 0, 5]


@pytest.mark.parametrize("metric", METRICS)
def test_score_matrix_is_pairwise_over_all_pairs(metric):
    g = torch.Generator().manual_seed(0)
    q, c = torch.randn(7, 6, generator=g, dtype=torch.float64), torch.randn(300, 6, generator=g, dtype=torch.float64)
    want = metrics.pairwise(q[:, None, :], c[None], metric)
    assert torch.allclose(metrics.score_matrix(q, c, metric), want, atol=1e-9)
    low = metrics.score_matrix(q.float(), c.float(), metric)
    assert low.dtype == torch.float32
    assert metrics.score_matrix(q.float(), c.float(), metric, dtype=torch.float64).dtype == torch.float64
    assert torch.allclose(hardneg.reference.scores(q, c, metric), want, atol=1e-9)


def test_unknown_metric():
    with pytest.raises(ValueError, match="pairwise: unknown metric 'euclid'"):
        metrics.pairwise(torch.ones(1, 2), torch.ones(1, 2), "euclid")
    with pytest.raises(ValueError, match="score_matrix: unknown metric 'euclid'"):
        metrics.score_matrix(torch.ones(1, 2), torch.ones(1, 2), "euclid")


def test_scorer_protocol_lives_in_metrics_and_stays_importable_from_samplers():
    from hardneg.samplers import scorers

    assert samplers.Scorer is metrics.Scorer and samplers.pairwise is metrics.pairwise
    assert scorers.Scorer is metrics.Scorer and scorers._complex_mul is metrics.complex_mul
    sc = samplers.DistMultScorer(torch.randn(5, 4), torch.randn(2, 4))
    P = torch.tensor([[0, 1, 2], [3, 0, 4]])
    assert torch.allclose(sc.score_positives(P), (sc.entity_weight[P[:, 0]] * sc.relation_weight[P[:, 1]]
                                                  * sc.entity_weight[P[:, 2]]).sum(-1))
    assert metrics.anchors(P, "head")[1].tolist() == [0, 3] and metrics.anchors(P[:, [0, 2]], "tail")[1].tolist() == [2, 4]
