"""The wheel installs into a clean virtual environment holding only the base dependencies (torch, numpy,
pyyaml, tqdm and what they need), and the CLI's entry points work there: no optional dependency is needed to
start, list datasets or print the configuration.

``scripts/dev.sh`` builds the wheel into ``dist/`` and sets ``HARDNEG_WHEEL``; without it the test skips.
The base packages are linked from this environment (no network): the test checks *which* packages the wheel
needs, not pip's resolver.
"""
import os
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

WHEEL = os.environ.get("HARDNEG_WHEEL")
OPTIONAL = ("pykeen", "torch_geometric", "matplotlib", "numba", "triton", "scipy")


def _closure(names):
    """The distributions ``names`` need (recursively, base requirements only, markers evaluated here)."""
    from packaging.requirements import Requirement

    seen, todo = {}, list(names)
    while todo:
        name = todo.pop()
        key = name.lower().replace("_", "-")
        if key in seen:
            continue
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue  # e.g. a platform-only requirement that is not installed here
        seen[key] = dist
        for r in dist.requires or []:
            req = Requirement(r)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(req.name)
    return seen


def _link_distribution(dist, site: Path):
    tops = {Path(str(f)).parts[0] for f in dist.files or [] if not str(f).startswith("..")}
    root = Path(dist.locate_file(""))
    for top in tops:
        src, dst = root / top, site / top
        if src.exists() and not dst.exists() and top != "__pycache__":
            dst.symlink_to(src)


@pytest.mark.skipif(not WHEEL, reason="HARDNEG_WHEEL is not set (scripts/dev.sh builds the wheel and sets it)")
def test_wheel_in_a_clean_venv_with_only_the_base_dependencies(tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True)
    py = venv / "bin" / "python"
    site = Path(subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               check=True, capture_output=True, text=True).stdout.strip())
    base = [str(r).split(">")[0].split("=")[0].split("<")[0].strip() for r in
            metadata.distribution("hardneg").requires or [] if "extra ==" not in str(r)]
    assert set(b.lower() for b in base) >= {"torch", "numpy", "pyyaml", "tqdm"}, base
    deps = _closure(base)
    for dist in deps.values():
        _link_distribution(dist, site)
    assert not any((site / m).exists() for m in OPTIONAL), "an optional dependency leaked into the clean venv"
    subprocess.run([str(py), "-m", "pip", "install", "-q", "--no-deps", "--no-index", WHEEL], check=True)
    subprocess.run([str(py), "-m", "pip", "check"], check=True, capture_output=True)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "HARDNEG_SHARED")}
    env["HARDNEG_RUNS"] = str(tmp_path / "runs")
    for var in ("HARDNEG_DATA", "HARDNEG_DATASETS"):  # a user's machine: no benchmark folder, an empty cache
        (tmp_path / var).mkdir()
        env[var] = str(tmp_path / var)
    hn = str(venv / "bin" / "hardneg")
    out = subprocess.run([hn, "--help"], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60)
    assert out.returncode == 0 and "train" in out.stdout, out.stderr
    out = subprocess.run([hn, "datasets"], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert out.returncode == 0 and "umls" in out.stdout, out.stderr
    assert "Traceback" not in out.stderr
    out = subprocess.run([hn, "info"], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert out.returncode == 0 and "topk_mine" in out.stdout, out.stderr
    # a command that needs an optional dependency says which extra in one line, exit status 2
    out = subprocess.run([hn, "train", "--epochs", "1", "--no-progress"], capture_output=True, text=True, env=env,
                         cwd=tmp_path, timeout=120)
    assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr
    assert "pip install 'hardneg[" in out.stderr and len(out.stderr.strip().splitlines()) == 1, out.stderr
