#!/usr/bin/env bash
# Issue 19's GPU part as one prepared script, for a session lent a GPU machine (see the device tool's README).
# It fits about 12 minutes of device time on an H200; each step appends to its results file as it ends, so
# whatever finished before a time limit is kept, and the same command resumes the quality jobs.
#
#   1. benchmarks/throughput on CUDA in float32 and bf16 (20k Fashion-MNIST images per measured epoch, with
#      the loop on the per-image loader and --compile measured in the same run);
#   2. the long protocol the CPU cannot afford: the quality benchmark with all 60k Fashion-MNIST images,
#      30 epochs, seeds 12-14, autosc against the width-scaled human network at 15M MACs.
#
# The GPU machine reaches nothing outside the working tree: copy Fashion-MNIST's four idx files into the
# tree first (e.g. shared/fashion-mnist/) and pass DATA_ROOT.
#
#   DATA_ROOT=shared/fashion-mnist bash benchmarks/gpu_throughput.sh
set -euo pipefail
PY=${PY:-python}
DATA_ROOT=${DATA_ROOT:?set DATA_ROOT to a folder holding the Fashion-MNIST idx files}
OUT=${OUT:-benchmarks/results}
for amp in off bf16; do
  "$PY" -m benchmarks.throughput --device cuda --amp "$amp" --images 20000 --data-root "$DATA_ROOT" --compile \
    --label "gpu-$amp" --out "$OUT/throughput.jsonl"
done
"$PY" -m benchmarks.quality --device cuda --data-root "$DATA_ROOT" --subset 0 --epochs 30 --seeds 12,13,14 \
  --methods autosc,human-width --budgets 15M --latency-runs 50 --out "$OUT/quality-gpu-30ep.jsonl"
"$PY" -m benchmarks.quality --summary --out "$OUT/quality-gpu-30ep.jsonl"
