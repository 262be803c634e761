"""What the benchmark scripts share: the device check and the machine line every result table starts with."""

from __future__ import annotations

import platform
import sys

import torch


def device_missing(device: str) -> bool:
    """True (after one error line) when ``--device cuda`` was asked for and no GPU is visible."""
    if device == "cuda" and not torch.cuda.is_available():
        print("error: --device cuda but no GPU is visible", file=sys.stderr)
        return True
    return False


def machine_description(device: str) -> str:
    gpu = torch.cuda.get_device_name() if device == "cuda" else None
    return (f"{gpu or platform.processor() or platform.machine()}, {torch.get_num_threads()} CPU threads, "
            f"torch {torch.__version__}, python {platform.python_version()}")
