"""What the benchmark scripts share: the device check, the machine line every result table starts with, and
the interleaved timing."""

from __future__ import annotations

import contextlib
import platform
import statistics
import sys
import time
from collections.abc import Callable

import torch


def device_missing(device: str) -> bool:
    """True (after one error line) when ``--device cuda`` was asked for and no GPU is visible."""
    if device == "cuda" and not torch.cuda.is_available():
        print("error: --device cuda but no GPU is visible", file=sys.stderr)
        return True
    return False


@contextlib.contextmanager
def strict_fp32():
    """Checks in true fp32 on a GPU: cuDNN convolutions run in TF32 by default (10-bit mantissa), which on
    this network's ill-conditioned initial gradients (BatchNorm cancellation) would blur a check's bound."""
    conv, mm = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = conv, mm


def machine_description(device: str) -> str:
    gpu = torch.cuda.get_device_name() if device == "cuda" else None
    return (
        f"{gpu or platform.processor() or platform.machine()}, {torch.get_num_threads()} CPU threads, "
        f"torch {torch.__version__}, python {platform.python_version()}"
    )


def interleaved_medians(fns: dict[str, Callable[[], object]], rounds: int, device: str) -> dict[str, float]:
    """Median seconds per call of each (already warmed-up) closure, the rounds interleaved across them
    (round r calls every one once), so a drift of the machine's speed hits all of them alike."""
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            if device == "cuda":
                torch.cuda.synchronize()
            t = time.perf_counter()
            fn()
            if device == "cuda":
                torch.cuda.synchronize()
            times[name].append(time.perf_counter() - t)
    return {name: statistics.median(ts) for name, ts in times.items()}
