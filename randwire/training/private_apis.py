"""Every private attribute of Lightning, Hydra, submitit, W&B and torch that randwire uses, behind one
function each: the rest of the code calls these and never names a private attribute (tests/test_private_apis.py
greps for the names below outside this module).

Each use carries a guarantee (requeue, exact resume, DDP inside a sweep, W&B reattachment, memory
probing); an upgrade that renames one would break it silently. :data:`PRIVATE_APIS` lists them with the
adapter that uses each, what breaks without it and the versions it was checked on; the test checks every
entry against the installed packages and names the one that changed. ``pyproject.toml`` bounds the packages
at versions that pass.
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# The private names the adapters below use: none of them appears in randwire outside this module.
PRIVATE_NAMES = (
    *("._signal_connector", "._data_fetcher", "._accelerator_connector", "._trainer"),  # Lightning's Trainer
    *("._hydra_subprocess_cmd", "._launch_process_observer", "_ChildProcessObserver"),  # its DDP launcher
    *("._child_processes", "._termination_signal", "._main_pid", "._finished"),
    *("._wandb_init", "logger._id"),  # its W&B logger
    *("hydra._internal", ".set_config(", "f_locals"),  # Hydra
    "torch.utils._python_dispatch",
)


@dataclass(frozen=True)
class PrivateAPI:
    what: str  # the private name, as the code uses it
    where: str  # its adapter, under randwire (layer.module.name)
    guarantee: str  # what breaks without it
    present: Callable[[], bool]
    checked: str = ""  # the versions it was checked on


# ----------------------------------------------------------------------------------------------------
# The adapters.
# ----------------------------------------------------------------------------------------------------


def set_stop_flag(trainer: Any, up: bool) -> None:
    """Lightning stops at the end of this step while the flag is up (as after SIGTERM)."""
    trainer._signal_connector.received_sigterm = up


def restart_fit_iterator(trainer: Any) -> None:
    """Make the fit's one training iterator again (its sampler has been moved to the resume position)."""
    iter(trainer.fit_loop._data_fetcher)


def cluster_environment(trainer: Any) -> Any:
    """The cluster environment Lightning chose (SLURMEnvironment under Slurm)."""
    return trainer._accelerator_connector.cluster_environment


def attached_trainer(module: Any) -> Any:
    """The trainer a LightningModule is attached to, or None (``module.trainer`` raises when there is none)."""
    return module._trainer


def forget_wandb_run_id(logger: Any) -> str | None:
    """Make a WandbLogger start a new W&B run on its next ``.experiment``; the id it had."""
    old = logger._wandb_init.get("id")
    logger._wandb_init.update(id=None, resume=None)
    logger._id = None
    return old


def split_sweep_arguments(parsed: list, max_batch_size: int | None) -> list:
    """Hydra's basic sweeper's own split of parsed overrides into launch batches of job override lists."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper

    return BasicSweeper.split_arguments(parsed, max_batch_size)


@contextlib.contextmanager
def hydra_config_as(config: Any) -> Iterator[None]:
    """Inside: HydraConfig is ``config`` (a job's, read by code that names the job's setting); then as before."""
    from hydra.core.hydra_config import HydraConfig

    before = HydraConfig.instance().cfg
    HydraConfig.instance().set_config(config)
    try:
        yield
    finally:
        HydraConfig.instance().cfg = before


def hydra_job_dir(err: BaseException) -> str | None:
    """The job folder Hydra was setting up when ``err`` was raised (its ``run_job``'s ``output_dir`` local;
    Hydra resets its runtime config on the way out), if the traceback shows it."""
    tb = err.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_name == "run_job" and isinstance(tb.tb_frame.f_locals.get("output_dir"), str):
            return str(Path(tb.tb_frame.f_locals["output_dir"]).resolve())
        tb = tb.tb_next
    return None


def torch_dispatch_mode() -> type:
    """torch's base class of Python dispatch modes (sees every op: the CPU heap probe)."""
    from torch.utils._python_dispatch import TorchDispatchMode

    return TorchDispatchMode


@contextlib.contextmanager
def ddp_launch_hooks(command: Callable[[int], Any] | None, deadline_s: float) -> Iterator[None]:
    """Inside: Lightning's DDP launcher starts child rank ``local_rank`` with ``command(local_rank)`` (None:
    its own), and watches them with :func:`sweep_safe_observer`; then its own functions again."""
    import pytorch_lightning.strategies.launchers.subprocess_script as launcher  # holds its own references

    saved = launcher._hydra_subprocess_cmd, launcher._launch_process_observer
    if command is not None:
        launcher._hydra_subprocess_cmd = command
    launcher._launch_process_observer = lambda children: sweep_safe_observer(children, deadline_s)
    try:
        yield
    finally:
        launcher._hydra_subprocess_cmd, launcher._launch_process_observer = saved


_OBSERVERS: list = []


def sweep_safe_observer(child_processes: list, deadline_s: float) -> Any:
    """Lightning's child-process observer SIGKILLs the launching process when a child rank dies: inside a
    sweep, that ends every later job. This one ends the other child ranks only, and kills the launching
    process only if it is still in this job after ``deadline_s``."""
    from lightning_fabric.strategies.launchers.subprocess_script import _ChildProcessObserver

    class Observer(_ChildProcessObserver):
        def _terminate_all(self) -> None:
            for proc in self._child_processes:
                proc.send_signal(self._termination_signal)
            self.deadline = threading.Timer(deadline_s, os.kill, (self._main_pid, self._termination_signal))
            self.deadline.daemon = True
            self.deadline.start()

    observer = Observer(child_processes=child_processes, main_pid=os.getpid())
    observer.deadline = None
    observer.start()
    _OBSERVERS.append(observer)
    return observer


def end_child_ranks(wait_s: float) -> None:
    """This job's observer stops; child ranks still alive after ``wait_s`` (blocked after a failure) end."""
    import subprocess

    while _OBSERVERS:
        observer = _OBSERVERS.pop()
        observer._finished = True
        if observer.deadline is not None:
            observer.deadline.cancel()
        for proc in observer._child_processes:
            try:
                proc.wait(timeout=wait_s)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


# ----------------------------------------------------------------------------------------------------
# The list, and the checks that the installed packages still have each name.
# ----------------------------------------------------------------------------------------------------


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


def _module_attribute_is_none(name: str) -> Callable[[], bool]:
    def check() -> bool:
        import pytorch_lightning as pl

        return getattr(pl.LightningModule(), name, False) is None

    return check


def _run_job_has_output_dir() -> bool:
    from hydra.core.utils import run_job

    return "output_dir" in inspect.getsource(run_job)


# The versions each was checked on: those this suite last passed with (pyproject.toml bounds what is allowed).
PL = "pytorch-lightning 2.6.6, lightning-fabric 2.6.6"
HYDRA = "hydra-core 1.3.8"
PRIVATE_APIS: tuple[PrivateAPI, ...] = (
    PrivateAPI(
        "Trainer._signal_connector.received_sigterm",
        "training.private_apis.set_stop_flag",
        "SIGUSR1/2 and Ctrl-C stop training at the end of the step, with a checkpoint; a signal during a "
        "validation waits for its end",
        _trainer_has("_signal_connector.received_sigterm"),
        PL,
    ),
    PrivateAPI(
        "Trainer.fit_loop._data_fetcher",
        "training.private_apis.restart_fit_iterator",
        "a mid-epoch resume continues with the next unseen batch (exact resume)",
        _trainer_has("fit_loop._data_fetcher"),
        PL,
    ),
    PrivateAPI(
        "Trainer._accelerator_connector.cluster_environment",
        "training.private_apis.cluster_environment",
        "a Slurm timeout is requeued once (by submitit), not twice",
        _trainer_has("_accelerator_connector.cluster_environment"),
        PL,
    ),
    PrivateAPI(
        "LightningModule._trainer",
        "training.private_apis.attached_trainer",
        "the global batch (lr scaling) of a module not attached to a trainer yet",
        _module_attribute_is_none("_trainer"),
        PL,
    ),
    PrivateAPI(
        "pytorch_lightning.strategies.launchers.subprocess_script._hydra_subprocess_cmd, _launch_process_observer",
        "training.private_apis.ddp_launch_hooks",
        "local DDP inside a -m sweep: child ranks re-run this job, a dead rank fails only its job",
        _module_has(
            "pytorch_lightning.strategies.launchers.subprocess_script",
            "_hydra_subprocess_cmd",
            "_launch_process_observer",
        ),
        PL,
    ),
    PrivateAPI(
        "lightning_fabric ... _ChildProcessObserver (_terminate_all, _child_processes, _finished)",
        "training.private_apis.sweep_safe_observer",
        "a dead DDP rank fails its job, not the sweep",
        _observer_has,
        PL,
    ),
    PrivateAPI(
        "WandbLogger._wandb_init, WandbLogger._id",
        "training.private_apis.forget_wandb_run_id",
        "a resumed run whose W&B id is still held logs to a new W&B run instead of failing",
        _wandb_logger_has,
        "pytorch-lightning 2.6.6, wandb 0.31.0",
    ),
    PrivateAPI(
        "hydra._internal.core_plugins.basic_sweeper.BasicSweeper.split_arguments",
        "training.private_apis.split_sweep_arguments",
        "the summary lists the jobs a cut-short sweep never started",
        _basic_sweeper_splits,
        HYDRA,
    ),
    PrivateAPI(
        "HydraConfig.instance().cfg, .set_config",
        "training.private_apis.hydra_config_as",
        "a cancelled Slurm job is recorded under its own setting",
        _hydra_config_settable,
        HYDRA,
    ),
    PrivateAPI(
        "hydra._internal.utils.run_job's local output_dir (in the traceback)",
        "training.private_apis.hydra_job_dir",
        "a job rejected before it started leaves no folder behind in a sweep",
        _run_job_has_output_dir,
        HYDRA,
    ),
    PrivateAPI(
        "BaseSubmititLauncher.launch submits with executor.map_array, then waits on results()",
        "training.launcher.SlurmLauncher.launch",
        "a cancelled job or an unsatisfiable request ends the sweep's wait",
        _plugin_submits_with_map_array,
        "hydra-submitit-launcher 1.2.0, submitit 1.5.4",
    ),
    PrivateAPI(
        "torch.utils._python_dispatch.TorchDispatchMode",
        "training.private_apis.torch_dispatch_mode",
        "the CPU peak memory of a training step",
        _module_has("torch.utils._python_dispatch", "TorchDispatchMode"),
        "torch 2.14.1",
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
