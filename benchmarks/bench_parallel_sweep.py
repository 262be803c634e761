"""A 2-job sweep run side by side (hydra/launcher=submitit_local: both jobs at once, each on its share of
the cores) against the same sweep run one job after the other (Hydra's basic launcher, each job on all
cores). Optionally the oversubscribed case the share avoids: both jobs at once, each with every core.

Rounds are interleaved (sequential, parallel, sequential, parallel, ...): this VM's speed drifts over
minutes. Wall time of the whole `train.py -m` command, so process start, data setup and the summary count.

    python benchmarks/bench_parallel_sweep.py --rounds 2 --out benchmarks/results/parallel_sweep_cpu
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
JOB = [
    "graph.n=16",
    "regime.c=16",
    "regime.head_channels=64",
    "data=synthetic",
    "data.num_samples=1024",
    "data.batch_size=32",
    "trainer.max_epochs=2",
    "logger=none",
    "extras.print_config=false",
]
VARIANTS = {
    "sequential (basic launcher, all cores each)": [],
    "side by side (submitit_local, cores / 2 each)": ["hydra/launcher=submitit_local"],
    "side by side, oversubscribed (every core each)": ["hydra/launcher=submitit_local", "execution.threads={cores}"],
}


def run_sweep(extra: list[str], cores: int) -> float:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "WANDB_SERVICE")}
    env["WANDB_MODE"] = "disabled"
    with tempfile.TemporaryDirectory() as sweep:
        cmd = [
            sys.executable,
            "train.py",
            *JOB,
            f"hydra.sweep.dir={sweep}",
            "-m",
            *[e.format(cores=cores) for e in extra],
            "seed=0,1",
        ]
        start = time.perf_counter()
        done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=env)
        took = time.perf_counter() - start
        if done.returncode != 0:
            raise SystemExit(f"sweep failed ({' '.join(extra) or 'basic'}): {done.stderr[-1500:]}")
        jobs = [json.loads(p.read_text()) for p in Path(sweep).glob("*/metrics.json")]
        if len(jobs) != 2 or any(j.get("status") != "ok" for j in jobs):
            raise SystemExit(f"sweep did not finish 2 jobs: {jobs}")
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--oversubscribed", action="store_true", help="also time both jobs at once on every core")
    parser.add_argument("--out", type=Path, default=None, help="write <out>.md and <out>.json")
    args = parser.parse_args()
    cores = len(os.sched_getaffinity(0))
    variants = {k: v for k, v in VARIANTS.items() if args.oversubscribed or "oversubscribed" not in k}
    times: dict[str, list[float]] = {k: [] for k in variants}
    for r in range(args.rounds):
        for name, extra in variants.items():
            times[name].append(run_sweep(extra, cores))
            print(f"round {r + 1}/{args.rounds}  {name}: {times[name][-1]:.1f} s", flush=True)
    base = statistics.median(times[next(iter(variants))])
    lines = [
        f"2-job sweep ({' '.join(JOB)}), {cores} cores, median of {args.rounds} interleaved rounds",
        "",
        "| variant | wall s (median) | × sequential |",
        "|---|---|---|",
    ]
    for name, values in times.items():
        lines.append(f"| {name} | {statistics.median(values):.1f} | {statistics.median(values) / base:.2f} |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.with_suffix(".md").write_text(text)
        args.out.with_suffix(".json").write_text(json.dumps({"cores": cores, "job": JOB, "times_s": times}, indent=1))


if __name__ == "__main__":
    main()
