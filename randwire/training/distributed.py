"""Several processes per run (DDP on one machine or on Slurm), launched the way Lightning does it, with the
two places where Lightning and Hydra disagree mended.

- Lightning's ``ddp`` launcher starts ranks 1..N-1 by re-running ``sys.argv``. Inside a Hydra multirun that
  is the whole sweep again, and inside a submitit job it is submitit's own entry point (Lightning PR #18175,
  LHT #393). :func:`child_ranks_run_this_job` makes the children run *this job*: the entry script with this
  job's overrides, in this job's folder.
- After a job, the launching process keeps ``LOCAL_RANK``/``WORLD_SIZE``/``MASTER_PORT`` in its environment and
  the process group open; the next job of a sweep would then believe its ranks were started externally and
  wait for them forever. The same context puts both back.
- Slurm: the requeue has one owner, submitit (``hydra/launcher=submitit_slurm``, ``max_num_timeout``).
  Lightning's own SIGUSR1 requeue is switched off (:func:`leave_requeue_to_submitit`) so a timeout is not
  requeued twice (submitit #1709); the checkpoint on the signal is ``signals.SignalCheckpoint``'s.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..models.errors import ConfigError
from .private_apis import cluster_environment, ddp_launch_hooks, end_child_ranks

# ddp_spawn / ddp_fork / ddp_notebook run the fit in worker processes: the launching process gets the weights
# back but not the loop state (epochs, steps, callbacks), so what a run records would be wrong.
UNSUPPORTED_STRATEGY_PARTS = ("spawn", "fork", "notebook")
_DDP_ENV = ("MASTER_ADDR", "MASTER_PORT", "NODE_RANK", "LOCAL_RANK", "WORLD_SIZE")


def check_strategy(strategy: Any) -> None:
    name = strategy if isinstance(strategy, str) else getattr(strategy, "get", lambda *_: None)("_target_")
    if isinstance(name, str) and any(part in name.lower() for part in UNSUPPORTED_STRATEGY_PARTS):
        raise ConfigError(
            f"trainer.strategy={name!r} is not supported: use trainer.strategy=ddp (one process per "
            f"device; what a run records comes from rank 0's own loop)"
        )


def is_child_rank() -> bool:
    """A rank other than the first: started by this run's launcher, or by Slurm next to rank 0."""
    return any(int(os.environ.get(key, "0") or 0) > 0 for key in ("LOCAL_RANK", "NODE_RANK", "SLURM_PROCID"))


def _job_command(script: Path, output_dir: str, local_rank: int) -> tuple[list[str], str]:
    """This job as a single Hydra run in its own folder: what a child rank must execute."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.utils import get_original_cwd

    overrides = [o for o in HydraConfig.get().overrides.task if not o.startswith("hydra.")]
    command = [
        sys.executable,
        str(script),
        *overrides,
        f"hydra.run.dir={output_dir}",
        f"hydra.job.name=train_ddp_process_{local_rank}",
        "hydra.output_subdir=null",
    ]
    return command, get_original_cwd()


# How long a launching rank may stay blocked after a child rank died before it is killed as Lightning would
# (gloo and NCCL usually notice the closed peer and raise at once; then the job just fails).
BLOCKED_AFTER_CHILD_DIED_S = 120


@contextlib.contextmanager
def child_ranks_run_this_job(script: Path | None, output_dir: str) -> Iterator[None]:
    """Around ``fit`` + ``test`` of one job: child ranks re-run this job, not the command line; a child rank
    that dies fails this job, not the sweep; afterwards the launching process's DDP environment and
    process group are as before (for the sweep's next job)."""
    saved_env = {k: os.environ.get(k) for k in _DDP_ENV}
    command = None if script is None else (lambda local_rank: _job_command(script, output_dir, local_rank))
    failed = True
    try:
        with ddp_launch_hooks(command, BLOCKED_AFTER_CHILD_DIED_S):
            yield
        failed = False
    finally:
        end_child_ranks(wait_s=5 if failed else 60)
        if not is_child_rank():
            for key, value in saved_env.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized() and saved_env["LOCAL_RANK"] is None:
            dist.destroy_process_group()  # this job started the group: the next job starts its own


def leave_requeue_to_submitit(trainer: Any) -> None:
    """Under Slurm, Lightning's SLURMEnvironment would requeue on SIGUSR1 itself; submitit does (see above)."""
    from lightning_fabric.plugins.environments import SLURMEnvironment

    environment = cluster_environment(trainer)
    if isinstance(environment, SLURMEnvironment):
        environment.auto_requeue = False
