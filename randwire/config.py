"""Validation of a composed training config, before anything heavy is imported or any data is loaded.

In the spirit of pycls ``assert_cfg``: every check names the key, the bad value and what is allowed, in
one line, so ``python train.py graph.k=3`` fails in a second rather than after the dataset loads.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from .graphs import GENERATOR_PARAMS, validate_graph_params
from .execution import validate_execution_cfg
from .network import NODE_OPS, REGIMES, validate_network_args, validate_stage_params

DATASETS = ("mnist5k", "mnist", "cifar10", "cifar100", "imagenet", "synthetic")
OPTIMIZERS = ("sgd", "adamw")
SCHEDULERS = ("cosine", "constant")
PRECISIONS = ("32-true", "32", "16-mixed", "bf16-mixed", "bf16-true", "64-true")
ACCELERATORS = ("cpu", "gpu", "cuda", "mps", "auto")
SPLITS = ("train", "val", "test")


class ConfigError(ValueError):
    """A config value is out of range; the message is the one line the user sees."""


def _bad(key: str, value: Any, allowed: str) -> ConfigError:
    return ConfigError(f"{key}={value!r} is not allowed: {allowed}")


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _is_num(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _check(cond: bool, key: str, value: Any, allowed: str) -> None:
    if not cond:
        raise _bad(key, value, allowed)


def graph_params(graph_cfg: Mapping[str, Any]) -> dict[str, Any]:
    """The generator's own parameters from ``cfg.graph`` (name and n removed)."""
    name = graph_cfg.get("name")
    return {k: graph_cfg[k] for k in GENERATOR_PARAMS.get(name, ()) if k in graph_cfg}


def _reprefix(err: ValueError, prefixes: Mapping[str, str]) -> ConfigError:
    """Turn a library message ``k=3 is out of range...`` into one naming the config key ``graph.k=3 ...``."""
    msg = str(err)
    head = msg.split("=", 1)[0]
    if head in prefixes:
        msg = prefixes[head] + msg
    return ConfigError(msg)


def validate_network_cfg(cfg: Mapping[str, Any]) -> None:
    g, r = cfg["graph"], cfg["regime"]
    extra = set(g) - {"name", "n"} - set(GENERATOR_PARAMS.get(g.get("name"), ()))
    if extra:
        raise ConfigError(
            f"graph.{sorted(extra)[0]} is not a parameter of graph={g.get('name')!r}: allowed "
            f"{['n', *GENERATOR_PARAMS.get(g.get('name'), ())]}"
        )
    prefixes = {"n": "graph.", "k": "graph.", "p": "graph.", "m": "graph.", "c": "regime.", "dropout": "regime.",
                "edge_drop": "regime.", "num_classes": "data.", "in_channels": "data.", "head_channels": "regime."}
    try:
        validate_graph_params(g.get("name"), g.get("n"), graph_params(g))
        validate_network_args(
            r.get("name"), r.get("c"), cfg["data"].get("num_classes"), cfg["node_op"].get("name"),
            r.get("dropout"), r.get("edge_drop"), cfg["data"].get("in_channels"), r.get("head_channels"),
        )
        validate_stage_params(r["name"], g["name"], g["n"], graph_params(g))  # stage-size limits (k < n/2)
    except ConfigError:
        raise
    except ValueError as err:
        raise _reprefix(err, prefixes) from None


def check_data_path(d: Mapping[str, Any]) -> None:
    name, root = d["name"], d.get("root")
    if name in ("mnist5k", "synthetic"):
        return
    if root in (None, "", "???"):
        raise ConfigError(f"data.root={root!r} is not allowed: data={name} needs the path of a local {name} copy")
    path = Path(str(root)).expanduser()
    need = {
        "mnist": [path / "MNIST" / "raw"],
        "cifar10": [path / "cifar-10-batches-py"],
        "cifar100": [path / "cifar-100-python"],
        "imagenet": [path / "train", path / "val"],
    }[name]
    if name in ("cifar10", "cifar100", "mnist") and d.get("download"):
        return  # torchvision will fetch it, if the network allows
    missing = [p for p in need if not p.is_dir()]
    if missing:
        layout = {"mnist": "<root>/MNIST/raw/*-ubyte", "cifar10": "<root>/cifar-10-batches-py/",
                  "cifar100": "<root>/cifar-100-python/", "imagenet": "<root>/train/<class>/*.JPEG and <root>/val/<class>/*.JPEG"}[name]
        raise ConfigError(
            f"data.root={str(root)!r} is not allowed: {missing[0]} does not exist (expected the torchvision "
            f"layout {layout}{'; or set data.download=true' if name != 'imagenet' else ''})"
        )


def check_execution_cfg(execution: Mapping[str, Any] | None) -> None:
    """The ``execution`` group (train.py and evaluate.py), as a :class:`ConfigError`."""
    try:
        validate_execution_cfg(dict(execution or {}))
    except ValueError as err:
        raise ConfigError(str(err)) from None


def validate_train_cfg(cfg: Mapping[str, Any]) -> None:
    """Every check that needs no data and no torch device; raises :class:`ConfigError`."""
    seed = cfg.get("seed")
    _check(_is_int(seed) and seed >= 0, "seed", seed, "an integer >= 0")
    _check(cfg["regime"].get("name") in REGIMES, "regime", cfg["regime"].get("name"), f"one of {list(REGIMES)}")
    _check(cfg["node_op"].get("name") in NODE_OPS, "node_op", cfg["node_op"].get("name"), f"one of {list(NODE_OPS)}")
    d = cfg["data"]
    _check(d.get("name") in DATASETS, "data", d.get("name"), f"one of {list(DATASETS)}")
    _check(_is_int(d.get("batch_size")) and d["batch_size"] >= 1, "data.batch_size", d.get("batch_size"), "an integer >= 1")
    _check(_is_int(d.get("num_workers")) and d["num_workers"] >= 0, "data.num_workers", d.get("num_workers"), "an integer >= 0")
    _check(_is_int(d.get("image_size")) and d["image_size"] >= 8, "data.image_size", d.get("image_size"), "an integer >= 8 (pixels)")
    validate_network_cfg(cfg)
    o = cfg["optimizer"]
    _check(o.get("name") in OPTIMIZERS, "optimizer", o.get("name"), f"one of {list(OPTIMIZERS)}")
    _check(_is_num(o.get("lr")) and o["lr"] > 0, "optimizer.lr", o.get("lr"), "a number > 0 (learning rate per 256 images)")
    _check(_is_num(o.get("weight_decay")) and o["weight_decay"] >= 0, "optimizer.weight_decay", o.get("weight_decay"), "a number >= 0")
    if o["name"] == "sgd":
        _check(_is_num(o.get("momentum")) and 0 <= o["momentum"] < 1, "optimizer.momentum", o.get("momentum"), "a number in [0, 1)")
    s = cfg["scheduler"]
    _check(s.get("name") in SCHEDULERS, "scheduler", s.get("name"), f"one of {list(SCHEDULERS)}")
    t = cfg["trainer"]
    max_epochs = t.get("max_epochs")
    _check(_is_int(max_epochs) and max_epochs >= 1, "trainer.max_epochs", max_epochs, "an integer >= 1")
    warm = s.get("warmup_epochs", 0)
    _check(_is_num(warm) and 0 <= warm < max_epochs, "scheduler.warmup_epochs", warm, f"a number in [0, trainer.max_epochs={max_epochs})")
    _check(str(t.get("precision")) in PRECISIONS, "trainer.precision", t.get("precision"), f"one of {list(PRECISIONS)}")
    _check(t.get("accelerator") in ACCELERATORS, "trainer.accelerator", t.get("accelerator"), f"one of {list(ACCELERATORS)}")
    m = cfg["model"]
    ls = m.get("label_smoothing")
    _check(_is_num(ls) and 0 <= ls < 1, "model.label_smoothing", ls, "a number in [0, 1)")
    check_execution_cfg(cfg.get("execution"))
    check_data_path(d)
