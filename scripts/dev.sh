#!/usr/bin/env bash
# One entry point for a fresh machine:  bash scripts/dev.sh main   |   bash scripts/dev.sh test
# Creates (or reuses) a virtual environment pinned by ci/requirements.lock, builds and installs hardneg
# into it (C++ core; CUDA kernels too when nvcc is on PATH), then runs the main job or the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
t0=$SECONDS
PY=${PYTHON:-python3}
LOCK=ci/requirements.lock
key=$( { cat "$LOCK"; $PY -VV; uname -m; echo "cache-format-1"; } | sha256sum | cut -c1-16)
CACHE_ROOT=${HARDNEG_CACHE:-$HOME/.cache/hardneg}
VENV=${HARDNEG_VENV:-$CACHE_ROOT/venv-$key}

frozen() { "$VENV/bin/python" -m pip freeze --all --exclude hardneg --exclude pip 2>/dev/null | sed 's/+cpu$//' | sort; }
if [[ -f $VENV/.complete ]] && ! diff -q <(frozen) <(sort "$LOCK") >/dev/null; then
  echo "[dev] cached venv drifted from $LOCK -> rebuilding"; diff <(frozen) <(sort "$LOCK") || true
  rm -rf "$VENV"
fi
if [[ ! -f $VENV/.complete ]]; then
  rm -rf "$VENV"; mkdir -p "$(dirname "$VENV")"
  $PY -m venv "$VENV"
  # torch==2.13.0 resolves to the CPU wheel on this kind of machine; the lock pins every package (no CUDA torch)
  "$VENV/bin/python" -m pip install -q --no-deps -r "$LOCK" 2>&1 | grep -v "is ignored: it is neither" || true
  "$VENV/bin/python" -m pip check
  touch "$VENV/.complete"
  ls -dt "$CACHE_ROOT"/venv-* 2>/dev/null | tail -n +3 | xargs -r rm -rf
fi
echo "[dev] environment ready in $((SECONDS - t0)) s ($VENV)"
# build the wheel once (dist/), install it; tests/test_install.py installs the same wheel into a clean venv
rm -rf dist && mkdir -p dist
"$VENV/bin/python" -m pip wheel -q --no-deps --no-build-isolation -w dist . 2>&1 | grep -v "is ignored: it is neither" || true
"$VENV/bin/python" -m pip install -q --no-deps --force-reinstall dist/hardneg-*.whl
export HARDNEG_WHEEL=$(ls "$PWD"/dist/hardneg-*.whl)
echo "[dev] hardneg built and installed in $((SECONDS - t0)) s"
cmd=${1:-test}
shift || true
case "$cmd" in
  test)
    # the package lives under python/, so the installed copy (with its compiled core) is what gets tested
    set +e
    "$VENV/bin/python" -m pytest -q -rs -p no:cacheprovider tests "$@"
    rc=$?
    set -e
    echo "[dev] total $((SECONDS - t0)) s"
    exit $rc ;;
  main)
    "$VENV/bin/hardneg" "${@:-train}"
    echo "[dev] total $((SECONDS - t0)) s" ;;
  shell)
    echo "activate with: source $VENV/bin/activate" ;;
  *)
    echo "usage: bash scripts/dev.sh [main|test|shell] [args...]" >&2; exit 2 ;;
esac
