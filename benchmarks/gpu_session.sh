#!/usr/bin/env bash
# One device call's worth of GPU measurements (about 10 minutes on an H100), partial results kept:
#   bash benchmarks/gpu_session.sh [OUT_DIR]        (OUT_DIR defaults to $OUT, then benchmarks/results)
# The GPU machine has torch but maybe not hydra/omegaconf: both scripts import only randwire's core.
set -u
out="${1:-${OUT:-benchmarks/results}}"
mkdir -p "$out"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$out/gpu_info.txt" 2>&1
# 1. level batching at op level: is the GPU launch-bound enough for grouped level convs to pay off?
timeout 150 python benchmarks/bench_level_batching.py --device cuda --batch 256 --dtype bf16 \
    --out "$out/level_batching_gpu" 2>&1 | tee "$out/level_batching_gpu_log.txt"
# 2. the execution benchmark, eager variants first (interleaved timing), then compiled ones
timeout 200 python benchmarks/bench_execution.py --device cuda --batch 256 --dtype bf16 --settings small@224 \
    --out "$out/gpu_eager" 2>&1 | tee "$out/gpu_eager_log.txt"
timeout 240 python benchmarks/bench_execution.py --device cuda --batch 256 --dtype bf16 --settings small@224 \
    --compile --only fast+channels_last fast+channels_last+compile fast+channels_last+compile+cudagraphs \
    --out "$out/gpu_compiled" 2>&1 | tee "$out/gpu_compiled_log.txt"
