"""What a composed config builds: the network g(θ, s) (graphs sampled from the seed, C solved from a FLOPs
budget where ``regime.c=auto``), the LightningModule around it, the user's callbacks as they suit this output
(a terminal or a log), the trainer (its steps in this run's global batch), and the config tree printed at
start."""

from __future__ import annotations

import contextlib
import sys
from typing import Any

from omegaconf import DictConfig, OmegaConf

from ..models.errors import BadValue
from .config import build


def build_net(cfg: DictConfig, plan=None):
    """The network of g(θ, s) that :func:`randwire.training.plan.check` planned (None: its network part is
    checked here): stage graphs sampled from the seed, initial weights seeded by it too."""
    from ..models.architecture import draw_stage_graphs
    from ..models.execution import configure_execution
    from ..models.network import network_of

    detection = cfg.get("detection") is not None
    backbone = (cfg.get("backbone") or {}).get("ckpt") if detection else None
    if backbone:  # its stored graphs and weights, never re-sampled
        from .checkpoints import load_checkpoint  # the checks of ckpt_path: weights_only, foreign or corrupt

        net = load_checkpoint(str(backbone), key="backbone.ckpt")[0]
        _check_backbone_channels(net, cfg, str(backbone))
        return configure_execution(net, dict(cfg.get("execution") or {}))
    if detection and not cfg.detection.trainable_bn:
        print(
            "warning: no backbone.ckpt: the backbone starts from random weights and its BatchNorm is frozen at "
            "its initial identity (scale 1, shift 0, mean 0, variance 1), as Detectron freezes a pretrained "
            "one; give backbone.ckpt=<a classification run's best.ckpt>, or detection.trainable_bn=true to "
            "train from scratch",
            file=sys.stderr,
            flush=True,
        )
    if plan is None:
        from .plan import check_network_cfg

        plan = check_network_cfg(cfg)
    spec, budget = plan.spec, plan.flops
    if detection and spec.c == "auto":
        raise BadValue(
            "regime.c",
            "auto",
            "an integer for task=detection (C is solved for a classification budget at "
            "data.image_size; or give backbone.ckpt)",
            verdict="is not allowed:",
        )
    size = cfg.data.image_size if spec.c == "auto" else None
    graphs = draw_stage_graphs(plan.stages, plan.seed)
    if spec.c != "auto" and budget is not None:
        print(
            f"note: regime.flops={budget} is not used: it is read only with regime.c=auto (C={spec.c} as given)",
            flush=True,
        )
    if spec.c == "auto":  # the paper compares at (nearly) equal FLOPs: C from the budget, on these very graphs
        from ..models.complexity import Cx, network_cx, solve_width

        c, stem = solve_width(float(budget), spec, graphs, size)
        spec = spec.replace(c=c, stem_channels=stem)
        got = network_cx(Cx(h=size, w=size), spec, graphs).flops
        print(
            f"regime.c=auto: C={c}"
            + (f", conv1 width {stem} (C/2 = {c // 2} would miss by more than 1%)" if stem else "")
            + f" for regime.flops={float(budget):.4g} at {size}px: {got / 1e6:.4g}M "
            f"({100 * (got / float(budget) - 1):+.2f}%)",
            flush=True,
        )
    net = network_of(spec, graphs, init_seed=plan.seed)
    return configure_execution(net, dict(cfg.get("execution") or {}))


def _check_backbone_channels(net, cfg: DictConfig, path: str) -> None:
    """A backbone trained on other images than the detector reads (1-channel digits vs RGB): one line."""
    from .errors import CheckpointError

    have, want = net.spec.in_channels, cfg.data.get("in_channels", 3)
    if have != want:
        raise CheckpointError(
            f"backbone.ckpt={path!r}: its network takes {have}-channel images, but data={cfg.data.get('name')} "
            f"gives {want}-channel ones (data.in_channels={want}): use a backbone trained on {want}-channel images"
        )


def adopt_backbone_config(cfg: DictConfig) -> None:
    """task=detection with ``backbone.ckpt``: the run's graph, regime and node_op become those of the
    checkpoint's run (its network is used as stored), so config.yaml and the summaries name the network
    that is trained. One line says so where they differ from what the command composed."""
    path = (cfg.get("backbone") or {}).get("ckpt") if cfg.get("detection") is not None else None
    if not path:
        return
    from .checkpoints import read_checkpoint

    stored = read_checkpoint(str(path), key="backbone.ckpt")[1].get("run_config") or {}
    changed = []
    for group in ("graph", "regime", "node_op"):
        if isinstance(stored.get(group), dict) and stored[group] != OmegaConf.to_container(cfg[group], resolve=True):
            cfg[group] = OmegaConf.create(stored[group])
            changed.append(group)
    taken = f"; {', '.join(changed)} set as its run had them" if changed else ""
    print(f"backbone.ckpt: the network of {path} (its stored graphs and weights){taken}", flush=True)


def print_config_tree(cfg: DictConfig) -> None:
    """The resolved config as a tree, one branch per group (lightning-hydra-template's ``print_config_tree``)."""
    from rich.tree import Tree

    from .cli import wide_console

    def add(branch, node) -> None:
        for key, value in node.items():
            if isinstance(value, dict):
                add(branch.add(f"[bold]{key}[/bold]"), value)
            else:
                branch.add(f"{key}: {value!r}", highlight=False)

    tree = Tree("config", guide_style="dim")
    add(tree, OmegaConf.to_container(cfg, resolve=True))
    console = wide_console()
    console.print(tree)


def user_callbacks(built: dict[str, Any], has_logger: bool) -> list:
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


def build_module(cfg: DictConfig, net, config_dict: dict[str, Any]):
    """The LightningModule around ``net`` with the optimizer and scheduler partials Hydra builds: the
    classifier, or the detector where the config has a ``detection`` node (task=detection)."""
    from .module import RandWireModule

    if cfg.get("detection") is not None:
        return _detection_module(cfg, net, config_dict)
    model = cfg.model
    try:
        return RandWireModule(
            net=net,
            optimizer=build("optimizer", cfg.optimizer),
            scheduler=build("scheduler", cfg.scheduler) if cfg.get("scheduler") is not None else None,
            label_smoothing=model.label_smoothing,
            lr_reference_batch=model.lr_reference_batch,
            image_size=cfg.data.image_size,
            batch_size=cfg.data.batch_size,
            execution=OmegaConf.to_container(cfg.get("execution") or {}),
            run_config=config_dict,
        )
    except BadValue as err:
        raise err.under("model.") from None


def _detection_module(cfg: DictConfig, net, config_dict: dict[str, Any]):
    from .detection.module import DetectionModule

    d = cfg.detection
    try:
        return DetectionModule(
            net=net,
            num_classes=cfg.data.num_classes,
            optimizer=build("optimizer", cfg.optimizer),
            scheduler=build("scheduler", cfg.scheduler) if cfg.get("scheduler") is not None else None,
            min_size=d.min_size,
            max_size=d.max_size,
            trainable_bn=d.trainable_bn,
            freeze_at=d.freeze_at,
            backbone_edge_drop=d.backbone_edge_drop,
            bias_lr_factor=d.bias_lr_factor,
            bias_weight_decay=d.bias_weight_decay,
            fpn_channels=d.fpn_channels,
            box_head_dim=d.box_head_dim,
            # an empty DictConfig is falsy: `or {}` would hand to_container a plain dict
            detector={} if d.get("detector") is None else OmegaConf.to_container(d.detector, resolve=True),
            lr_reference_batch=d.lr_reference_batch,
            batch_size=cfg.data.batch_size,
            execution=OmegaConf.to_container(cfg.get("execution") or {}),
            run_config=config_dict,
        )
    except BadValue as err:
        raise err.under("detection.") from None


def build_trainer(cfg: DictConfig, callbacks: list, loggers: list, plugins: list):
    """The Lightning Trainer of ``cfg.trainer`` with these callbacks, loggers and plugins; where
    ``trainer.max_steps`` counts steps of a reference batch (``detection.steps_reference_batch``), with the
    steps of this run's global batch (known once a trainer knows its world size: one is built first, quietly)."""
    from pytorch_lightning.callbacks import ModelCheckpoint, ModelSummary, ProgressBar

    from .schedules import scales_steps, steps_for_global_batch

    def make(**steps: int):
        return build(
            "trainer",
            cfg.trainer,
            callbacks=list(callbacks),  # a copy each: a Trainer appends its defaults to the list it is given
            logger=loggers or False,
            plugins=plugins,
            enable_progress_bar=any(isinstance(c, ProgressBar) for c in callbacks),
            enable_model_summary=any(isinstance(c, ModelSummary) for c in callbacks),
            enable_checkpointing=any(isinstance(c, ModelCheckpoint) for c in callbacks),
            **steps,
        )

    steps = None
    if scales_steps(cfg):
        with _no_trainer_banner():  # its "GPU available" lines are the real trainer's to say
            steps = steps_for_global_batch(cfg, make())
    return make(**({"max_steps": steps} if steps is not None else {}))


@contextlib.contextmanager
def _no_trainer_banner():
    """Lightning's "GPU available" lines muted while a trainer is built only to be asked its world size."""
    import logging

    names = ("pytorch_lightning.utilities.rank_zero", "lightning.pytorch.utilities.rank_zero")
    loggers = [logging.getLogger(name) for name in names]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)
