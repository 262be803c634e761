"""The private attributes of Lightning, Hydra, submitit, W&B and torch this project relies on, in one list.

Each one carries a guarantee (requeue, exact resume, DDP inside a sweep, W&B reattachment, memory
probing); an upgrade that renames one would break it silently. ``tests/test_private_apis.py`` checks every
entry against the installed packages and names the one that changed, where it is used and what breaks;
``pyproject.toml`` bounds the packages at versions that pass.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class PrivateAPI:
    what: str  # the private name, as the code uses it
    where: str  # our use of it, under randwire (layer.module.name)
    guarantee: str  # what breaks without it
    present: Callable[[], bool]


def _module_has(module: str, *names: str) -> Callable[[], bool]:
    def check() -> bool:
        mod = importlib.import_module(module)
        return all(hasattr(mod, name) for name in names)

    return check


def _trainer_has(path: str) -> Callable[[], bool]:
    def check() -> bool:
        import pytorch_lightning as pl

        obj: Any = pl.Trainer(
            logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False
        )
        for part in path.split("."):
            if not hasattr(obj, part):
                return False
            obj = getattr(obj, part)
        return True

    return check


def _observer_has() -> bool:
    from lightning_fabric.strategies.launchers.subprocess_script import _ChildProcessObserver

    source = inspect.getsource(_ChildProcessObserver)
    return hasattr(_ChildProcessObserver, "_terminate_all") and all(
        f"self.{name}" in source for name in ("_child_processes", "_finished", "_termination_signal", "_main_pid")
    )


def _wandb_logger_has() -> bool:
    from pytorch_lightning.loggers import WandbLogger

    logger = WandbLogger(mode="disabled")
    return isinstance(getattr(logger, "_wandb_init", None), dict) and hasattr(logger, "_id")


def _plugin_submits_with_map_array() -> bool:
    from hydra_plugins.hydra_submitit_launcher.submitit_launcher import BaseSubmititLauncher

    source = inspect.getsource(BaseSubmititLauncher.launch)
    return "executor.map_array(" in source and ".results()" in source


def _basic_sweeper_splits() -> bool:
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper

    return callable(getattr(BasicSweeper, "split_arguments", None))


def _hydra_config_settable() -> bool:
    from hydra.core.hydra_config import HydraConfig

    return hasattr(HydraConfig.instance(), "cfg") and callable(getattr(HydraConfig.instance(), "set_config", None))


PRIVATE_APIS: tuple[PrivateAPI, ...] = (
    PrivateAPI(
        "Trainer._signal_connector.received_sigterm",
        "training.signals.SignalCheckpoint._raise_stop_flag",
        "SIGUSR1/2 and Ctrl-C stop training at the end of the step, with a checkpoint; a signal during a "
        "validation waits for its end",
        _trainer_has("_signal_connector.received_sigterm"),
    ),
    PrivateAPI(
        "Trainer.fit_loop._data_fetcher",
        "training.data_order.ResumeOrder",
        "a mid-epoch resume continues with the next unseen batch (exact resume)",
        _trainer_has("fit_loop._data_fetcher"),
    ),
    PrivateAPI(
        "Trainer._accelerator_connector.cluster_environment",
        "training.distributed.leave_requeue_to_submitit",
        "a Slurm timeout is requeued once (by submitit), not twice",
        _trainer_has("_accelerator_connector.cluster_environment"),
    ),
    PrivateAPI(
        "pytorch_lightning.strategies.launchers.subprocess_script._hydra_subprocess_cmd, _launch_process_observer",
        "training.distributed.child_ranks_run_this_job",
        "local DDP inside a -m sweep: child ranks re-run this job, a dead rank fails only its job",
        _module_has(
            "pytorch_lightning.strategies.launchers.subprocess_script",
            "_hydra_subprocess_cmd",
            "_launch_process_observer",
        ),
    ),
    PrivateAPI(
        "lightning_fabric ... _ChildProcessObserver (_terminate_all, _child_processes, _finished)",
        "training.distributed._sweep_safe_observer",
        "a dead DDP rank fails its job, not the sweep",
        _observer_has,
    ),
    PrivateAPI(
        "WandbLogger._wandb_init, WandbLogger._id",
        "training.loggers._attach",
        "a resumed run whose W&B id is still held logs to a new W&B run instead of failing",
        _wandb_logger_has,
    ),
    PrivateAPI(
        "hydra._internal.core_plugins.basic_sweeper.BasicSweeper.split_arguments",
        "training.resources.sweep_plan",
        "the summary lists the jobs a cut-short sweep never started",
        _basic_sweeper_splits,
    ),
    PrivateAPI(
        "HydraConfig.instance().cfg",
        "training.launcher.SlurmLauncher._record_lost",
        "a cancelled Slurm job is recorded under its own setting",
        _hydra_config_settable,
    ),
    PrivateAPI(
        "BaseSubmititLauncher.launch submits with executor.map_array, then waits on results()",
        "training.launcher.SlurmLauncher.launch",
        "a cancelled job or an unsatisfiable request ends the sweep's wait",
        _plugin_submits_with_map_array,
    ),
    PrivateAPI(
        "torch.utils._python_dispatch.TorchDispatchMode",
        "models.memory.CPUHeapPeak",
        "the CPU peak memory of a training step",
        _module_has("torch.utils._python_dispatch", "TorchDispatchMode"),
    ),
)


def changed() -> list[str]:
    """One line per private API that the installed packages no longer have."""
    lines = []
    for api in PRIVATE_APIS:
        try:
            ok = api.present()
        except Exception as err:  # an import that moved
            ok, why = False, f" ({type(err).__name__}: {err})"
        else:
            why = ""
        if not ok:
            lines.append(f"{api.what} is gone{why}: {api.where} uses it so that {api.guarantee}")
    return lines
