"""examples/gae_hardneg.py runs (two epochs; Cora when the shared data is there, else a random graph)."""
import importlib.util
import os

import pytest

pytest.importorskip("torch_geometric")

EXAMPLE = os.path.join(os.path.dirname(__file__), "..", "..", "examples", "gae_hardneg.py")


@pytest.mark.parametrize("negatives", ["uniform", "dns"])
def test_gae_example_trains_with_hardneg_negatives(negatives, capsys):
    spec = importlib.util.spec_from_file_location("gae_hardneg", EXAMPLE)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    auc = mod.main(["--negatives", negatives, "--epochs", "2"])
    assert 0.0 <= auc <= 1.0
    assert "test AUC" in capsys.readouterr().out
