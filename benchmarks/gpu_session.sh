#!/usr/bin/env bash
# The GPU measurements still owed (benchmarks/README.md), in parts that each fit one device call
# (< 10 minutes) and keep what they finished:
#   bash benchmarks/gpu_session.sh 1 [OUT_DIR]   level batching at op level + the eager variants (~5 min)
#   bash benchmarks/gpu_session.sh 2 [OUT_DIR]   torch.compile, training only (the GPU target; whole-network
#                                                compiles take minutes: --what train halves their number)
#   bash benchmarks/gpu_session.sh 3 [OUT_DIR]   torch.compile + CUDA graphs (reduce-overhead), training only
# OUT_DIR defaults to $OUT, then benchmarks/results. The GPU machine has torch but maybe not
# hydra/omegaconf: both scripts import only randwire's core.
set -u
part="${1:?part 1, 2 or 3}"
out="${2:-${OUT:-benchmarks/results}}"
mkdir -p "$out"
common=(--device cuda --batch 256 --dtype bf16)
case "$part" in
  1)
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$out/gpu_info.txt" 2>&1
    timeout 200 python benchmarks/bench_level_batching.py "${common[@]}" --out "$out/level_batching_gpu" \
        2>&1 | tee "$out/level_batching_gpu_log.txt"
    timeout 330 python benchmarks/bench_execution.py "${common[@]}" --settings small@224,lowres@32 \
        --out "$out/gpu_eager" 2>&1 | tee "$out/gpu_eager_log.txt" ;;
  2)
    timeout 570 python benchmarks/bench_execution.py "${common[@]}" --settings small@224 --compile \
        --what train --only fast+channels_last fast+channels_last+compile --out "$out/gpu_compile" 2>&1 | tee "$out/gpu_compile_log.txt" ;;
  3)
    timeout 570 python benchmarks/bench_execution.py "${common[@]}" --settings small@224 --compile \
        --what train --only fast+channels_last fast+channels_last+compile+cudagraphs --out "$out/gpu_cudagraphs" \
        2>&1 | tee "$out/gpu_cudagraphs_log.txt" ;;
  *) echo "error: part=$part is not allowed: 1, 2 or 3" >&2; exit 2 ;;
esac
