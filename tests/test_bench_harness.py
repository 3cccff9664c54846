"""bench/_harness.py: the interleaved mode's rotation and paired ratio, and the sequential mode's rows."""
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "bench"))
_harness = pytest.importorskip("_harness")


def _counter(log, name, cost):
    """A provider whose call records its name and advances a fake clock by ``cost`` seconds."""
    def make(p, d):
        def call():
            log.append(name)
            _harness_clock[0] += cost
        return call
    return make


_harness_clock = [0.0]


@pytest.fixture
def fake_clock(monkeypatch):
    _harness_clock[0] = 0.0
    monkeypatch.setattr(_harness.time, "perf_counter", lambda: _harness_clock[0])
    return _harness_clock


def test_interleaved_rotates_and_pairs(fake_clock, tmp_path):
    log = []
    provs = [_harness.Provider("base", _counter(log, "base", 4.0), baseline=True),
             _harness.Provider("fast", _counter(log, "fast", 1.0)),
             _harness.Provider("slow", _counter(log, "slow", 8.0))]
    cfg = [_harness.Config("c", {})]
    rows = _harness.run("op", cfg, provs, warmup=0, repeats=3, interleave=True, csv_path=str(tmp_path / "x.csv"))
    # warm-up 0, then 3 rounds whose order rotates, then one watched call each for the peak
    assert log[:9] == ["base", "fast", "slow", "fast", "slow", "base", "slow", "base", "fast"]
    by = {r["provider"]: r for r in rows}
    assert by["fast"]["speedup_vs_baseline"] == pytest.approx(4.0)
    assert by["slow"]["speedup_vs_baseline"] == pytest.approx(0.5)
    assert by["base"]["median_s"] == pytest.approx(4.0)
    assert {r["timing"] for r in rows} == {"interleaved, paired ratio"}
    assert (tmp_path / "x.csv").exists()


def test_sequential_ratio_of_medians(fake_clock):
    log = []
    provs = [_harness.Provider("base", _counter(log, "base", 3.0), baseline=True),
             _harness.Provider("other", _counter(log, "other", 1.5))]
    rows = _harness.run("op", [_harness.Config("c", {})], provs, warmup=1, repeats=2)
    assert log == ["base"] * 4 + ["other"] * 4  # warm-up, 2 timed, 1 watched: one provider after the other
    by = {r["provider"]: r for r in rows}
    assert by["other"]["speedup_vs_baseline"] == pytest.approx(2.0)
    assert by["other"]["timing"] == "sequential"


def test_versus_names_the_provider_a_ratio_is_taken_against(fake_clock):
    log = []
    provs = [_harness.Provider("base", _counter(log, "base", 4.0), baseline=True),
             _harness.Provider("base + step", _counter(log, "base + step", 6.0)),
             _harness.Provider("fused", _counter(log, "fused", 2.0), versus="base + step")]
    for interleave in (False, True):
        rows = _harness.run("op", [_harness.Config("c", {})], provs, warmup=0, repeats=3, interleave=interleave)
        by = {r["provider"]: r for r in rows}
        assert by["fused"]["speedup_vs_baseline"] == pytest.approx(3.0) and by["fused"]["versus"] == "base + step"
        assert by["base + step"]["speedup_vs_baseline"] == pytest.approx(4.0 / 6.0)
