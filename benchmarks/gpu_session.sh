#!/usr/bin/env bash
# One accelerator session, time-boxed: issue 5's defaults sweep, quality grid and a longer run (all 60k images,
# 10 epochs) as parallel shards of python -m benchmarks.quality on the one GPU (the models are small: one process
# leaves the GPU idle between kernel launches). (Issue 6's GPU check, which ran first here, is retired: its answer
# is in benchmarks/RESULTS.md, "CUDA, bf16 and many processes".)
# Every finished job is kept; jobs still running when the time is up are dropped.
#
#   DATA=/usr/share/datasets/fashion-mnist RESULTS=benchmarks/results/gpu TIME_S=480 bash benchmarks/gpu_session.sh
#
# SMOKE=1 runs a few tiny jobs on whatever device there is (a check of this script, not a measurement).
set -u
PY=${PY:-python3}
DATA=${DATA:-/usr/share/datasets/fashion-mnist}
RESULTS=${RESULTS:-benchmarks/results/gpu}
TIME_S=${TIME_S:-480}
WORK=$(mktemp -d)
mkdir -p "$RESULTS"
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
start=$(date +%s)
device=cuda
small=()
if [ "${SMOKE:-0}" = 1 ]; then device=auto; small=(--subset 256 --epochs 1 --seeds 0 --latency-runs 5); fi
{ nvidia-smi -L 2>&1; $PY -c "import torch, onnxruntime; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), 'ort', onnxruntime.__version__)"; } | tee "$WORK/env.log"

export OMP_NUM_THREADS=1  # eleven processes share the machine's cores from here on
left=$(( TIME_S - ($(date +%s) - start) - 25 ))
common=(--data-root "$DATA" --device "$device" --latency-runs 100 "${small[@]}")
pids=()
for i in 0 1 2 3; do
  timeout "$left" $PY -m benchmarks.quality --sweep "${common[@]}" --shard "$i/4" --out "$WORK/sweep.$i.jsonl" > "$WORK/sweep.$i.log" 2>&1 &
  pids+=($!)
  timeout "$left" $PY -m benchmarks.quality "${common[@]}" --shard "$i/4" --out "$WORK/quality.$i.jsonl" > "$WORK/quality.$i.log" 2>&1 &
  pids+=($!)
done
for i in 0 1 2; do
  long=(--budgets 15M --methods autosc,uniform,human-width --subset 0 --epochs 10)
  [ "${SMOKE:-0}" = 1 ] && long=(--budgets 15M --methods autosc)
  timeout "$left" $PY -m benchmarks.quality "${common[@]}" "${long[@]}" --shard "$i/3" --out "$WORK/long.$i.jsonl" > "$WORK/long.$i.log" 2>&1 &
  pids+=($!)
done
wait "${pids[@]}"
echo "grids done after $(( $(date +%s) - start )) s"
for name in sweep quality long; do cat "$WORK"/$name.*.jsonl > "$RESULTS/$name-gpu.jsonl" 2>/dev/null; done
for f in "$WORK"/*.log; do echo "== $f"; grep -v Warning "$f" | tail -n 6; done > "$RESULTS/logs.txt"
wc -l "$RESULTS"/*.jsonl
cat "$RESULTS/logs.txt" | tail -n 60
