"""What ``train.py`` and ``evaluate.py`` do, as functions of a composed config (testable in-process).

A run directory holds everything a later analysis needs, written by rank 0 only:
``metrics.json``, ``config.yaml`` (resolved), ``graphs/stage{i}.json|png``, ``checkpoints/{last,best}.ckpt``.
"""

from __future__ import annotations

import hashlib
import json
import netrc
import os
import sys
import time
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from .config import ConfigError, graph_params, validate_train_cfg

METRICS_FILE = "metrics.json"
# evaluate.py's precision (trainer.precision's names): the autocast dtype of the forward pass.
EVAL_PRECISIONS = {"32-true": "float32", "bf16-mixed": "bfloat16", "16-mixed": "float16"}


def _atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)


def group_overrides(cfg: DictConfig) -> list[str]:
    """The run's command-line overrides minus the seed: what makes runs of one setting comparable."""
    try:
        from hydra.core.hydra_config import HydraConfig

        task = list(HydraConfig.get().overrides.task)
    except Exception:  # not launched by Hydra (tests, notebooks)
        task = list(cfg.get("overrides", []) or [])
    return sorted(o for o in task if not o.lstrip("+~").startswith("seed="))


def group_name(cfg: DictConfig) -> str:
    """Readable W&B group: the overrides minus the seed, or a hash of the whole config minus seed."""
    overrides = group_overrides(cfg)
    text = ",".join(overrides) if overrides else "defaults"
    if len(text) <= 100:
        return text
    return "cfg-" + hashlib.sha1(text.encode()).hexdigest()[:10]


def _wandb_logged_in() -> bool:
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        return netrc.netrc().authenticators("api.wandb.ai") is not None
    except (FileNotFoundError, netrc.NetrcParseError, OSError):
        return False


def wandb_mode(logger_cfg: dict[str, Any]) -> str:
    """WANDB_MODE wins; else the config's mode; ``auto`` = online only when credentials exist."""
    mode = os.environ.get("WANDB_MODE") or logger_cfg.get("mode") or "auto"
    if mode == "auto":
        mode = "online" if _wandb_logged_in() else "offline"
    return mode


def make_loggers(cfg: DictConfig, run_dir: Path, config_dict: dict[str, Any]) -> list:
    from pytorch_lightning.loggers import CSVLogger, TensorBoardLogger, WandbLogger

    loggers = []
    for name, lcfg in (cfg.get("logger") or {}).items():
        lcfg = dict(lcfg or {})
        if name == "csv":
            loggers.append(CSVLogger(str(run_dir), name="csv", version=""))
        elif name == "tensorboard":
            loggers.append(TensorBoardLogger(str(run_dir), name="tensorboard", version=""))
        elif name == "wandb":
            mode = wandb_mode(lcfg)
            id_file = run_dir / "wandb_id.txt"
            run_id = id_file.read_text().strip() if id_file.exists() else None  # reattach on resume
            logger = WandbLogger(
                project=lcfg.get("project") or cfg.name, entity=lcfg.get("entity"), group=group_name(cfg),
                name=f"{group_name(cfg)}|seed={cfg.seed}"[:120], save_dir=str(run_dir), id=run_id,
                offline=mode == "offline", mode="disabled" if mode == "disabled" else None,
                log_model=False, config=config_dict, resume="allow" if run_id else None,
            )
            loggers.append(logger)
        else:
            raise ConfigError(f"logger.{name} is not allowed: choose among wandb, csv, tensorboard")
    return loggers


def make_callbacks(cfg: DictConfig, run_dir: Path) -> list:
    from pytorch_lightning.callbacks import LearningRateMonitor, ModelCheckpoint, RichModelSummary, RichProgressBar

    cb = cfg.get("callbacks") or {}
    out: list = []
    ck = cb.get("checkpoint")
    if ck:
        out.append(ModelCheckpoint(dirpath=str(run_dir / "checkpoints"), filename="best", monitor=ck.get("monitor"),
                                   mode=ck.get("mode", "max"), save_last=bool(ck.get("save_last", True)),
                                   auto_insert_metric_name=False, enable_version_counter=False))
    tty = sys.stdout.isatty()
    if cb.get("progress_bar") and tty:
        out.append(RichProgressBar())
    if cb.get("model_summary") and tty:
        out.append(RichModelSummary(max_depth=2))
    if cb.get("lr_monitor") and cfg.get("logger"):
        out.append(LearningRateMonitor(logging_interval="step"))
    return out


def build_net(cfg: DictConfig):
    """The network of g(θ, s): stage graphs sampled from ``cfg.seed``, initial weights seeded by it too."""
    from .execution import configure_execution
    from .network import network_from_graphs, sample_stage_graphs

    g, r = cfg.graph, cfg.regime
    graphs = sample_stage_graphs(r.name, g.name, g.n, cfg.seed, **graph_params(g))
    net = network_from_graphs(
        r.name, graphs, r.c, init_seed=cfg.seed, num_classes=cfg.data.num_classes, node_op=cfg.node_op.name,
        dropout=r.dropout, edge_drop=r.edge_drop, in_channels=cfg.data.in_channels, head_channels=r.head_channels,
    )
    return configure_execution(net, dict(cfg.get("execution") or {}))


def train(cfg: DictConfig) -> dict[str, Any]:
    """Compose → validate → seed → build → fit → test → write ``metrics.json``; returns the metrics."""
    validate_train_cfg(cfg)  # one line per bad value, before any heavy import or data load
    import warnings

    import pytorch_lightning as pl

    from .data import RandWireDataModule
    from .module import RandWireModule, StepMemory
    from .plotting import draw_stage

    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\).*")  # Lightning-internal noise
    start = time.time()
    run_dir = Path(cfg.run_dir)
    # Lightning seeds Python, numpy and torch (and dataloader workers); `seed is not None`, so 0 counts.
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    net = build_net(cfg)
    config_dict = OmegaConf.to_container(cfg, resolve=True)
    module = RandWireModule(
        net_spec=net.spec(), optimizer=OmegaConf.to_container(cfg.optimizer), scheduler=OmegaConf.to_container(cfg.scheduler),
        label_smoothing=cfg.model.label_smoothing, image_size=cfg.data.image_size, batch_size=cfg.data.batch_size,
        execution=OmegaConf.to_container(cfg.get("execution") or {}), run_config=config_dict, net=net,
    )
    datamodule = RandWireDataModule(OmegaConf.to_container(cfg.data))
    trainer_kwargs = OmegaConf.to_container(cfg.trainer)
    loggers = make_loggers(cfg, run_dir, config_dict)
    step_memory = StepMemory()
    callbacks = [*make_callbacks(cfg, run_dir), step_memory]
    enable_pb = any(type(c).__name__ == "RichProgressBar" for c in callbacks)
    trainer = pl.Trainer(
        **trainer_kwargs, logger=loggers or False, callbacks=callbacks, default_root_dir=str(run_dir),
        enable_progress_bar=enable_pb, enable_model_summary=any(type(c).__name__ == "RichModelSummary" for c in callbacks),
        enable_checkpointing=any(type(c).__name__ == "ModelCheckpoint" for c in callbacks),
    )
    rank0 = trainer.is_global_zero
    if rank0:
        run_dir.mkdir(parents=True, exist_ok=True)
        _atomic_write(run_dir / "config.yaml", OmegaConf.to_yaml(cfg, resolve=True))
        for i, graph in enumerate(net.graphs):
            graph.save(run_dir / "graphs" / f"stage{i}.json")
            draw_stage(graph, run_dir / "graphs" / f"stage{i}.png", title=f"stage {i}: {graph.describe()}  seed={cfg.seed}")
    last = run_dir / "checkpoints" / "last.ckpt"
    ckpt_path = str(last) if cfg.get("resume", True) and last.exists() else None
    device_type = "cuda" if trainer.strategy.root_device.type == "cuda" else "cpu"
    try:
        trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path)
        checkpoint_cb = trainer.checkpoint_callback
        # The checkpoint callback's best score spans resumed epochs too; the logged val/acc1_best is there
        # without checkpointing and under ddp_spawn, where the best score stays in the worker.
        if checkpoint_cb and checkpoint_cb.best_model_score is not None and checkpoint_cb.monitor == "val/acc1":
            best_val = float(checkpoint_cb.best_model_score)
        else:
            logged = trainer.callback_metrics.get("val/acc1_best")  # read before test() logs its own
            best_val = None if logged is None else float(logged)
        peak_mb, peak_kind = step_memory.result(trainer)
        best = getattr(checkpoint_cb, "best_model_path", "") if checkpoint_cb else ""
        fast_dev = bool(trainer_kwargs.get("fast_dev_run"))
        test_ckpt = best if best and not fast_dev else None
        results = trainer.test(module, datamodule=datamodule, ckpt_path=test_ckpt, verbose=rank0)[0]
        metrics = {
            "test/acc1": results.get("test/acc1"), "test/acc5": results.get("test/acc5"), "test/loss": results.get("test/loss"),
            "val/acc1_best": best_val,
            "params": module.cx["params"], "flops": module.cx["flops"], "image_size": cfg.data.image_size,
            "seed": cfg.seed, "graph_hashes": [g.hash for g in net.graphs], "group": group_name(cfg),
            "overrides": group_overrides(cfg), "epochs": trainer.current_epoch, "global_step": trainer.global_step,
            "wall_time_s": round(time.time() - start, 2),
            "peak_train_memory_mb": None if peak_mb is None else round(peak_mb, 1),
            "peak_train_memory_kind": peak_kind, "test_checkpoint": test_ckpt or "final weights",
            "device": device_type, "world_size": trainer.world_size,
        }
        if rank0:
            _atomic_write(run_dir / METRICS_FILE, json.dumps(metrics, indent=1) + "\n")
            _log_wandb_media(loggers, run_dir, net)
        return metrics
    finally:
        _finish_wandb(loggers, run_dir)


def _log_wandb_media(loggers, run_dir: Path, net) -> None:
    for logger in loggers:
        if type(logger).__name__ == "WandbLogger":
            import wandb

            logger.experiment.log({f"graphs/stage{i}": wandb.Image(str(run_dir / "graphs" / f"stage{i}.png"))
                                   for i in range(len(net.graphs))})


def _finish_wandb(loggers, run_dir: Path) -> None:
    """``wandb.finish()`` after every job, or all seeds of a multirun land in one run (LHT #289)."""
    for logger in loggers:
        if type(logger).__name__ == "WandbLogger":
            import wandb

            if wandb.run is not None:
                _atomic_write(run_dir / "wandb_id.txt", wandb.run.id + "\n")
            wandb.finish()


# ----------------------------------------------------------------------------------------------------
# evaluate.py
# ----------------------------------------------------------------------------------------------------


class CheckpointError(ValueError):
    """A checkpoint that is missing, corrupt, or not a randwire checkpoint."""


def load_checkpoint(path: str | os.PathLike) -> tuple[Any, dict[str, Any]]:
    """Rebuild the network **from the graphs stored in the checkpoint** and load its weights."""
    import torch

    from .graphs import GraphFormatError
    from .module import CHECKPOINT_FORMAT
    from .network import network_from_spec

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"ckpt={str(path)!r}: no such checkpoint file")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:  # truncated zip, pickle garbage, ...
        raise CheckpointError(f"ckpt={str(path)!r}: not a readable checkpoint ({type(err).__name__}: {str(err)[:120]})") from None
    info = ckpt.get("randwire") if isinstance(ckpt, dict) else None
    if not isinstance(info, dict) or "net_spec" not in info:
        raise CheckpointError(f"ckpt={str(path)!r}: not a randwire checkpoint (it stores no RandWire graphs)")
    if info.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"ckpt={str(path)!r}: randwire checkpoint format {info.get('format')!r} is not supported (expected {CHECKPOINT_FORMAT})")
    try:
        net = network_from_spec(info["net_spec"], source=str(path))
    except (GraphFormatError, ValueError) as err:
        raise CheckpointError(str(err)) from None
    state = {k[len("net."):]: v for k, v in ckpt["state_dict"].items() if k.startswith("net.")}
    missing, unexpected = net.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise CheckpointError(f"ckpt={str(path)!r}: weights do not match the stored graphs (missing {missing[:3]}, unexpected {unexpected[:3]})")
    return net, info


def evaluate(cfg: DictConfig) -> dict[str, Any]:
    """Top-1/top-5 of a checkpoint on a split, optionally at another input size (e.g. the paper's 320²)."""
    import torch
    import torch.nn.functional as F

    from .complexity import complexity
    from .config import SPLITS, check_data_path, check_execution_cfg
    from .data import RandWireDataModule
    from .execution import configure_execution

    if cfg.split not in SPLITS:
        raise ConfigError(f"split={cfg.split!r} is not allowed: one of {list(SPLITS)}")
    if cfg.image_size is not None and (not isinstance(cfg.image_size, int) or cfg.image_size < 8):
        raise ConfigError(f"image_size={cfg.image_size!r} is not allowed: an integer >= 8 (pixels)")
    precision = str(cfg.get("precision", "32-true"))
    if precision not in EVAL_PRECISIONS:
        raise ConfigError(f"precision={precision!r} is not allowed: one of {list(EVAL_PRECISIONS)}")
    execution = OmegaConf.to_container(cfg.execution) if cfg.get("execution") else {}
    check_execution_cfg(execution)  # before the checkpoint and the data are loaded
    net, info = load_checkpoint(cfg.ckpt)
    run_cfg = info.get("run_config") or {}
    overrides = OmegaConf.to_container(cfg.data) if cfg.get("data") else {}
    data_cfg = {**run_cfg.get("data", {}), **{k: v for k, v in overrides.items() if v is not None}}
    if not data_cfg:
        raise CheckpointError(f"ckpt={cfg.ckpt!r}: stores no data config; pass data.name=... and data.* keys")
    if cfg.image_size:
        data_cfg["image_size"] = int(cfg.image_size)
    if cfg.batch_size:
        data_cfg["batch_size"] = int(cfg.batch_size)
    check_data_path(data_cfg)
    dm = RandWireDataModule(data_cfg)
    dm.setup("test")
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
    ckpt_dir = Path(cfg.ckpt).resolve().parent
    default = (ckpt_dir.parent if ckpt_dir.name == "checkpoints" else ckpt_dir) / (
        f"eval_{cfg.split}" + (f"_{cfg.image_size}" if cfg.image_size else "") + ".json")
    out = Path(cfg.out) if cfg.get("out") else default
    _atomic_write(out, json.dumps(result, indent=1) + "\n")
    result["out"] = str(out)
    return result
