#!/usr/bin/env bash
# One device-machine session: build with CUDA, run the GPU tests, then the GPU benchmarks.
# Usage (on the GPU box, from the repo root): bash bench/gpu_run.sh [pytest -k expr] ; logs go to $OUT if set.
set -uo pipefail
OUT=${OUT:-/tmp/hardneg-gpu}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm --format=csv | tee "$OUT/gpu.txt"
python3 -c "import torch, triton, numpy; print('torch', torch.__version__, 'triton', triton.__version__, 'numpy', numpy.__version__)" | tee -a "$OUT/gpu.txt"
t0=$SECONDS
HARDNEG_CUDA=ON HARDNEG_CUDA_ARCHS=90 python3 -m pip install -q --no-build-isolation --no-deps . > "$OUT/build.log" 2>&1 \
  || { tail -50 "$OUT/build.log"; exit 1; }
echo "[gpu] built in $((SECONDS - t0)) s"
python3 -c "import hardneg; hardneg.show_config()" | tee -a "$OUT/gpu.txt"
K=${1:-}
python3 -m pytest -q -x -p no:cacheprovider tests ${K:+-k "$K"} -rs 2>&1 | tail -40 | tee "$OUT/tests.log"
echo "[gpu] tests done at $((SECONDS - t0)) s"
for b in ${HARDNEG_GPU_BENCH:-topk_mine sample_by_score time_encode}; do
  python3 bench/$b.py --device cuda --repeats 5 --warmup 2 --csv "$OUT/$b.csv" 2>&1 | tee "$OUT/bench_$b.log"
done
echo "[gpu] total $((SECONDS - t0)) s"
