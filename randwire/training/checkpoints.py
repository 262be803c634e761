"""Checkpoints: written whole, read without running pickled code, and checked against the run that uses them.

Every checkpoint carries the network's spec (config + stored graphs, plain data) and the run's resolved
config under ``checkpoint["randwire"]`` (:class:`randwire.training.module.RandWireModule` writes it), so a
network is rebuilt from its graphs, never re-sampled. A resume must hold this run's graphs and config
(what may differ: :data:`RESUME_MAY_CHANGE`); a finished job found in its folder is not trained again.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from ..models.errors import one_line
from ..models.graphs import GraphFormatError
from .errors import CheckpointError
from .records import METRICS_FILE

CHECKPOINT_FORMAT = 2  # what checkpoint["randwire"] holds; read_checkpoint refuses any other
MID_EPOCH_KEY = "randwire_signal_checkpoint"  # set in a checkpoint written on a signal, mid-epoch


# What may differ between a run and the checkpoint it resumes from (reading: a longer schedule, another
# machine's workers or data location, bookkeeping). Everything else must match, or the resumed run would
# silently be another experiment.
BOOKKEEPING = ("resume", "ckpt_path", "tags", "extras.", "paths.", "trainer.default_root_dir", "logger.", "callbacks.")


RESUME_MAY_CHANGE = ("trainer.max_epochs", "trainer.max_steps", "data.num_workers", *BOOKKEEPING)


def _flatten(node: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(node, dict):
        out: dict[str, Any] = {}
        for key, value in node.items():
            out.update(_flatten(value, f"{prefix}{key}."))
        return out
    return {prefix[:-1]: node}


# Keys added to the config after runs were made, with the value that gives those runs' behaviour: a run of
# then compares as if it had written it (a WS-flex run of then had no redraw: its graphs differ from today's
# default, so it is not taken as finished, and resuming it names the graphs).
ADDED_KEYS = {"trainer.max_steps": -1, "graph.connected": False}


def _differing_keys(then: dict[str, Any], now: dict[str, Any], may_change: tuple[str, ...]) -> list[str]:
    """Keys of two flattened configs whose values differ, except those starting with a ``may_change`` prefix."""
    then = {**{k: v for k, v in ADDED_KEYS.items() if k in now}, **then}
    return sorted(k for k in set(then) | set(now) if then.get(k) != now.get(k) and not k.startswith(may_change))


def _check_same_run(
    key: str, path: Path, info: dict[str, Any], net, cfg: DictConfig, config_dict: dict[str, Any] | None
) -> None:
    """The checkpoint's stored graphs (and, given ``config_dict``, its run config) must be this command's;
    one line naming what differs."""
    stored = [g.get("hash") for g in info["net_spec"].get("graphs", [])]
    if stored != [g.hash for g in net.graphs]:
        raise CheckpointError(
            f"{key}={str(path)!r}: its stored graphs are not this run's (graph={cfg.graph.name}, "
            f"seed={cfg.seed}): use a checkpoint of the same setting and seed, or another run folder"
        )
    if config_dict is None:  # ckpt_path: a new run from these weights may change the recipe
        return
    then, now = _flatten(info.get("run_config") or {}), _flatten(config_dict)
    differ = [
        k for k in _differing_keys(then, now, RESUME_MAY_CHANGE) if not (k.startswith("data.") and k.endswith("root"))
    ]
    if differ:
        shown = ", ".join(f"{k}={then.get(k)!r} there, {now.get(k)!r} here" for k in differ[:3])
        raise CheckpointError(
            f"{key}={str(path)!r} was trained with another config: {shown}"
            f"{f' (+{len(differ) - 3} more)' if len(differ) > 3 else ''}; allowed to change on "
            f"resume: {', '.join(RESUME_MAY_CHANGE)} (or use another run folder)"
        )


def finished_metrics(run_dir: Path, config_dict: dict[str, Any]) -> dict[str, Any] | None:
    """The metrics of this folder's run if it finished (status ok) with this same config (bookkeeping
    aside; a longer ``trainer.max_epochs`` or ``max_steps`` is not the same: that run resumes and trains on)."""
    import yaml

    try:
        metrics = json.loads((run_dir / METRICS_FILE).read_text())
        then = yaml.safe_load((run_dir / "config.yaml").read_text())
    except (OSError, ValueError, yaml.YAMLError):
        return None
    if not isinstance(metrics, dict) or metrics.get("status") != "ok":
        return None
    return metrics if not _differing_keys(_flatten(then or {}), _flatten(config_dict), BOOKKEEPING) else None


def start_checkpoint(cfg: DictConfig, net, run_dir: Path, config_dict: dict[str, Any]) -> str | None:
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
            mid = ckpt.get(MID_EPOCH_KEY)
            if isinstance(mid, dict):
                print(
                    f"resuming from the checkpoint written on a signal at epoch {mid.get('epoch')}, step "
                    f"{mid.get('global_step')}: that epoch goes on with the batches it had not yet trained on",
                    flush=True,
                )
            return str(path)
        print(f"warning: no readable checkpoint in {ckpts}: training from the start", file=sys.stderr)
        return None
    if not cfg.get("ckpt_path"):
        return None
    info = read_checkpoint(cfg.ckpt_path, key="ckpt_path")[1]
    _check_same_run("ckpt_path", Path(cfg.ckpt_path), info, net, cfg, None)
    return str(cfg.ckpt_path)


def read_checkpoint(path: str | os.PathLike, key: str = "ckpt") -> tuple[dict[str, Any], dict[str, Any]]:
    """The checkpoint and its ``randwire`` record, loaded with ``weights_only=True`` (no pickled code runs);
    anything else is one :class:`CheckpointError` naming ``key``."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{key}={str(path)!r}: no such checkpoint file")
    try:
        with open(path, "rb") as f:
            head = f.read(4)
    except OSError as err:
        raise CheckpointError(f"{key}={str(path)!r}: cannot be read ({err.strerror})") from None
    if not head.startswith((b"PK\x03\x04", b"\x80")):  # torch.save writes a zip archive (a pickle before 1.6)
        raise CheckpointError(
            f"{key}={str(path)!r}: not a readable checkpoint ("
            f"{'an empty file' if not head else 'not a file torch.save wrote'})"
        )
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # truncated zip, pickle garbage, pickled objects that are not plain data
        raise CheckpointError(f"{key}={str(path)!r}: not a readable checkpoint ({_unreadable_why(err)})") from None
    info = ckpt.get("randwire") if isinstance(ckpt, dict) else None
    if not isinstance(info, dict) or not isinstance(info.get("net_spec"), dict):
        raise CheckpointError(f"{key}={str(path)!r}: not a randwire checkpoint (it stores no RandWire graphs)")
    if info.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(
            f"{key}={str(path)!r}: randwire checkpoint format {info.get('format')!r} is not "
            f"supported (expected {CHECKPOINT_FORMAT})"
        )
    info["run_config"] = map_strings(info.get("run_config"), _moved_target)
    return ckpt, info


# Classes a stored run config names by import path (``_target_``), under the paths they had before the code
# moved into its three layers (and detection into its subpackage): a checkpoint of then builds its data module
# and schedule from today's paths.
MOVED = {
    "randwire.data.": "randwire.training.data.",
    "randwire.schedules.": "randwire.training.schedules.",
    "randwire.summary.": "randwire.analysis.summary.",
    "randwire.training.detection_data.": "randwire.training.detection.data.",  # detection's own subpackage
}


def map_strings(node: Any, change) -> Any:
    """A stored (plain) config with ``change`` applied to every string in it, at any depth."""
    if isinstance(node, dict):
        return {k: map_strings(v, change) for k, v in node.items()}
    if isinstance(node, list):
        return [map_strings(v, change) for v in node]
    return change(node) if isinstance(node, str) else node


def _moved_target(text: str) -> str:
    for old, new in MOVED.items():
        if text.startswith(old):
            return new + text[len(old) :]
    return text


def _unreadable_why(err: BaseException) -> str:
    """What torch.load's failure means, in words (its own messages run to a paragraph, or say ``KeyError: 101``)."""
    import pickle

    text = one_line(err)
    if isinstance(err, pickle.UnpicklingError) and "Weights only load failed" in text:
        return (
            "UnpicklingError: it holds pickled Python objects, not plain tensors and data; refused unread, "
            "since loading them could run code"
        )
    if "failed finding central directory" in text or "reading zip archive" in text or isinstance(err, EOFError):
        return f"{type(err).__name__}: truncated or corrupt (a copy or a write cut short)"
    return f"{type(err).__name__}: {text if len(text) <= 160 else text[:157].rsplit(' ', 1)[0] + ' ...'}"


def _network_of(path: str | os.PathLike, info: dict[str, Any]):
    from ..models.generators import import_extension
    from ..models.network import network_from_spec

    node_op = (info.get("run_config") or {}).get("node_op") or {}
    try:
        import_extension(node_op.get("_module_"), "node_op._module_")  # the run's own op, registered from outside
        return network_from_spec(info["net_spec"], source=str(path))
    except (GraphFormatError, ValueError) as err:
        raise CheckpointError(str(err)) from None  # it names the checkpoint's file already


def _load_weights(model, state: dict[str, Any], path: str | os.PathLike, key: str) -> None:
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise CheckpointError(
            f"{key}={str(path)!r}: weights do not match the stored graphs (missing {missing[:3]}, "
            f"unexpected {unexpected[:3]})"
        )


def load_checkpoint(
    path: str | os.PathLike, key: str = "ckpt", read: tuple[dict[str, Any], dict[str, Any]] | None = None
) -> tuple[Any, dict[str, Any]]:
    """Rebuild the classifier **from the graphs stored in the checkpoint** and load its weights. ``read``:
    what :func:`read_checkpoint` already gave for ``path`` (the file is then not read again)."""
    ckpt, info = read or read_checkpoint(path, key)
    if info.get("task", "classification") != "classification":
        raise CheckpointError(
            f"{key}={str(path)!r}: a {info['task']} checkpoint, not a classifier's (a backbone and the "
            f"classifier analyses take a classification run's checkpoint; evaluate.py takes either)"
        )
    net = _network_of(path, info)
    prefix = "net."
    _load_weights(
        net, {k[len(prefix) :]: v for k, v in (ckpt.get("state_dict") or {}).items() if k.startswith(prefix)}, path, key
    )
    return net, info


def load_detector(
    path: str | os.PathLike, key: str = "ckpt", read: tuple[dict[str, Any], dict[str, Any]] | None = None
) -> tuple[Any, dict[str, Any]]:
    """Rebuild a detector checkpoint's Faster R-CNN: its backbone from the stored graphs (never
    re-sampled), the detector's settings from its stored config, all weights loaded. ``read``: as for
    :func:`load_checkpoint`."""
    from .detection.module import detector_from_hparams

    ckpt, info = read or read_checkpoint(path, key)
    if info.get("task") != "detection":
        raise CheckpointError(f"{key}={str(path)!r}: a classification checkpoint, not a detector")
    model = detector_from_hparams(_network_of(path, info), ckpt.get("hyper_parameters") or {})
    prefix = "detector."
    state = {k[len(prefix) :]: v for k, v in (ckpt.get("state_dict") or {}).items() if k.startswith(prefix)}
    _load_weights(model, state, path, key)
    return model, info
