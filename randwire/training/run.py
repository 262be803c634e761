"""What ``train.py`` does, as a function of a composed config (testable in-process): check, build, fit, test.

A run directory holds everything a later analysis needs, written by rank 0 only:
``metrics.json``, ``config.yaml`` (resolved), ``graphs/stage{i}.json|png``, ``checkpoints/{last,best}.ckpt``.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from ..models.files import atomic_write, disk_error, write_error_line
from .attempts import end_attempt, start_attempt
from .checkpoints import finished_metrics, start_checkpoint
from .components import (
    adopt_backbone_config,
    build_module,
    build_net,
    build_trainer,
    print_config_tree,
    user_callbacks,
)
from .config import build, build_each
from .distributed import child_ranks_run_this_job, is_child_rank, leave_requeue_to_submitit
from .errors import DataError, RunInterrupted, TrainingDiverged, WriteError
from .folder_lock import FolderLock
from .loggers import finish_wandb, log_run_artifacts, wandb_record
from .plan import NetworkPlan, check
from .provenance import provenance
from .records import METRICS_FILE, group_name, group_overrides, write_failure
from .resources import apply_cpu_share


def train(cfg: DictConfig, script: str | os.PathLike | None = None) -> dict[str, Any]:
    """Check and build every component (nothing loaded, nothing written) → fit → test → ``metrics.json``.

    ``script``: the entry point (train.py) that DDP child ranks re-run with this job's overrides. A write
    the disk refuses (full, quota, read-only), wherever it happens, is one :class:`WriteError` line and
    ``status: failed`` where that can still be written; the checkpoints already written stay whole."""
    try:
        return _train(cfg, script)
    except (OSError, RuntimeError) as err:
        disk = disk_error(err)
        if disk is None:
            raise
        line = write_error_line(disk)
        if not is_child_rank():
            write_failure(Path(cfg.paths.output_dir), cfg, line)
        raise WriteError(line) from None


def _train(cfg: DictConfig, script: str | os.PathLike | None) -> dict[str, Any]:
    adopt_backbone_config(cfg)  # task=detection with backbone.ckpt: the network its checkpoint stores
    plan = check(cfg)  # every value once, before any heavy import, data load or write
    with contextlib.ExitStack() as held:  # the run folder's lock, once taken, until the run ends
        return _checked_train(cfg, plan, script, held)


@dataclass
class Run:
    """One training run as it is built and fitted: its config, its folder and what was built for it, so the
    steps of :func:`train` pass one object instead of a dozen arguments."""

    cfg: DictConfig
    plan: NetworkPlan  # what the one validation pass checked (randwire.training.plan.check)
    config: dict[str, Any]  # the resolved config, plain data (stored in checkpoints, logged once)
    dir: Path
    early: Any  # SignalsBeforeFit: a signal before the first step stops the run there
    start: float = field(default_factory=time.time)
    loggers: list = field(default_factory=list)
    built_in: list = field(default_factory=list)  # the framework's callbacks, always on
    datamodule: Any = None
    trainer: Any = None
    net: Any = None
    module: Any = None
    ckpt_path: str | None = None  # what fit starts from (a resume or ckpt_path)
    origin: dict[str, Any] = field(default_factory=dict)  # provenance: code, machine, threads
    wandb_run: dict[str, Any] | None = None

    def callback(self, kind: type):
        return next(c for c in self.built_in if isinstance(c, kind))

    def progress(self) -> dict[str, Any]:
        """How far the run got: recorded next to the status of a run that did not finish."""
        return {
            "epochs": self.trainer.current_epoch,
            "global_step": self.trainer.global_step,
            "wall_time_s": round(time.time() - self.start, 2),
        }


def _quiet_lightning() -> None:
    import warnings

    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\).*")  # Lightning-internal noise
    # Reading: outside a Slurm allocation srun has nothing to do, and inside one the launcher (submitit_slurm)
    # starts each task with srun already; Lightning's hint on every run of a machine with Slurm installed is noise.
    warnings.filterwarnings("ignore", message=r"The `srun` command is available on your system but is not used")
    # Lightning's doubt about a mid-epoch resume: EpochOrder + ResumeOrder resume exactly
    warnings.filterwarnings("ignore", message=r".*resuming from a checkpoint that ended before the epoch ended.*")


def _checked_train(
    cfg: DictConfig, plan: NetworkPlan, script: str | os.PathLike | None, held: contextlib.ExitStack
) -> dict[str, Any]:
    from .signals import SignalsBeforeFit

    _quiet_lightning()
    run = Run(cfg, plan, OmegaConf.to_container(cfg, resolve=True), Path(cfg.paths.output_dir), SignalsBeforeFit())
    try:
        with run.early:
            finished = finished_metrics(run.dir, run.config)
            if finished is not None:  # a sweep rerun into its folder: finished jobs are not trained again
                print(f"already finished: {run.dir / METRICS_FILE} (delete it to train this job again)", flush=True)
                return finished
            _build(run)
            if not is_child_rank():  # one process per run folder, from its first write (DDP ranks share rank 0's)
                held.enter_context(FolderLock(run.dir))
                run.early.run_dir = run.dir  # this process's folder now: an early stop is recorded there
                start_attempt(run.dir, run.start)
            if run.trainer.is_global_zero:
                _write_start(run)
            return _fit_guarded(run, script)
    except RunInterrupted as err:
        if not run.early.training_started and run.early.run_dir is not None:  # this process's (locked) folder
            write_failure(run.dir, cfg, str(err), status="interrupted", wall_time_s=round(time.time() - run.start, 2))
            finish_wandb(run.loggers, run.dir)
        raise


def _build(run: Run) -> None:
    """Data, loggers, callbacks, trainer, network and module, and the checkpoint to start from: each checked
    as it is built; nothing loaded and nothing written yet."""
    import pytorch_lightning as pl

    from .callbacks import DivergenceGuard, EpochLine, ResumableRNG, StepMemory
    from .checkpoint_io import AtomicCheckpointIO
    from .data_order import ResumeOrder
    from .signals import SignalCheckpoint

    cfg = run.cfg
    run.datamodule = build("data", cfg.data, seed=cfg.seed)  # checks its values and paths; loads nothing yet
    run.loggers = list(build_each("logger", cfg.get("logger")).values())
    run.built_in = [
        StepMemory(),
        DivergenceGuard(),
        ResumableRNG(cfg.seed),
        ResumeOrder(),
        SignalCheckpoint(run.dir / "checkpoints" / "last.ckpt", before_fit=run.early),
        *([] if sys.stdout.isatty() else [EpochLine()]),
    ]
    callbacks = [*user_callbacks(build_each("callbacks", cfg.get("callbacks")), bool(run.loggers)), *run.built_in]
    run.trainer = build_trainer(cfg, callbacks, run.loggers, plugins=[AtomicCheckpointIO()])
    leave_requeue_to_submitit(run.trainer)
    cpu = apply_cpu_share(cfg)  # after the data and trainer values were checked
    # Lightning seeds Python, numpy and torch (and dataloader workers); `seed is not None`, so 0 counts.
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    run.module = build_module(cfg, build_net(cfg, run.plan), run.config)
    run.net = run.module.net  # the network trained (a detector trains a copy of the one built)
    run.ckpt_path = start_checkpoint(cfg, run.net, run.dir, run.config)
    run.origin = {**provenance(run.trainer), "cpu_threads": cpu}


def _write_start(run: Run) -> None:
    """Rank 0, before fit: the run's config, its stage graphs (JSON + picture), the logger's config."""
    from ..models.plotting import draw_stage

    cfg, net = run.cfg, run.net
    print(
        f"built-in callbacks (always on; callbacks=none leaves them): "
        f"{', '.join(type(c).__name__ for c in run.built_in)}",
        flush=True,
    )
    if cfg.extras.print_config:
        print_config_tree(cfg)
    run.dir.mkdir(parents=True, exist_ok=True)
    atomic_write(run.dir / "config.yaml", OmegaConf.to_yaml(cfg, resolve=True))
    for i, graph in enumerate(net.graphs):
        graph.save(run.dir / "graphs" / f"stage{i}.json")
        if cfg.extras.draw_graphs:
            picture, title = run.dir / "graphs" / f"stage{i}.png", f"stage {i}: {graph.describe()}  seed={cfg.seed}"
            draw_stage(graph, picture, title=title)
    cx = run.module.cx
    if "backbone_flops" in cx:
        h, w = cx["input_size"]
        print(
            f"detector: {cx['params'] / 1e6:.2f}M params, {cx['flops'] / 1e9:.3g}G multiply-adds at {h}x{w} "
            f"(backbone {cx['backbone_params'] / 1e6:.2f}M, {cx['backbone_flops'] / 1e9:.3g}G)",
            flush=True,
        )
    run.wandb_run = wandb_record(run.loggers, run.dir)  # starts (or reattaches to) the W&B run first
    for logger in run.loggers:  # the W&B (or CSV, TensorBoard) config: the resolved Hydra config, once
        logger.log_hyperparams(
            {
                **run.config,
                "complexity/params": run.module.cx["params"],
                "complexity/flops": run.module.cx["flops"],
                "graph_hashes": [g.hash for g in net.graphs],
                "provenance": run.origin,
            }
        )


DETECTOR_CX = ("backbone_params", "backbone_flops", "input_size")  # a detector's complexity, besides params/flops


def _fit_guarded(run: Run, script: str | os.PathLike | None) -> dict[str, Any]:
    """:func:`_fit_and_test`, with each way a fit can stop early turned into its record and one line."""
    import signal

    from pytorch_lightning.utilities.exceptions import SIGTERMException

    from .signals import SignalCheckpoint

    rank0 = run.trainer.is_global_zero
    try:
        with child_ranks_run_this_job(script and Path(script).resolve(), str(run.dir.resolve())):
            return _fit_and_test(run)
    except DataError as err:  # from a DataLoader worker it arrives with the worker's traceback inside
        line = _own_line(err)
        if rank0:  # the attempt is closed and the job listed as failed, with its reason
            write_failure(run.dir, run.cfg, line, **run.progress())
        raise DataError(line) from None
    except TrainingDiverged as err:
        if rank0:
            write_failure(run.dir, run.cfg, str(err), status="diverged", **run.progress())
        raise
    except SIGTERMException:
        on_signal = run.callback(SignalCheckpoint)
        if on_signal.signum is None:
            raise
        line = (
            f"interrupted by {signal.Signals(on_signal.signum).name} at epoch {run.trainer.current_epoch}, step "
            f"{run.trainer.global_step}: checkpoint written to {on_signal.path}; the same command continues "
            f"from it (a Slurm requeue does)"
        )
        if rank0:
            write_failure(run.dir, run.cfg, line, status="interrupted", **run.progress())
        raise RunInterrupted(line, on_signal.signum) from None
    finally:
        finish_wandb(run.loggers, run.dir)


def _test_checkpoint(run: Run) -> tuple[str | None, str]:
    """Which weights the test split is run on, and why."""
    checkpoint_cb = run.trainer.checkpoint_callback
    best = getattr(checkpoint_cb, "best_model_path", "") if checkpoint_cb else ""
    if getattr(run.datamodule, "test_is_val", False):
        # Validation is the test split (ImageNet: val is the test set): the best-validation checkpoint would
        # report a maximum over epochs of test accuracy. The paper reports the final model.
        return None, "the final weights: validation is the test split here, so best-val selection would peek at it"
    if best and not run.trainer.fast_dev_run:
        return best, "the best-validation checkpoint (validation is a held-out split, not the test split)"
    return None, "the final weights (no best-validation checkpoint)"


def _best_val(trainer, metric: str) -> float | None:
    """Best validation result of the task's ``metric`` (``val/acc1``, ``val/map``): the checkpoint
    callback's (it spans resumed epochs too), else the logged ``<metric>_best`` (there without a checkpoint
    callback). Read before test() logs its own metrics."""
    checkpoint_cb = trainer.checkpoint_callback
    if checkpoint_cb and checkpoint_cb.best_model_score is not None and checkpoint_cb.monitor == metric:
        return float(checkpoint_cb.best_model_score)
    logged = trainer.callback_metrics.get(f"{metric}_best")
    return None if logged is None else float(logged)


def _fit_and_test(run: Run) -> dict[str, Any]:
    """``fit`` then ``test``, and the run's ``metrics.json`` (rank 0 writes it; every rank returns it)."""
    from .callbacks import StepMemory

    cfg, trainer, net, module = run.cfg, run.trainer, run.net, run.module
    trainer.fit(module, datamodule=run.datamodule, ckpt_path=run.ckpt_path)
    best_val = _best_val(trainer, module.val_metric)
    peak_mb, peak_kind = run.callback(StepMemory).result()
    test_ckpt, why = _test_checkpoint(run)
    results = trainer.test(module, datamodule=run.datamodule, ckpt_path=test_ckpt, verbose=False)[0]
    if trainer.is_global_zero:
        weights = Path(test_ckpt).name if test_ckpt else "final weights"
        print("\n".join(module.test_lines(results, f"test ({weights}):")), flush=True)
    pictures = module.pictures(run.dir, run.datamodule) if trainer.is_global_zero else {}
    metrics = {
        "status": "ok",
        **({"task": module.task} if module.task != "classification" else {}),
        **{key: results.get(key) for key in module.test_metrics},
        f"{module.val_metric}_best": best_val,
        "params": module.cx["params"],
        "flops": module.cx["flops"],
        **{k: module.cx[k] for k in DETECTOR_CX if k in module.cx},
        **({"pictures": {k: str(Path(v).relative_to(run.dir)) for k, v in pictures.items()}} if pictures else {}),
        "image_size": cfg.data.get("image_size"),
        "c": net.spec.c,
        "node_op": net.spec.node_op,
        "stem_channels": net.spec.stem_channels,
        "seed": cfg.seed,
        "graph_hashes": [g.hash for g in net.graphs],
        "group": group_name(cfg),
        "overrides": group_overrides(cfg),
        "tags": list(cfg.get("tags") or []),
        **run.progress(),
        "peak_train_memory_mb": None if peak_mb is None else round(peak_mb, 1),
        "peak_train_memory_kind": peak_kind,
        "test_checkpoint": test_ckpt or "final weights",
        "test_checkpoint_why": why,
        "device": "cuda" if trainer.strategy.root_device.type == "cuda" else "cpu",
        "world_size": trainer.world_size,
        "ranks_with_same_graphs": module.ranks_with_same_graphs,
        "rank_hosts": module.rank_hosts,
        "provenance": run.origin,
    }
    if run.wandb_run is not None and trainer.is_global_zero:
        metrics["wandb"] = run.wandb_run
    if trainer.is_global_zero:
        metrics.update(end_attempt(run.dir, "ok"))
        atomic_write(run.dir / METRICS_FILE, json.dumps(metrics, indent=1) + "\n")
        log_run_artifacts(run.loggers, run.dir, len(net.graphs), pictures)
    return metrics


def _own_line(err: BaseException) -> str:
    """The error's own line, without the worker traceback that DataLoader wraps around it."""
    text = str(err)
    if "Original Traceback" not in text:
        return text
    last = [line for line in text.splitlines() if line.strip()][-1]
    return last.split(f"{type(err).__name__}: ", 1)[-1]
