"""The README's examples run as written: every ```python block, and every command of every ```bash block,
except lines marked ``# set-up`` (installation: what scripts/dev.sh does), ``(download)``, ``(gpu)`` or
``(minutes)`` (too long for CI; the main job runs through ``scripts/dev.sh main``). Commands run in order, in
one scratch folder, so a later command can read an earlier one's output."""
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"
SKIP = ("# set-up", "(download)", "(gpu)", "(minutes)")


def _blocks(lang):
    return re.findall(rf"```{lang}\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)


def _commands():
    out = []
    for block in _blocks("bash"):
        for line in block.splitlines():
            line = line.strip()
            if not line or any(m in line for m in SKIP):
                continue
            out.append(line.split("  #")[0].split(" # ")[0].strip())
    return out


def _env(tmp_path):
    env = dict(os.environ, HARDNEG_RUNS=str(tmp_path / "runs"), PYTHONWARNINGS="ignore")
    env.pop("TRITON_INTERPRET", None)
    return env


def test_every_bash_command_is_run_or_marked():
    for line in _commands():
        assert line.startswith("hardneg "), f"README command neither runnable here nor marked: {line!r}"


def test_readme_commands_run(tmp_path):
    cmds = _commands()
    assert cmds, "no README commands found"
    for line in cmds:
        argv = shlex.split(line)
        out = subprocess.run([sys.executable, "-m", "hardneg", *argv[1:], *(
            ["--no-progress"] if argv[1] in ("train", "compare") else [])], cwd=tmp_path, env=_env(tmp_path),
            capture_output=True, text=True, timeout=600)
        assert out.returncode == 0, f"{line!r} failed:\n{out.stderr[-2000:]}"


@pytest.mark.parametrize("i", range(len(_blocks("python"))))
def test_readme_python_blocks_run(tmp_path, i):
    code = _blocks("python")[i]
    if "pykeen" in code:
        pytest.importorskip("pykeen")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=_env(tmp_path), capture_output=True,
                         text=True, timeout=600)
    assert out.returncode == 0, f"README python block {i} failed:\n{code}\n{out.stderr[-3000:]}"
