"""Paired-by-seed comparisons of runs (hardneg.training.results.paired) and their lines in compare / grid."""
import math

import pytest

from hardneg.training.comparison import paired_summary
from hardneg.training.results import paired, paired_line


def runs(values, metric="mrr", seeds=None):
    seeds = range(len(values)) if seeds is None else seeds
    return [{"config": {"seed": s}, "test": {metric: v}} for s, v in zip(seeds, values)]


def test_paired_by_seed_against_hand_computed_values():
    # differences 0.1, 0.2, 0.3: mean 0.2, sd 0.1, t = 0.2 / (0.1 / sqrt 3); better on all 3: p = 2 / 8
    p = paired(runs([0.6, 0.7, 0.8]), runs([0.5, 0.5, 0.5]), "mrr")
    assert p["n"] == 3 and p["seeds"] == [0, 1, 2]
    assert p["mean"] == pytest.approx(0.2) and p["sd"] == pytest.approx(0.1)
    assert p["t"] == pytest.approx(0.2 / (0.1 / math.sqrt(3)))
    assert (p["ahead"], p["behind"], p["ties"]) == (3, 0, 0) and p["sign_p"] == pytest.approx(0.25)
    # the reverse: the same p, the other sign, behind on every seed
    q = paired(runs([0.5, 0.5, 0.5]), runs([0.6, 0.7, 0.8]), "mrr")
    assert q["t"] == pytest.approx(-p["t"]) and (q["ahead"], q["behind"]) == (0, 3) and q["sign_p"] == p["sign_p"]


def test_paired_matches_seeds_not_positions_and_follows_the_metric_direction():
    a = runs([0.9, 0.1, 0.4, 0.2], seeds=[3, 1, 2, 7])  # seed 7 has no partner
    b = runs([0.3, 0.2, 0.8], seeds=[1, 2, 3])
    p = paired(a, b, "mrr")
    assert p["seeds"] == [1, 2, 3] and p["n"] == 3
    assert p["mean"] == pytest.approx(((0.1 - 0.3) + (0.4 - 0.2) + (0.9 - 0.8)) / 3)
    assert (p["ahead"], p["behind"]) == (2, 1)
    lower = paired(a, b, "mrr", higher_is_better=False)  # e.g. a loss: lower is better
    assert (lower["ahead"], lower["behind"]) == (1, 2) and lower["mean"] == pytest.approx(p["mean"])


def test_paired_edge_cases():
    assert paired(runs([0.5]), runs([0.4]), "mrr") is None  # one common seed: nothing to test
    assert paired(runs([0.5, 0.6], seeds=[0, 1]), runs([0.5, 0.6], seeds=[2, 3]), "mrr") is None
    assert paired(runs([0.5, None, 0.7]), runs([0.4, 0.4, 0.4]), "mrr")["n"] == 2  # a missing value drops its seed
    level = paired(runs([0.5, 0.6]), runs([0.5, 0.6]), "mrr")
    assert level["t"] is None and level["ties"] == 2 and level["sign_p"] == 1.0
    assert "t -" in paired_line("a", "b", level) and "2 level" in paired_line("a", "b", level)
    const = paired(runs([0.75, 0.5]), runs([0.5, 0.25]), "mrr")  # the same gap on every seed (exact in binary)
    assert const["t"] == math.inf and (const["ahead"], const["behind"]) == (2, 0)
    assert const["sign_p"] == pytest.approx(0.5)  # two-sided, 2 of 2 ahead: 2 * C(2, 0) / 2^2


def test_summary_pairs_each_run_with_the_baseline_and_the_best_with_the_rest():
    r = {"uniform": runs([0.40, 0.41, 0.39]), "dns": runs([0.50, 0.52, 0.49]), "mebns": runs([0.48, 0.53, 0.47])}
    records, text = paired_summary(r, "mrr", True, "uniform")
    assert [(x["a"], x["b"]) for x in records] == [("dns", "uniform"), ("mebns", "uniform"), ("dns", "mebns")]
    assert text.startswith("\npaired by seed, test mrr") and "dns − mebns +0.0100" in text
    assert "better on 2 of 3 seeds" in text
    # the baseline best: its pairs are the only ones (never the same pair twice, reversed)
    worse = {"uniform": runs([0.6, 0.6, 0.6]), "dns": runs([0.5, 0.52, 0.49]), "mebns": runs([0.48, 0.53, 0.47])}
    assert [(x["a"], x["b"]) for x in paired_summary(worse, "mrr", True, "uniform")[0]] == [
        ("dns", "uniform"), ("mebns", "uniform")]
    # no baseline (e.g. a grid without one): the best against every other
    assert [(x["a"], x["b"]) for x in paired_summary(r, "mrr", True, None)[0]] == [("dns", "uniform"),
                                                                                   ("dns", "mebns")]
    one_seed = {k: v[:1] for k, v in r.items()}
    assert paired_summary(one_seed, "mrr", True, "uniform") == ([], "")



def test_the_compare_function_survives_an_import_of_its_module():
    """The module is ``comparison``: a module named ``compare`` would replace the lazily exported function
    ``hardneg.training.compare`` once anything imported the module first."""
    import hardneg.training
    import hardneg.training.comparison  # noqa: F401
    from hardneg.training import compare, grid

    assert callable(compare) and callable(grid) and compare.__module__ == "hardneg.training.comparison"
    assert hardneg.training.compare is compare


def test_table_cell_of_a_metric_not_measured_reads_nan_once():
    """A metric every run skipped (NaN, e.g. linkpred's MRR with ``mrr_negatives: 0``) is one ``nan``, not
    ``nan±nan``; a mix of measured and NaN runs keeps the NaN visible in the mean."""
    from hardneg.training.results import format_table

    cols = [("MRR", "test.mrr", "{:.4f}"), ("AUC", "test.auc", "{:.4f}")]
    res = [{"test": {"mrr": float("nan"), "auc": a}} for a in (0.9, 0.8)]
    line = format_table([("uniform", res)], cols).splitlines()[1].split()
    assert line == ["uniform", "nan", "0.8500±.0707"]
    mixed = [{"test": {"mrr": m, "auc": 0.9}} for m in (0.5, float("nan"))]
    assert format_table([("dns", mixed)], cols).splitlines()[1].split()[1] == "nan±nan"
