"""Composing a config, building its components, and the errors they raise as one line each (the validation
pass that calls these checks in order is :func:`randwire.training.plan.check`).

Nothing here decides what a value may be. Types and keys come from the schemas (:mod:`randwire.training.schema`,
checked by Hydra at composition); each range is checked once, by the component that owns the value
(generator parameters: :mod:`randwire.models.graphs`; regime, node op and channels: :mod:`randwire.models.network`;
execution switches: :mod:`randwire.models.execution`; data: :class:`randwire.training.data.ImageDataModule`; optimizer,
scheduler, trainer, callbacks, loggers: the classes named by their ``_target_``, built here once on the
spot). This module builds them and names the config key of whatever they reject.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from ..models.errors import BadValue, ConfigError, kind_of, one_line
from .errors import CheckpointError, DataError

CONF_DIR = Path(__file__).resolve().parents[2] / "conf"  # the repository's conf/, as train.py reads it


def compose_config(config_name: str, overrides: list[str]) -> DictConfig:
    """Compose ``conf/<config_name>.yaml`` with overrides, exactly as the entry points do (inspect, tests,
    old checkpoints). Inside a running Hydra app its own (same) config search path is used."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from . import schema  # noqa: F401  (registers the schemas the conf files name)

    if GlobalHydra.instance().is_initialized():
        return compose(config_name, overrides=overrides)
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(config_name, overrides=overrides)


def check_execution_cfg(execution: Mapping[str, Any] | None) -> None:
    """The ``execution`` group (train.py and evaluate.py); its owner keys the messages ``execution.*``."""
    from ..models.execution import validate_execution_cfg

    validate_execution_cfg(dict(execution or {}))


def _first_line(err: BaseException) -> str:
    """Hydra's own first line (the rest of its message is its stack of config sources)."""
    return one_line((str(err).strip() or type(err).__name__).splitlines()[0], limit=300)


def _blame(key: str, node: Any, err: BaseException) -> ConfigError:
    """One line for a component's own error: the config key whose value the message names, if any."""
    cause = err
    while cause.__cause__ is not None and "instantiat" in type(cause).__name__.lower():
        cause = cause.__cause__  # Hydra wraps the component's own error
    if isinstance(cause, BadValue):
        return cause.under(f"{key}.")
    if isinstance(cause, (ConfigError, DataError, CheckpointError)):
        return cause if isinstance(cause, ConfigError) else ConfigError(str(cause))
    message = one_line(cause, limit=400)
    target = node.get("_target_", key) if isinstance(node, Mapping) else key
    unexpected = re.search(r"unexpected keyword argument '(\w+)'", message)
    if unexpected:
        return ConfigError(f"{key}.{unexpected.group(1)} is not an argument of {target}: remove it")
    if isinstance(node, Mapping):
        named = [
            (c, v)
            for c, v in node.items()
            if not c.startswith("_") and v is not None and not isinstance(v, (Mapping, bool))
        ]
        for child, value in named:  # the message names the argument: `Trainer(devices=0)`
            if re.search(rf"\b{re.escape(child)}={re.escape(str(value))}", message):
                return ConfigError(f"{key}.{child}={value!r} is not allowed: {target} says: {message}")
        for child, value in named:  # the message quotes a value: "Invalid learning rate: -0.1"
            values = value if isinstance(value, (list, tuple)) else [value]
            if any(re.search(rf"(?<![\w.\-]){re.escape(str(v))}(?![\w.]\d|\w)", message) for v in values):
                return ConfigError(f"{key}.{child}={value!r} is not allowed: {target} says: {message}")
    return ConfigError(f"{key} ({target}) is not allowed: {message}")


def build(key: str, node: Any, **kwargs: Any) -> Any:
    """``hydra.utils.instantiate(node, **kwargs)``; whatever the component rejects is one :class:`ConfigError`
    naming ``key`` (and the sub-key whose value it names)."""
    from hydra.utils import instantiate

    try:
        return instantiate(node, **kwargs)
    except Exception as err:  # the component's own check, a bad _target_, a missing argument
        raise _blame(
            key, OmegaConf.to_container(node, resolve=True) if isinstance(node, DictConfig) else node, err
        ) from None


def call_checked(key: str, node: Any, fn: Callable[..., Any], **kwargs: Any) -> Any:
    """Call a built partial (an optimizer given parameters, say); its rejection names ``key``."""
    try:
        return fn(**kwargs)
    except Exception as err:
        raise _blame(
            key, OmegaConf.to_container(node, resolve=True) if isinstance(node, DictConfig) else node, err
        ) from None


def build_each(key: str, node: Mapping[str, Any] | None) -> dict[str, Any]:
    """Every ``_target_`` entry of a dict-of-components group (callbacks, logger), by name."""
    return {name: build(f"{key}.{name}", sub) for name, sub in (node or {}).items() if sub is not None}


def check_start_keys(cfg: Mapping[str, Any]) -> None:
    """``ckpt_path``: null, or the path of a checkpoint file (``ckpt_path=0`` or ``''`` would silently start
    from scratch; a number would be a TypeError deep inside)."""
    path = cfg.get("ckpt_path")
    if path is not None and not (isinstance(path, str) and path.strip()):
        raise BadValue(
            "ckpt_path",
            path,
            f"null, or the path of a .ckpt file (got {kind_of(path) if not isinstance(path, str) else 'empty text'})",
            verdict="is not allowed:",
        )


def check_optimizer_values(group: Mapping[str, Any]) -> None:
    """What torch's optimizers let through: NaN passes their ``>= 0`` checks (a run that then diverges at
    step 1), and SGD takes any momentum >= 0 (at 1 or more the updates grow without bound)."""
    import math

    for key, value in group.items():
        values = value if isinstance(value, (list, tuple)) else [value]
        if any(isinstance(v, float) and not math.isfinite(v) for v in values):
            raise BadValue(f"optimizer.{key}", value, "a finite number", verdict="is not allowed:")
    momentum = group.get("momentum")
    if isinstance(momentum, (int, float)) and not isinstance(momentum, bool) and not 0 <= momentum < 1:
        raise BadValue("optimizer.momentum", momentum, "a number in [0, 1)")


def check_optimization(cfg: DictConfig) -> None:
    """The optimizer and the scheduler, built once on a dummy parameter: torch (or the schedule) checks
    its own arguments; a test metric is refused as the value returned to a sweeper."""
    import torch

    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = call_checked("optimizer", cfg.optimizer, build("optimizer", cfg.optimizer), params=[param])
    check_optimizer_values(optimizer.param_groups[0])
    if cfg.get("scheduler") is not None:
        from .schedules import scheduler_context

        epochs = cfg.trainer.get("max_epochs")
        epochs = 1000 if epochs is None else epochs  # Lightning's default when neither epochs nor steps are set
        make = build("scheduler", cfg.scheduler)
        steps = 100 * epochs if isinstance(epochs, int) else 100
        call_checked(
            "scheduler",
            cfg.scheduler,
            make,
            optimizer=optimizer,
            **scheduler_context(make, total_steps=steps, max_epochs=epochs, steps_per_epoch=100),
        )
    metric = cfg.get("optimized_metric")
    if metric is not None and not str(metric).startswith("val/"):
        raise BadValue(
            "optimized_metric",
            metric,
            "a validation metric (val/...): a sweeper must never select on the test split",
            verdict="is not allowed:",
        )


# Group options that come from an optional Hydra plugin: how to get them.
PLUGIN_OPTIONS = {
    "hydra/sweeper/optuna": 'pip install -e ".[sweep]" (hydra-optuna-sweeper; used by hparams_search=lr_optuna)'
}


def _schema_type(message: str, full_key: str) -> str:
    """The type a schema field wants (``object_type=WSGraph`` in OmegaConf's message), in words."""
    from . import schema

    owner = re.search(r"object_type=(\w+)", message)
    field = (
        getattr(getattr(schema, owner.group(1), None), "__dataclass_fields__", {}).get(full_key.rsplit(".", 1)[-1])
        if owner
        else None
    )
    kind = getattr(field.type, "__name__", field.type) if field is not None else None
    return {"int": "an integer", "float": "a number", "str": "text", "bool": "true or false"}.get(
        str(kind), "see conf/"
    )


def group_override_line(err: BaseException, argv: list[str]) -> str | None:
    """Hydra's ``ValueError: Config group override must be a string or a list`` (``node_op=0``), keyed: the
    override whose group is a folder of ``conf/`` and whose value is not an option name."""
    if "Config group override must be" not in str(err):
        return None
    for arg in argv:
        key, _, value = arg.lstrip("+~").partition("=")
        folder = CONF_DIR / key
        if folder.is_dir() and not (folder / f"{value}.yaml").is_file():
            options = sorted(p.stem for p in folder.glob("*.yaml"))
            return f"{key}={value} is not allowed: a config group takes an option name, one of {options}"
    return f"{' '.join(str(err).split())}: a config group takes an option name (group=<name>)"


def composition_error_line(err: BaseException) -> str:
    """One line for an error Hydra raised while composing the config (bad type, unknown key, bad option)."""
    cause = err.__cause__ if err.__cause__ is not None else err
    full_key = getattr(cause, "full_key", None)
    message = _first_line(cause)
    typed = re.search(r"Value '(.*?)' (?:of type '\w+' )?could not be converted to (\w+)", message)
    if full_key and typed:
        return f"{full_key}={typed.group(1)!r} is not allowed: the schema wants {typed.group(2).lower()}"
    boolean = re.search(r"Value '(.*?)' is not a valid bool", message)
    if full_key and boolean:
        return f"{full_key}={boolean.group(1)!r} is not allowed: true or false"
    if full_key and "is not Optional" in message:  # `graph.n=null`
        return f"{full_key}=null is not allowed: it needs a value ({_schema_type(str(cause), full_key)})"
    unknown = re.search(r"Key '(\w+)' not in '(\w+)'", message)
    if full_key and unknown:
        return f"{full_key} is not a key of this config group ({unknown.group(2)}): check the spelling or the group"
    missing = re.search(r"Could not find '([\w/]+)/(\w*)'", str(err))  # an empty option too: trainer=''
    if missing:
        group, option = missing.groups()
        options = [o.strip() for o in re.findall(r"^\t(\S+)$", str(err), flags=re.M) if not o.endswith("_schema")]
        hint = PLUGIN_OPTIONS.get(f"{group}/{option}")
        if hint:
            return f"{group}={option!r} needs a plugin that is not installed: {hint}"
        return f"{group}={option!r} is not allowed: one of {options}" if options else _first_line(err)
    return _first_line(err)
