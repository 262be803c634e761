"""What ``train.py`` and ``evaluate.py`` do, as functions of a composed config (testable in-process).

A run directory holds everything a later analysis needs, written by rank 0 only:
``metrics.json``, ``config.yaml`` (resolved), ``graphs/stage{i}.json|png``, ``checkpoints/{last,best}.ckpt``.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import sys
import time
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from .attempts import end_attempt, start_attempt
from ..models.errors import BadValue, ConfigError
from .errors import CheckpointError
from .config import build, build_each, check_execution_cfg, check_network_cfg, check_optimization, check_start_keys, compose_config, graph_params
from .data_values import check_data_cfg
from .distributed import check_strategy, child_ranks_run_this_job, is_child_rank, leave_requeue_to_submitit
from .folder_lock import FolderLock
from ..models.files import atomic_write, disk_error, write_error_line
from .errors import DataError, RunInterrupted, TrainingDiverged, WriteError
from ..models.errors import is_int, require, require_choice
from .provenance import provenance
from .resources import apply_cpu_share
from .loggers import finish_wandb, log_run_artifacts, wandb_record
from .records import METRICS_FILE, group_name, group_overrides, write_failure
# evaluate.py's precision (trainer.precision's names): the autocast dtype of the forward pass.
EVAL_PRECISIONS = {"32-true": "float32", "bf16-mixed": "bfloat16", "16-mixed": "float16"}


def build_net(cfg: DictConfig):
    """The network of g(θ, s): stage graphs sampled from ``cfg.seed``, initial weights seeded by it too."""
    from ..models.execution import configure_execution
    from ..models.network import network_from_graphs
    from ..models.architecture import sample_stage_graphs

    g, r = cfg.graph, cfg.regime
    graphs = sample_stage_graphs(r.name, g.name, g.n, cfg.seed, **graph_params(g))
    sizes = dict(num_classes=cfg.data.num_classes, node_op=cfg.node_op.name, in_channels=cfg.data.in_channels,
                 head_channels=r.head_channels)
    c = r.c
    if c != "auto" and r.get("flops") is not None:
        print(f"note: regime.flops={r.flops} is not used: it is read only with regime.c=auto (C={c} as given)", flush=True)
    if c == "auto":  # the paper compares at (nearly) equal FLOPs: C from the budget, on these very graphs
        from ..models.architecture import network_cx, solve_width
        from ..models.complexity import Cx

        c, stem = solve_width(float(r.flops), r.name, graphs, cfg.data.image_size, **sizes)
        if stem is not None:
            sizes["stem_channels"] = stem
        got = network_cx(Cx(h=cfg.data.image_size, w=cfg.data.image_size), r.name, graphs, c, **sizes).flops
        print(f"regime.c=auto: C={c}" + (f", conv1 width {stem} (C/2 = {c // 2} would miss by more than 1%)" if stem else "")
              + f" for regime.flops={float(r.flops):.4g} at {cfg.data.image_size}px: {got / 1e6:.4g}M "
              f"({100 * (got / float(r.flops) - 1):+.2f}%)", flush=True)
    net = network_from_graphs(
        r.name, graphs, c, init_seed=cfg.seed, dropout=r.dropout, edge_drop=r.edge_drop,
        edge_drop_mode=r.get("edge_drop_mode", "per_node"), **sizes,
    )
    return configure_execution(net, dict(cfg.get("execution") or {}))


def print_config_tree(cfg: DictConfig) -> None:
    """The resolved config as a tree, one branch per group (lightning-hydra-template's ``print_config_tree``)."""
    from rich.console import Console
    from rich.tree import Tree

    def add(branch, node) -> None:
        for key, value in node.items():
            if isinstance(value, dict):
                add(branch.add(f"[bold]{key}[/bold]"), value)
            else:
                branch.add(f"{key}: {value!r}", highlight=False)

    tree = Tree("config", guide_style="dim")
    add(tree, OmegaConf.to_container(cfg, resolve=True))
    console = Console()
    if not console.is_terminal:
        console = Console(width=max(console.width, 130))
    console.print(tree)


def _split_callbacks(built: dict[str, Any], has_logger: bool) -> list:
    """Progress bar and model summary on a terminal only (a log file would fill with redraws); no
    LearningRateMonitor without a logger (Lightning refuses it)."""
    from pytorch_lightning.callbacks import LearningRateMonitor, ModelSummary, ProgressBar

    tty = sys.stdout.isatty()
    keep = []
    for cb in built.values():
        if isinstance(cb, (ProgressBar, ModelSummary)) and not tty:
            continue
        if isinstance(cb, LearningRateMonitor) and not has_logger:
            continue
        keep.append(cb)
    return keep


# What may differ between a run and the checkpoint it resumes from (reading: a longer schedule, another
# machine's workers or data location, bookkeeping). Everything else must match, or the resumed run would
# silently be another experiment.
BOOKKEEPING = ("resume", "ckpt_path", "tags", "extras.", "paths.", "trainer.default_root_dir", "logger.", "callbacks.")
RESUME_MAY_CHANGE = ("trainer.max_epochs", "data.num_workers", *BOOKKEEPING)


def _flatten(node: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(node, dict):
        out: dict[str, Any] = {}
        for key, value in node.items():
            out.update(_flatten(value, f"{prefix}{key}."))
        return out
    return {prefix[:-1]: node}


def _differing_keys(then: dict[str, Any], now: dict[str, Any], may_change: tuple[str, ...]) -> list[str]:
    """Keys of two flattened configs whose values differ, except those starting with a ``may_change`` prefix."""
    return sorted(k for k in set(then) | set(now) if then.get(k) != now.get(k) and not k.startswith(may_change))


def _check_same_run(key: str, path: Path, info: dict[str, Any], net, cfg: DictConfig,
                    config_dict: dict[str, Any] | None) -> None:
    """The checkpoint's stored graphs (and, given ``config_dict``, its run config) must be this command's;
    one line naming what differs."""
    stored = [g.get("hash") for g in info["net_spec"].get("graphs", [])]
    if stored != [g.hash for g in net.graphs]:
        raise CheckpointError(f"{key}={str(path)!r}: its stored graphs are not this run's (graph={cfg.graph.name}, "
                              f"seed={cfg.seed}): use a checkpoint of the same setting and seed, or another run folder")
    if config_dict is None:  # ckpt_path: a new run from these weights may change the recipe
        return
    then, now = _flatten(info.get("run_config") or {}), _flatten(config_dict)
    differ = [k for k in _differing_keys(then, now, RESUME_MAY_CHANGE) if not (k.startswith("data.") and k.endswith("root"))]
    if differ:
        shown = ", ".join(f"{k}={then.get(k)!r} there, {now.get(k)!r} here" for k in differ[:3])
        raise CheckpointError(f"{key}={str(path)!r} was trained with another config: {shown}"
                              f"{f' (+{len(differ) - 3} more)' if len(differ) > 3 else ''}; allowed to change on "
                              f"resume: {', '.join(RESUME_MAY_CHANGE)} (or use another run folder)")


def _finished_metrics(run_dir: Path, config_dict: dict[str, Any]) -> dict[str, Any] | None:
    """The metrics of this folder's run if it finished (status ok) with this same config (bookkeeping
    aside; a longer ``trainer.max_epochs`` is not the same: that run resumes and trains on)."""
    import yaml

    try:
        metrics = json.loads((run_dir / METRICS_FILE).read_text())
        then = yaml.safe_load((run_dir / "config.yaml").read_text())
    except (OSError, ValueError, yaml.YAMLError):
        return None
    if not isinstance(metrics, dict) or metrics.get("status") != "ok":
        return None
    return metrics if not _differing_keys(_flatten(then or {}), _flatten(config_dict), BOOKKEEPING) else None


def _start_checkpoint(cfg: DictConfig, net, run_dir: Path, config_dict: dict[str, Any]) -> str | None:
    """What ``fit`` starts from, checked before anything is written: the run folder's ``last.ckpt``
    (resume; an unreadable one is reported in one line and the newest readable checkpoint used instead),
    else ``ckpt_path``. Either must hold this run's graphs; a resumed one also this run's config."""
    ckpts = run_dir / "checkpoints"
    last = ckpts / "last.ckpt"
    if cfg.get("resume", True) and last.exists():
        others = sorted((p for p in ckpts.glob("*.ckpt") if p != last), key=lambda p: p.stat().st_mtime, reverse=True)
        for path in (last, *others):
            try:
                ckpt, info = read_checkpoint(path, key="resume")
            except CheckpointError as err:
                print(f"warning: {err}; resuming from the newest readable checkpoint instead", file=sys.stderr)
                continue
            _check_same_run("resume", path, info, net, cfg, config_dict)
            from .module import MID_EPOCH_KEY

            mid = ckpt.get(MID_EPOCH_KEY)
            if isinstance(mid, dict):
                print(f"resuming from the checkpoint written on a signal at epoch {mid.get('epoch')}, step "
                      f"{mid.get('global_step')}: that epoch goes on with the batches it had not yet trained on", flush=True)
            return str(path)
        print(f"warning: no readable checkpoint in {ckpts}: training from the start", file=sys.stderr)
        return None
    if not cfg.get("ckpt_path"):
        return None
    info = read_checkpoint(cfg.ckpt_path, key="ckpt_path")[1]
    _check_same_run("ckpt_path", Path(cfg.ckpt_path), info, net, cfg, None)
    return str(cfg.ckpt_path)


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
    check_network_cfg(cfg)  # seed, graph, regime, node_op: before any heavy import
    check_data_cfg(OmegaConf.to_container(cfg.data, resolve=True) if cfg.get("data") is not None else None)
    check_execution_cfg(cfg.get("execution"))
    check_strategy((cfg.get("trainer") or {}).get("strategy"))
    check_optimization(cfg)
    check_start_keys(cfg)
    with contextlib.ExitStack() as held:  # the run folder's lock, once taken, until the run ends
        return _checked_train(cfg, script, held)


def _checked_train(cfg: DictConfig, script: str | os.PathLike | None, held: contextlib.ExitStack) -> dict[str, Any]:
    import warnings

    import pytorch_lightning as pl
    from pytorch_lightning.callbacks import ModelCheckpoint, ModelSummary, ProgressBar
    from pytorch_lightning.utilities.exceptions import SIGTERMException

    from .data import ResumeOrder
    from .module import AtomicCheckpointIO, DivergenceGuard, EpochLine, ResumableRNG, SignalCheckpoint, SignalsBeforeFit, StepMemory
    from ..models.plotting import draw_stage

    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\).*")  # Lightning-internal noise
    # Reading: outside a Slurm allocation srun has nothing to do, and inside one the launcher (submitit_slurm)
    # starts each task with srun already; Lightning's hint on every run of a machine with Slurm installed is noise.
    warnings.filterwarnings("ignore", message=r"The `srun` command is available on your system but is not used")
    # Lightning's doubt about a mid-epoch resume: EpochOrder + ResumeOrder resume exactly (issue 16 item 4)
    warnings.filterwarnings("ignore", message=r".*resuming from a checkpoint that ended before the epoch ended.*")
    start = time.time()
    run_dir = Path(cfg.paths.output_dir)
    config_dict = OmegaConf.to_container(cfg, resolve=True)
    early = SignalsBeforeFit()  # a signal before the first step stops the run there (or where it made it fail)
    loggers: list = []
    try:
        with early:
            finished = _finished_metrics(run_dir, config_dict)
            if finished is not None:  # a sweep rerun into its folder: finished jobs are not trained again
                print(f"already finished: {run_dir / METRICS_FILE} (delete it to train this job again)", flush=True)
                return finished
            datamodule = build("data", cfg.data, seed=cfg.seed)  # checks its values and paths; loads nothing yet
            loggers = list(build_each("logger", cfg.get("logger")).values())
            step_memory = StepMemory()
            on_signal = SignalCheckpoint(run_dir / "checkpoints" / "last.ckpt", before_fit=early)
            built_in = [step_memory, DivergenceGuard(), ResumableRNG(), ResumeOrder(), on_signal,
                        *([] if sys.stdout.isatty() else [EpochLine()])]  # the framework's guarantees: always on
            callbacks = [*_split_callbacks(build_each("callbacks", cfg.get("callbacks")), bool(loggers)), *built_in]
            trainer = build("trainer", cfg.trainer, callbacks=callbacks, logger=loggers or False, plugins=[AtomicCheckpointIO()],
                            enable_progress_bar=any(isinstance(c, ProgressBar) for c in callbacks),
                            enable_model_summary=any(isinstance(c, ModelSummary) for c in callbacks),
                            enable_checkpointing=any(isinstance(c, ModelCheckpoint) for c in callbacks))
            leave_requeue_to_submitit(trainer)
            cpu = apply_cpu_share(cfg)  # after the data and trainer values were checked
            # Lightning seeds Python, numpy and torch (and dataloader workers); `seed is not None`, so 0 counts.
            pl.seed_everything(cfg.seed, workers=True, verbose=False)
            net = build_net(cfg)
            module = build_module(cfg, net, config_dict)
            ckpt_path = _start_checkpoint(cfg, net, run_dir, config_dict)
            if not is_child_rank():  # one process per run folder, from its first write (DDP ranks share rank 0's)
                held.enter_context(FolderLock(run_dir))
                early.run_dir = run_dir  # this process's folder now: an early stop is recorded there
                start_attempt(run_dir, start)
            rank0, wandb_run = trainer.is_global_zero, None
            origin = {**provenance(trainer), "cpu_threads": cpu}
            if rank0:
                print(f"built-in callbacks (always on; callbacks=none leaves them): "
                      f"{', '.join(type(c).__name__ for c in built_in)}", flush=True)
                if cfg.get("extras", {}).get("print_config", True):
                    print_config_tree(cfg)
                run_dir.mkdir(parents=True, exist_ok=True)
                atomic_write(run_dir / "config.yaml", OmegaConf.to_yaml(cfg, resolve=True))
                for i, graph in enumerate(net.graphs):
                    graph.save(run_dir / "graphs" / f"stage{i}.json")
                    draw_stage(graph, run_dir / "graphs" / f"stage{i}.png", title=f"stage {i}: {graph.describe()}  seed={cfg.seed}")
                wandb_run = wandb_record(loggers, run_dir)  # starts (or reattaches to) the W&B run first
                for logger in loggers:  # the W&B (or CSV, TensorBoard) config: the resolved Hydra config, once
                    logger.log_hyperparams({**config_dict, "complexity/params": module.cx["params"],
                                            "complexity/flops": module.cx["flops"], "graph_hashes": [g.hash for g in net.graphs],
                                            "provenance": origin})
            try:
                with child_ranks_run_this_job(script and Path(script).resolve(), str(run_dir.resolve())):
                    return _fit_and_test(cfg, trainer, module, datamodule, ckpt_path, net, loggers, step_memory, start,
                                         wandb_run if rank0 else None, origin)
            except DataError as err:  # from a DataLoader worker it arrives with the worker's traceback inside
                raise DataError(_own_line(err)) from None
            except TrainingDiverged as err:
                if rank0:
                    write_failure(run_dir, cfg, str(err), status="diverged", **_progress(trainer, start))
                raise
            except SIGTERMException:
                if on_signal.signum is None:
                    raise
                import signal

                name = signal.Signals(on_signal.signum).name
                line = (f"interrupted by {name} at epoch {trainer.current_epoch}, step {trainer.global_step}: "
                        f"checkpoint written to {on_signal.path}; the same command continues from it (a Slurm "
                        f"requeue does)")
                if rank0:
                    write_failure(run_dir, cfg, line, status="interrupted", **_progress(trainer, start))
                raise RunInterrupted(line, on_signal.signum) from None
            finally:
                finish_wandb(loggers, run_dir)
    except RunInterrupted as err:
        if not early.training_started and early.run_dir is not None:  # this process's (locked) folder
            write_failure(run_dir, cfg, str(err), status="interrupted", wall_time_s=round(time.time() - start, 2))
            finish_wandb(loggers, run_dir)
        raise


def _progress(trainer, start: float) -> dict[str, Any]:
    """How far a run got: recorded next to the status of a run that did not finish."""
    return {"epochs": trainer.current_epoch, "global_step": trainer.global_step,
            "wall_time_s": round(time.time() - start, 2)}


def _fit_and_test(cfg: DictConfig, trainer, module, datamodule, ckpt_path: str | None, net, loggers: list,
                  step_memory, start: float, wandb_run: dict[str, Any] | None, origin: dict[str, Any]) -> dict[str, Any]:
    """``fit`` then ``test``, and the run's ``metrics.json`` (rank 0 writes it; every rank returns it)."""
    run_dir = Path(cfg.paths.output_dir)
    trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path)
    checkpoint_cb = trainer.checkpoint_callback
    # The checkpoint callback's best score spans resumed epochs too; the logged val/acc1_best is there
    # without a checkpoint callback.
    if checkpoint_cb and checkpoint_cb.best_model_score is not None and checkpoint_cb.monitor == "val/acc1":
        best_val = float(checkpoint_cb.best_model_score)
    else:
        logged = trainer.callback_metrics.get("val/acc1_best")  # read before test() logs its own
        best_val = None if logged is None else float(logged)
    peak_mb, peak_kind = step_memory.result()
    best = getattr(checkpoint_cb, "best_model_path", "") if checkpoint_cb else ""
    if getattr(datamodule, "test_is_val", False):
        # Validation is the test split (ImageNet: val is the test set): the best-validation checkpoint would
        # report a maximum over epochs of test accuracy. The paper reports the final model (issue 11).
        test_ckpt, why = None, "the final weights: validation is the test split here, so best-val selection would peek at it"
    elif best and not trainer.fast_dev_run:
        test_ckpt, why = best, "the best-validation checkpoint (validation is a held-out split, not the test split)"
    else:
        test_ckpt, why = None, "the final weights (no best-validation checkpoint)"
    results = trainer.test(module, datamodule=datamodule, ckpt_path=test_ckpt, verbose=trainer.is_global_zero)[0]
    metrics = {
        "status": "ok",
        "test/acc1": results.get("test/acc1"), "test/acc5": results.get("test/acc5"), "test/loss": results.get("test/loss"),
        "val/acc1_best": best_val,
        "params": module.cx["params"], "flops": module.cx["flops"], "image_size": cfg.data.image_size, "c": net.config["c"],
        "node_op": net.config["node_op"], "stem_channels": net.config.get("stem_channels"),
        "seed": cfg.seed, "graph_hashes": [g.hash for g in net.graphs], "group": group_name(cfg),
        "overrides": group_overrides(cfg), "tags": list(cfg.get("tags") or []),
        **_progress(trainer, start),
        "peak_train_memory_mb": None if peak_mb is None else round(peak_mb, 1),
        "peak_train_memory_kind": peak_kind, "test_checkpoint": test_ckpt or "final weights", "test_checkpoint_why": why,
        "device": "cuda" if trainer.strategy.root_device.type == "cuda" else "cpu", "world_size": trainer.world_size,
        "ranks_with_same_graphs": module.ranks_with_same_graphs, "provenance": origin,
    }
    if wandb_run is not None:
        metrics["wandb"] = wandb_run
    if trainer.is_global_zero:
        metrics.update(end_attempt(run_dir, "ok"))
        atomic_write(run_dir / METRICS_FILE, json.dumps(metrics, indent=1) + "\n")
        log_run_artifacts(loggers, run_dir, len(net.graphs))
    return metrics


def _own_line(err: BaseException) -> str:
    """The error's own line, without the worker traceback that DataLoader wraps around it."""
    text = str(err)
    if "Original Traceback" not in text:
        return text
    last = [line for line in text.splitlines() if line.strip()][-1]
    return last.split(f"{type(err).__name__}: ", 1)[-1]


def build_module(cfg: DictConfig, net, config_dict: dict[str, Any]):
    """The LightningModule around ``net`` with the optimizer and scheduler partials Hydra builds."""
    from .module import RandWireModule

    model = cfg.get("model") or {}
    try:
        return RandWireModule(
            net=net, optimizer=build("optimizer", cfg.optimizer),
            scheduler=build("scheduler", cfg.scheduler) if cfg.get("scheduler") is not None else None,
            label_smoothing=model.get("label_smoothing", 0.1), lr_reference_batch=model.get("lr_reference_batch", 256),
            image_size=cfg.data.image_size, batch_size=cfg.data.batch_size,
            execution=OmegaConf.to_container(cfg.get("execution") or {}), run_config=config_dict,
        )
    except BadValue as err:
        raise err.under("model.") from None


# ----------------------------------------------------------------------------------------------------
# evaluate.py
# ----------------------------------------------------------------------------------------------------


def read_checkpoint(path: str | os.PathLike, key: str = "ckpt") -> tuple[dict[str, Any], dict[str, Any]]:
    """The checkpoint and its ``randwire`` record, loaded with ``weights_only=True`` (no pickled code runs);
    anything else is one :class:`CheckpointError` naming ``key``."""
    import torch

    from .module import CHECKPOINT_FORMAT

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{key}={str(path)!r}: no such checkpoint file")
    try:
        with open(path, "rb") as f:
            head = f.read(4)
    except OSError as err:
        raise CheckpointError(f"{key}={str(path)!r}: cannot be read ({err.strerror})") from None
    if not head.startswith((b"PK\x03\x04", b"\x80")):  # torch.save writes a zip archive (a pickle before 1.6)
        raise CheckpointError(f"{key}={str(path)!r}: not a readable checkpoint ("
                              f"{'an empty file' if not head else 'not a file torch.save wrote'})")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # truncated zip, pickle garbage, pickled objects that are not plain data
        raise CheckpointError(f"{key}={str(path)!r}: not a readable checkpoint ({_unreadable_why(err)})") from None
    info = ckpt.get("randwire") if isinstance(ckpt, dict) else None
    if not isinstance(info, dict) or not isinstance(info.get("net_spec"), dict):
        raise CheckpointError(f"{key}={str(path)!r}: not a randwire checkpoint (it stores no RandWire graphs)")
    if info.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{key}={str(path)!r}: randwire checkpoint format {info.get('format')!r} is not "
                              f"supported (expected {CHECKPOINT_FORMAT})")
    info["run_config"] = _moved_targets(info.get("run_config"))
    return ckpt, info


# Classes a stored run config names by import path (``_target_``), under the paths they had before the code
# moved into its three layers: a checkpoint of then builds its data module and schedule from today's paths.
MOVED = {"randwire.data.": "randwire.training.data.", "randwire.schedules.": "randwire.training.schedules.",
         "randwire.summary.": "randwire.analysis.summary."}


def _moved_targets(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _moved_targets(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_moved_targets(v) for v in node]
    if isinstance(node, str):
        for old, new in MOVED.items():
            if node.startswith(old):
                return new + node[len(old):]
    return node


def _unreadable_why(err: BaseException) -> str:
    """What torch.load's failure means, in words (its own messages run to a paragraph, or say ``KeyError: 101``)."""
    import pickle

    text = " ".join(str(err).split())
    if isinstance(err, pickle.UnpicklingError) and "Weights only load failed" in text:
        return ("UnpicklingError: it holds pickled Python objects, not plain tensors and data; refused unread, "
                "since loading them could run code")
    if "failed finding central directory" in text or "reading zip archive" in text or isinstance(err, EOFError):
        return f"{type(err).__name__}: truncated or corrupt (a copy or a write cut short)"
    return f"{type(err).__name__}: {text if len(text) <= 160 else text[:157].rsplit(' ', 1)[0] + ' ...'}"


def load_checkpoint(path: str | os.PathLike) -> tuple[Any, dict[str, Any]]:
    """Rebuild the network **from the graphs stored in the checkpoint** and load its weights."""
    from ..models.graphs import GraphFormatError
    from ..models.network import network_from_spec

    ckpt, info = read_checkpoint(path)
    try:
        net = network_from_spec(info["net_spec"], source=str(path))
    except (GraphFormatError, ValueError) as err:
        raise CheckpointError(str(err)) from None
    state = {k[len("net."):]: v for k, v in (ckpt.get("state_dict") or {}).items() if k.startswith("net.")}
    missing, unexpected = net.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise CheckpointError(f"ckpt={str(path)!r}: weights do not match the stored graphs (missing {missing[:3]}, unexpected {unexpected[:3]})")
    return net, info


def _reroot(node: Any, old: str, new: str) -> Any:
    """The stored (resolved) data config with every path under the old ``data.root`` moved to the new one."""
    if isinstance(node, dict):
        return {k: _reroot(v, old, new) for k, v in node.items()}
    if isinstance(node, list):
        return [_reroot(v, old, new) for v in node]
    if isinstance(node, str) and old and (node == old or node.startswith(old.rstrip("/") + "/")):
        return new + node[len(old):]
    return node


def stored_data_config(run_cfg: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """The data config a checkpoint was trained with, as ``conf/data`` builds it, with evaluate's
    overrides (``data.root`` moves every stored path under the old root)."""
    stored = dict(run_cfg.get("data") or {})
    if overrides.get("root") is not None:
        if "root" not in stored:  # mnist5k, synthetic: a path given for them would be silently ignored
            raise ConfigError(f"data.root={overrides['root']!r} is not allowed: the checkpoint was trained on "
                              f"data={stored.get('name')}, which reads no data.root")
        stored = _reroot(stored, str(stored.get("root") or ""), str(overrides["root"])) if stored.get("root") else stored
    return {**stored, **{k: v for k, v in overrides.items() if v is not None}}


def checkpoint_data(ckpt: str | os.PathLike, info: dict[str, Any], overrides: dict[str, Any],
                    image_size: int | None = None, batch_size: int | None = None, split: str = "test"
                    ) -> tuple[Any, dict[str, Any]]:
    """The data module a checkpoint was trained with (``stored_data_config``), set up to read ``split``
    only (a folder with the test images alone is enough to test)."""
    from .data_values import required_for

    data_cfg = stored_data_config(info.get("run_config") or {}, overrides)
    if not data_cfg:
        raise CheckpointError(f"ckpt={str(ckpt)!r}: stores no data config")
    if image_size:
        data_cfg["image_size"] = int(image_size)
    if batch_size:
        data_cfg["batch_size"] = int(batch_size)
    if data_cfg.get("required"):
        data_cfg["required"] = required_for(split, data_cfg["required"], data_cfg.get("val") is not None,
                                            data_cfg.get("test") is not None)
    dm = build("data", OmegaConf.create(data_cfg))
    dm.setup_splits([split])
    return dm, data_cfg


def _eval_output(cfg: DictConfig) -> Path:
    """Where evaluate writes its result (``out``, default ``eval_<split>[_<size>].json`` beside the run's
    checkpoints folder), checked writable before any work: a read-only folder must not cost a full pass."""
    ckpt_dir = Path(cfg.ckpt).resolve().parent
    default = (ckpt_dir.parent if ckpt_dir.name == "checkpoints" else ckpt_dir) / (
        f"eval_{cfg.split}" + (f"_{cfg.image_size}" if cfg.image_size else "") + ".json")
    out = Path(cfg.out) if cfg.get("out") else default
    try:  # a real write, not os.access: read-only mounts, quotas and paths through a file all show here
        out.parent.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=out.parent, prefix=".write-probe-")
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        raise ConfigError(f"out={str(out)!r} is not writable ({err.strerror}): pass out=<a writable path>.json") from None
    return out


def evaluate(cfg: DictConfig) -> dict[str, Any]:
    """Top-1/top-5 of a checkpoint on a split, optionally at another input size (e.g. the paper's 320²)."""
    import torch
    import torch.nn.functional as F

    from ..models.complexity import complexity
    from ..models.execution import configure_execution

    if OmegaConf.is_missing(cfg, "ckpt") or not cfg.ckpt:
        raise ConfigError("ckpt is missing: pass ckpt=<path of a .ckpt file> (a run's checkpoints/best.ckpt or last.ckpt)")
    require_choice("split", cfg.split, ("train", "val", "test"))
    require(cfg.image_size is None or (is_int(cfg.image_size) and cfg.image_size >= 8), "image_size",
            cfg.image_size, "an integer >= 8 (pixels)")
    require(cfg.batch_size is None or (is_int(cfg.batch_size) and cfg.batch_size >= 1), "batch_size",
            cfg.batch_size, "an integer >= 1")
    precision = str(cfg.get("precision", "32-true"))
    require_choice("precision", precision, EVAL_PRECISIONS)
    execution = OmegaConf.to_container(cfg.execution) if cfg.get("execution") else {}
    check_execution_cfg(execution)  # before the checkpoint and the data are loaded
    out = _eval_output(cfg)
    net, info = load_checkpoint(cfg.ckpt)
    run_cfg = info.get("run_config") or {}
    overrides = OmegaConf.to_container(cfg.data) if cfg.get("data") else {}
    dm, data_cfg = checkpoint_data(cfg.ckpt, info, overrides, cfg.image_size, cfg.batch_size, split=cfg.split)
    batch = int(data_cfg["batch_size"])
    device = torch.device("cuda" if cfg.accelerator in ("auto", "gpu", "cuda") and torch.cuda.is_available() else "cpu")
    net = configure_execution(net.to(device).eval(), execution)
    memory_format = torch.channels_last if execution.get("channels_last") else torch.contiguous_format
    dtype = getattr(torch, EVAL_PRECISIONS[precision])
    k = net.config["num_classes"]
    correct1 = correct5 = count = 0
    loss_sum = 0.0
    smoothing = (run_cfg.get("model") or {}).get("label_smoothing", 0.0)
    with torch.no_grad():
        for x, y in dm.loader(cfg.split):
            x, y = x.to(device), y.to(device)
            n = len(y)
            if execution.get("compile") and n < batch:
                # One shape for the compiled graph: a smaller last batch would compile a second (dynamic)
                # graph. Eval-mode BN treats samples independently, so zero padding changes nothing.
                x = torch.cat([x, x.new_zeros((batch - n, *x.shape[1:]))])
            x = x.contiguous(memory_format=memory_format)
            with torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32):
                logits = net(x).float()[:n]
            loss_sum += F.cross_entropy(logits, y, label_smoothing=smoothing, reduction="sum").item()
            top = logits.topk(min(5, k), dim=1).indices
            correct1 += (top[:, 0] == y).sum().item()
            correct5 += (top == y[:, None]).any(1).sum().item()
            count += n
    size = int(data_cfg.get("image_size"))
    result = {
        "ckpt": str(cfg.ckpt), "split": cfg.split, "image_size": size, "samples": count,
        "acc1": correct1 / count, "acc5": correct5 / count, "loss": loss_sum / count,
        "precision": precision, "execution": execution,
        "graph_hashes": [g.hash for g in net.graphs], **{f"complexity_{key}": v for key, v in complexity(net, size).items()},
    }
    atomic_write(out, json.dumps(result, indent=1) + "\n")
    result["out"] = str(out)
    return result
