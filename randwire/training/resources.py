"""What a job may use: its share of the CPU cores, and the Slurm resources derived from the trainer.

Two processes with torch's default thread count on cores that one of them would fill run 10-20x slower, not
2x (OpenMP threads spin-wait for each other). So each job sets its intra-op threads from its CPU share:
- on Slurm, the cores of its allocation (``cpus_per_task``, enforced by Slurm);
- under ``hydra/launcher=submitit_local``, which starts a whole batch of the sweep at once, the machine's
  cores divided by the number of jobs in its batch (``hydra.sweeper.max_batch_size`` sets the batch);
- otherwise (one run, or the basic launcher's one-after-the-other sweep) every core it may run on.
Data-loader workers take their cores from the same share; CPU DDP ranks split what is left.

The resolvers below tie ``conf/hydra/launcher/submitit_slurm.yaml`` to ``trainer.*`` and ``data.*``, so the
Slurm request and what Lightning expects cannot disagree (Lightning refuses a DDP job whose task count
differs from ``trainer.devices``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from ..models.errors import ConfigError, is_int


def _devices(devices: Any, key: str = "trainer.devices") -> int:
    if not is_int(devices) or devices < 1:
        raise ConfigError(
            f"{key}={devices!r} is not allowed on Slurm: an integer >= 1 (devices per node), "
            f"which becomes --ntasks-per-node (and --gpus-per-node on GPUs)"
        )
    return int(devices)


def tasks_per_node(devices: Any) -> int:
    """One Slurm task per device: Lightning's SLURMEnvironment then starts no processes of its own."""
    return _devices(devices)


def gpus_per_node(accelerator: Any, devices: Any) -> int | None:
    return _devices(devices) if str(accelerator) in ("gpu", "cuda") else None


def cpus_per_task(num_workers: Any, threads: Any = None) -> int:
    """The process itself (its intra-op threads, default 1 extra core) plus its data-loader workers."""
    workers = int(num_workers) if is_int(num_workers) else 0
    return workers + (int(threads) if is_int(threads) and threads > 0 else 2)


for _name, _fn in (
    ("randwire.tasks_per_node", tasks_per_node),
    ("randwire.gpus_per_node", gpus_per_node),
    ("randwire.cpus_per_task", cpus_per_task),
):
    if not OmegaConf.has_resolver(_name):
        OmegaConf.register_new_resolver(_name, _fn)


# ----------------------------------------------------------------------------------------------------
# The sweep's plan (what the launcher was asked to run), read back from <sweep dir>/multirun.yaml
# ----------------------------------------------------------------------------------------------------


def sweep_plan(sweep_dir: str | os.PathLike) -> list[list[list[str]]] | None:
    """The jobs of a basic-sweeper sweep, in launch batches: ``plan[batch][i]`` is a job's override list,
    numbered in order (job ``num`` = position across batches). None where it cannot be known (no
    ``multirun.yaml``, another sweeper such as optuna, which decides its jobs as it goes)."""
    import yaml
    from hydra.core.override_parser.overrides_parser import OverridesParser

    from .private_apis import split_sweep_arguments

    path = Path(sweep_dir) / "multirun.yaml"
    try:
        hydra = (yaml.safe_load(path.read_text()) or {}).get("hydra") or {}
    except (OSError, yaml.YAMLError):
        return None
    sweeper = hydra.get("sweeper") or {}
    if not str(sweeper.get("_target_", "")).endswith("BasicSweeper"):
        return None
    task = list((hydra.get("overrides") or {}).get("task") or [])
    params = sweeper.get("params") or {}
    task += [f"{key}={value}" for key, value in params.items()]
    parsed = OverridesParser.create().parse_overrides(task)
    return split_sweep_arguments(parsed, sweeper.get("max_batch_size"))


# ----------------------------------------------------------------------------------------------------
# The job's CPU share
# ----------------------------------------------------------------------------------------------------


_USER_OMP_THREADS = os.environ.get("OMP_NUM_THREADS", "")  # as the user started this process, before we set it


def _usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS
        return os.cpu_count() or 1


def _jobs_at_once() -> int | None:
    """The number of jobs of this job's launch batch, under submitit's local launcher (else None)."""
    if os.environ.get("SUBMITIT_EXECUTOR") != "local":
        return None
    try:
        from hydra.core.hydra_config import HydraConfig

        hydra = HydraConfig.get()
        plan = sweep_plan(hydra.sweep.dir)
        num = int(hydra.job.num)
    except Exception:
        return None
    if not plan:
        return None
    for batch in plan:
        if num < len(batch):
            return len(batch)
        num -= len(batch)
    return None


def cpu_share() -> tuple[int, str]:
    """(cores this job may use, why)."""
    cores = _usable_cores()
    if os.environ.get("SLURM_JOB_ID") and os.environ.get("SLURM_CPUS_PER_TASK", "").isdigit():
        share = min(cores, int(os.environ["SLURM_CPUS_PER_TASK"]))
        return share, f"Slurm allocates {share} cores per task"
    at_once = _jobs_at_once()
    if at_once:
        share = max(1, cores // at_once)
        return share, f"{cores} cores shared by {at_once} jobs at once under submitit_local"
    return cores, f"{cores} usable cores"


def apply_cpu_share(cfg: Any) -> dict[str, Any]:
    """Set torch/OpenMP/MKL intra-op threads for this process (and its child ranks) and say so in one line.

    ``execution.threads`` (an integer) wins; else an ``OMP_NUM_THREADS`` the user exported; else the CPU
    share minus the data-loader workers, split over CPU DDP ranks on this node."""
    import torch

    from .distributed import is_child_rank

    workers = int((cfg.get("data") or {}).get("num_workers") or 0)
    chosen = (cfg.get("execution") or {}).get("threads")
    trainer = cfg.get("trainer") or {}
    ranks = (
        int(trainer.get("devices"))
        if str(trainer.get("accelerator")) == "cpu" and is_int(trainer.get("devices"))
        else 1
    )
    if is_int(chosen):
        threads, why = int(chosen), "execution.threads"
    elif os.environ.get("RANDWIRE_THREADS", "").isdigit() and is_child_rank():
        threads, why = int(os.environ["RANDWIRE_THREADS"]), "the launching rank's choice"
    elif _USER_OMP_THREADS.isdigit():
        threads, why = int(_USER_OMP_THREADS), "OMP_NUM_THREADS"
    else:
        share, why = cpu_share()
        threads = max(1, (share - workers) // max(1, ranks))
    for key in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "RANDWIRE_THREADS"):
        os.environ[key] = str(threads)  # child ranks and subprocesses inherit it
    torch.set_num_threads(threads)
    record = {"threads": threads, "data_workers": workers, "because": why}
    if not is_child_rank():
        print(
            f"CPU: {threads} torch/OpenMP/MKL thread{'s' if threads != 1 else ''} per process"
            f"{f' x {ranks} CPU ranks' if ranks > 1 else ''}, {workers} data-loader workers ({why})",
            flush=True,
        )
    return record
