#!/usr/bin/env bash
# The GPU measurements still owed (benchmarks/README.md), in parts that each fit one device call
# (< 10 minutes) and keep what they finished:
#   bash benchmarks/gpu_session.sh 1 [OUT_DIR]   level batching at op level + the eager variants (~5 min)
#   bash benchmarks/gpu_session.sh 2 [OUT_DIR]   torch.compile, training only (the GPU target; whole-network
#                                                compiles take minutes: --what train halves their number)
#   bash benchmarks/gpu_session.sh 3 [OUT_DIR]   torch.compile + CUDA graphs (reduce-overhead), training only
#   bash benchmarks/gpu_session.sh lightning [OUT_DIR]   train.py trainer=gpu on synthetic 224² data, small regime,
#                                                batch 256, bf16: img/s inside Lightning, to set beside the bare benchmark
#   bash benchmarks/gpu_session.sh session [OUT_DIR]     one device call (< 10 min), most owed first: eager ratios
#                                                (train + infer), Lightning img/s, compiled training's gradients vs
#                                                the plain loop in fp64 and true fp32, then level batching if time is left
# train.py needs hydra-core/omegaconf/antlr4 there: carry them as wheels in .whl (device README), PYTHONPATH=.
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
  lightning)
    # 30 steps of 256 an epoch, 3 epochs: the first pays cudnn's autotuning, the EpochLine of 2 and 3 is steady state
    timeout 200 python train.py trainer=gpu regime=small data=synthetic data.image_size=224 data.num_classes=1000 \
        data.num_samples=7680 data.batch_size=256 data.num_workers=8 logger=csv trainer.max_epochs=3 \
        extras.draw_graphs=false extras.print_config=false paths.log_dir="${RUNS_DIR:-$out/lightning_runs}" ;;
  session)
    # one log and the benchmarks' tables: the device call brings back at most 8 files
    exec > >(tee -a "$out/session_log.txt") 2>&1
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
    timeout 170 python benchmarks/bench_execution.py "${common[@]}" --settings small@224 --only fast+channels_last \
        reference+channels_last --out "$out/gpu_eager"
    RUNS_DIR=/tmp/lightning_runs bash "$0" lightning "$out"
    # one compilation each (the compile benchmark's two did not finish in 200 s on the H200, 2026-12-04)
    timeout 200 python benchmarks/check_compiled_grads.py --device cuda --dtype fp64
    timeout 170 python benchmarks/check_compiled_grads.py --device cuda --dtype fp32
    left=$((560 - SECONDS))
    if [ "$left" -gt 40 ]; then
      timeout "$left" python benchmarks/bench_level_batching.py "${common[@]}" --out "$out/level_batching_gpu"
    fi ;;
  *) echo "error: part=$part is not allowed: 1, 2, 3, lightning or session" >&2; exit 2 ;;
esac
