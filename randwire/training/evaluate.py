"""What ``evaluate.py`` does: a checkpoint's accuracy on a split, optionally at another input size (the
paper's 320² test, Table 3), with the network rebuilt from the graphs stored in the checkpoint; for a
detector checkpoint (task=detection), its COCO box AP table."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from ..models.errors import ConfigError, is_int, is_number, require, require_choice
from ..models.files import atomic_write
from .checkpoints import load_checkpoint, load_detector, map_strings, read_checkpoint
from .config import build, check_execution_cfg
from .errors import CheckpointError

# evaluate.py's precision (trainer.precision's names): the autocast dtype of the forward pass.
EVAL_PRECISIONS = {"32-true": "float32", "bf16-mixed": "bfloat16", "16-mixed": "float16"}


def _reroot(node: Any, old: str, new: str) -> Any:
    """The stored (resolved) data config with every path under the old ``data.root`` moved to the new one."""

    def moved(text: str) -> str:
        return new + text[len(old) :] if old and (text == old or text.startswith(old.rstrip("/") + "/")) else text

    return map_strings(node, moved)


def stored_data_config(run_cfg: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """The data config a checkpoint was trained with, as ``conf/data`` builds it, with evaluate's
    overrides (``data.root`` moves every stored path under the old root)."""
    stored = dict(run_cfg.get("data") or {})
    if overrides.get("root") is not None:
        if "root" not in stored:  # mnist5k, synthetic: a path given for them would be silently ignored
            raise ConfigError(
                f"data.root={overrides['root']!r} is not allowed: the checkpoint was trained on "
                f"data={stored.get('name')}, which reads no data.root"
            )
        stored = (
            _reroot(stored, str(stored.get("root") or ""), str(overrides["root"])) if stored.get("root") else stored
        )
    return {**stored, **{k: v for k, v in overrides.items() if v is not None}}


def checkpoint_data(
    ckpt: str | os.PathLike,
    info: dict[str, Any],
    overrides: dict[str, Any],
    image_size: int | None = None,
    batch_size: int | None = None,
    split: str = "test",
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
        data_cfg["required"] = required_for(
            split, data_cfg["required"], data_cfg.get("val") is not None, data_cfg.get("test") is not None
        )
    dm = build("data", OmegaConf.create(data_cfg))
    dm.setup_splits([split])
    return dm, data_cfg


def _eval_output(cfg: DictConfig) -> Path:
    """Where evaluate writes its result (``out``, default ``eval_<split>[_<size>].json`` beside the run's
    checkpoints folder), checked writable before any work: a read-only folder must not cost a full pass."""
    ckpt_dir = Path(cfg.ckpt).resolve().parent
    default = (ckpt_dir.parent if ckpt_dir.name == "checkpoints" else ckpt_dir) / (
        f"eval_{cfg.split}" + (f"_{cfg.image_size}" if cfg.image_size else "") + ".json"
    )
    out = Path(cfg.out) if cfg.get("out") else default
    try:  # a real write, not os.access: read-only mounts, quotas and paths through a file all show here
        out.parent.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=out.parent, prefix=".write-probe-")
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        raise ConfigError(
            f"out={str(out)!r} is not writable ({err.strerror}): pass out=<a writable path>.json"
        ) from None
    return out


def _checked_options(cfg: DictConfig) -> tuple[str, dict[str, Any]]:
    """evaluate's own values (one line each, before the checkpoint or the data is read): precision, execution."""
    if OmegaConf.is_missing(cfg, "ckpt") or not cfg.ckpt:
        raise ConfigError(
            "ckpt is missing: pass ckpt=<path of a .ckpt file> (a run's checkpoints/best.ckpt or last.ckpt)"
        )
    require_choice("split", cfg.split, ("train", "val", "test"))
    size_ok = cfg.image_size is None or (is_int(cfg.image_size) and cfg.image_size >= 8)
    require(size_ok, "image_size", cfg.image_size, "an integer >= 8 (pixels)")
    batch_ok = cfg.batch_size is None or (is_int(cfg.batch_size) and cfg.batch_size >= 1)
    require(batch_ok, "batch_size", cfg.batch_size, "an integer >= 1")
    draw = cfg.get("draw") or 0
    require(is_int(draw) and draw >= 0, "draw", draw, "an integer >= 0 (images in the picture of predictions)")
    score = cfg.get("draw_score", 0.5)
    require(is_number(score) and 0 <= score <= 1, "draw_score", score, "a score in [0, 1]")
    require(
        isinstance(cfg.get("save_detections", False), bool),
        "save_detections",
        cfg.get("save_detections"),
        "true or false",
    )
    precision = str(cfg.get("precision", "32-true"))
    require_choice("precision", precision, EVAL_PRECISIONS)
    execution = OmegaConf.to_container(cfg.execution) if cfg.get("execution") else {}
    check_execution_cfg(execution)
    return precision, execution


def _score(net, loader, device, execution: dict[str, Any], precision: str, batch: int, smoothing: float) -> dict:
    """Samples, top-1, top-5 and mean loss of ``net`` over ``loader``."""
    import torch
    import torch.nn.functional as F

    from ..models.metrics import topk_correct

    memory_format = torch.channels_last if execution.get("channels_last") else torch.contiguous_format
    dtype = getattr(torch, EVAL_PRECISIONS[precision])
    count, correct1, correct5, loss_sum = 0, 0, 0, 0.0
    with torch.no_grad():
        for x, y in loader:
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
            top1, top5 = topk_correct(logits, y)
            correct1, correct5, count = correct1 + top1, correct5 + top5, count + n
    return {"samples": count, "acc1": correct1 / count, "acc5": correct5 / count, "loss": loss_sum / count}


def evaluate(cfg: DictConfig) -> dict[str, Any]:
    """Top-1/top-5 of a checkpoint on a split, optionally at another input size (e.g. the paper's 320²)."""

    from ..models.complexity import complexity
    from ..models.execution import configure_execution

    precision, execution = _checked_options(cfg)
    out = _eval_output(cfg)
    read = read_checkpoint(cfg.ckpt)  # once: a checkpoint can be hundreds of MB
    if read[1].get("task") == "detection":
        return _evaluate_detector(cfg, out, precision, execution, read)
    for key in ("draw", "save_detections"):
        if cfg.get(key):
            raise ConfigError(f"{key}={cfg.get(key)} is for detector checkpoints: {cfg.ckpt} is a classifier's")
    net, info = load_checkpoint(cfg.ckpt, read=read)
    overrides = OmegaConf.to_container(cfg.data) if cfg.get("data") else {}
    dm, data_cfg = checkpoint_data(cfg.ckpt, info, overrides, cfg.image_size, cfg.batch_size, split=cfg.split)
    device = _device(cfg)
    net = configure_execution(net.to(device).eval(), execution)
    smoothing = ((info.get("run_config") or {}).get("model") or {}).get("label_smoothing", 0.0)
    scores = _score(net, dm.loader(cfg.split), device, execution, precision, int(data_cfg["batch_size"]), smoothing)
    size = int(data_cfg.get("image_size"))
    result = {
        "ckpt": str(cfg.ckpt),
        "split": cfg.split,
        "image_size": size,
        **scores,
        "precision": precision,
        "execution": execution,
        "graph_hashes": [g.hash for g in net.graphs],
        **{f"complexity_{key}": v for key, v in complexity(net, size).items()},
    }
    atomic_write(out, json.dumps(result, indent=1) + "\n")
    result["out"] = str(out)
    return result


def _device(cfg: DictConfig):
    import torch

    return torch.device("cuda" if cfg.accelerator in ("auto", "gpu", "cuda") and torch.cuda.is_available() else "cpu")


def _evaluate_detector(
    cfg: DictConfig, out: Path, precision: str, execution: dict[str, Any], read: tuple
) -> dict[str, Any]:
    """COCO AP, AP50, AP75, APs, APm, APl of a detector checkpoint on a split, at its training sizes, by
    COCOeval on the split's annotation file; ``save_detections``: the detections in COCO's results format
    beside ``out``; ``draw``: a picture of the first images' predictions."""
    import torch

    from ..models.execution import configure_execution
    from .detection.labels import ap_table
    from .detection.metrics import CocoAP

    if cfg.image_size is not None:
        raise ConfigError(
            f"image_size={cfg.image_size} is for classifiers: a detector resizes images to the "
            f"detection.min_size/max_size it was trained with"
        )
    model, info = load_detector(cfg.ckpt, read=read)
    overrides = OmegaConf.to_container(cfg.data) if cfg.get("data") else {}
    data_cfg = stored_data_config(info.get("run_config") or {}, overrides)
    if cfg.batch_size:
        data_cfg["batch_size"] = int(cfg.batch_size)
    dm = build("data", OmegaConf.create(data_cfg))
    loader = dm.loader(cfg.split)
    device = _device(cfg)
    model = model.to(device).eval()
    configure_execution(model.backbone.body, execution)  # the backbone runs as in training (conf/execution)
    metric = CocoAP(dm.annotation_path(cfg.split))
    dtype = getattr(torch, EVAL_PRECISIONS[precision])
    with torch.no_grad(), torch.autocast(device.type, dtype=dtype, enabled=precision != "32-true"):
        for batch, targets in _progress(loader, f"{cfg.split}: detecting"):
            predictions = model([image.to(device) for image in batch])
            metric.update([{k: v.float() for k, v in p.items()} for p in predictions], targets)
    image_ids, rows = metric.detections()
    body = model.backbone.body
    result = {
        "ckpt": str(cfg.ckpt),
        "task": "detection",
        "split": cfg.split,
        "images": len(image_ids),
        **ap_table(metric.compute()),
        "detections": len(rows),
        "annotations": str(dm.annotation_path(cfg.split)),
        "precision": precision,
        "execution": execution,
        "graph_hashes": [g.hash for g in body.graphs],
        "min_size": model.transform.min_size[0],
        "max_size": model.transform.max_size,
    }
    result.update(_exports(cfg, out, rows, model, dm, device, result["map"]))
    atomic_write(out, json.dumps(result, indent=1) + "\n")
    result["out"] = str(out)
    return result


def _exports(cfg: DictConfig, out: Path, rows, model, dm, device, ap: float) -> dict[str, str]:
    """What evaluate writes besides its result, on request: the detections in COCO's results format
    (``save_detections``), a picture of the first images' predictions (``draw``)."""
    from .detection.metrics import results_json

    written = {}
    if cfg.get("save_detections"):
        path = out.with_name(f"detections_{cfg.split}.json")
        written["detections_file"] = str(atomic_write(path, json.dumps(results_json(rows)) + "\n"))
    if cfg.get("draw"):
        from .detection.pictures import predict_and_draw

        picture = out.with_name(f"predictions_{cfg.split}.png")
        title = f"{Path(cfg.ckpt).name}, {cfg.split} split: AP {100 * ap:.1f}"
        predict_and_draw(model, dm.datasets[cfg.split], int(cfg.draw), picture, float(cfg.draw_score), title, device)
        written["picture"] = str(picture)
    return written


def _progress(loader, what: str):
    """``loader`` with a progress bar on a terminal (a COCO split takes minutes); plain in a log."""
    import sys

    if not sys.stderr.isatty():
        return loader
    from rich.progress import track

    return track(loader, description=what, transient=True)
