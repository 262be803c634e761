"""Compiled training's gradients against eager, on their own (one compilation per dtype, no timing).

``bench_execution.py --compile`` compiles each variant twice (a checked fp32 copy, the timed copy); within a
GPU session's few minutes this script does only the check: the small regime's network (WS(4, 0.75), N=32,
C=78, seed 0), ``execution.compile=true`` vs the plain loop — eval outputs (max relative) and training
gradients (global relative L2) — and, as the yardstick, the eager default execution against the same
reference. TF32 is off (true fp32). ``--dtype fp64`` compares in double precision, where two correct
executions agree to ~1e-13 (BatchNorm's cancellation at init makes fp32 a blunt check: see the README).

    python benchmarks/check_compiled_grads.py --device cuda --dtype fp64
"""

from __future__ import annotations

import argparse
import copy
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks._bench import device_missing, machine_description, strict_fp32  # noqa: E402
from benchmarks.bench_execution import COMPILED, VARIANTS, check_agreement, check_compiled  # noqa: E402
from randwire import build_network  # noqa: E402
from randwire.models.execution import configure_execution  # noqa: E402

# eval outputs, training gradients: bench_execution's fp32 bounds; in fp64 a correct execution is ~1e-13
BOUNDS = {"fp32": (1e-4, 1e-2), "fp64": (1e-10, 1e-8)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    ap.add_argument("--dtype", choices=sorted(BOUNDS), default="fp32")
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--batch", type=int, default=8)
    args = ap.parse_args()
    if device_missing(args.device):
        return 2
    print(machine_description(args.device), flush=True)
    dtype = torch.float64 if args.dtype == "fp64" else torch.float32
    base = build_network("small", graph="ws", n=32, c=78, seed=0, k=4, p=0.75, num_classes=1000)
    base = base.to(args.device, dtype).train()
    x = torch.randn(args.batch, 3, args.size, args.size, device=args.device, dtype=dtype)
    y = torch.randint(0, 1000, (args.batch,), device=args.device)
    with torch.no_grad():  # non-trivial BN statistics, as in bench_execution
        base(torch.randn_like(x))
    out_bound, grad_bound = BOUNDS[args.dtype]
    failed = False
    with strict_fp32():
        eager = configure_execution(copy.deepcopy(base), dict(VARIANTS["fast+channels_last"]))
        checks = [("eager default", lambda: check_agreement(base, eager, x, y, exact=False)[:2])]
        checks.append(("compiled", lambda: check_compiled(base, COMPILED["fast+channels_last+compile"], x, y, "both")))
        for name, run in checks:
            start = time.perf_counter()
            out_err, grad_err = run()
            ok = out_err <= out_bound and grad_err <= grad_bound
            failed |= not ok
            print(
                f"{name:>13} vs plain loop ({args.dtype}, batch {args.batch}, {args.size}²): eval output rel err "
                f"{out_err:.1e} (≤ {out_bound:.0e}), training gradient rel L2 {grad_err:.1e} (≤ {grad_bound:.0e}) "
                f"-> {'OK' if ok else 'MISMATCH'}; {time.perf_counter() - start:.0f} s",
                flush=True,
            )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
