"""Where a result came from: code version, package versions, machine and world size, recorded with every
run (``metrics.json``, W&B config) so a grid of 175 runs over weeks can be checked for mixed code."""

from __future__ import annotations

import os
import platform
import socket
import subprocess
import sys
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any

PACKAGES = (
    "randwire",
    "torch",
    "torchvision",
    "pytorch-lightning",
    "torchmetrics",
    "hydra-core",
    "omegaconf",
    "networkx",
    "numpy",
    "wandb",
    "hydra-submitit-launcher",
)


@lru_cache(maxsize=1)
def code_version() -> dict[str, Any]:
    """The git commit of the randwire source in use and whether it had uncommitted changes (None outside a
    git checkout, e.g. a wheel install: then the package version identifies it)."""
    source = Path(__file__).resolve().parents[1]

    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(["git", "-C", str(source), *args], capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return out.stdout.strip() if out.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if commit is None:
        return {"commit": None, "dirty": None}
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": bool(status) if status is not None else None}


@lru_cache(maxsize=1)
def package_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def hardware() -> dict[str, Any]:
    import torch

    gpus = (
        [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())] if torch.cuda.is_available() else []
    )
    return {
        "host": socket.gethostname(),
        "cpu": _cpu_model(),
        "cpu_cores": os.cpu_count(),
        "gpus": gpus,
        "cuda": torch.version.cuda if gpus else None,
        "platform": platform.platform(),
    }


def provenance(trainer: Any = None) -> dict[str, Any]:
    """Code, packages, machine, and (given a Trainer) world size, nodes and precision of this run."""
    record: dict[str, Any] = {
        **code_version(),
        "python": sys.version.split()[0],
        "packages": package_versions(),
        "hardware": hardware(),
    }
    if trainer is not None:
        record.update(
            world_size=trainer.world_size,
            num_nodes=trainer.num_nodes,
            devices_per_node=trainer.num_devices,
            precision=str(trainer.precision),
        )
    slurm = {
        k: os.environ[v]
        for k, v in (
            ("job_id", "SLURM_JOB_ID"),
            ("array_job_id", "SLURM_ARRAY_JOB_ID"),
            ("array_task_id", "SLURM_ARRAY_TASK_ID"),
        )
        if v in os.environ
    }
    if slurm:
        record["slurm"] = slurm
    return record
