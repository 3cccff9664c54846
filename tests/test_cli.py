import subprocess
import sys

from hardneg import cli


def test_demo_runs_end_to_end_small(capsys):
    rc = cli.main(["demo", "--dim", "16", "-k", "8", "--big", "32", "3000", "8", "4"])
    out = capsys.readouterr().out
    assert rc == 0
    assert "known positives returned: 0" in out and "known triples among them: 0" in out


def test_info_and_module_entry_point():
    out = subprocess.run([sys.executable, "-m", "hardneg", "info"], capture_output=True, text=True, check=True).stdout
    assert "topk_mine" in out and "corrupt" in out and "temporal_neighbors" in out
