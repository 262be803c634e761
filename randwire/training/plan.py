"""The one validation pass of a composed config: :func:`check` calls every owner's check once, in order,
before any data loads or anything is written, and returns the :class:`NetworkPlan` the network is built
from (the generator's parameters normalised, the stage sizes, the spec), so no value is checked twice.

Nothing here decides what a value may be: each range is checked by the component that owns the value
(generator parameters: :mod:`randwire.models.generators`; regime, node op and channels:
:class:`~randwire.models.architecture.NetworkSpec`; execution switches: :mod:`randwire.models.execution`; data:
:mod:`randwire.training.data_values`; optimizer and scheduler: built once on a dummy parameter,
:mod:`randwire.training.config`). A rejected value is named by its config key.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from omegaconf import DictConfig, OmegaConf

from ..models.architecture import NetworkSpec, StagePlan
from ..models.errors import BadValue, ConfigError
from ..models.generators import generator, import_extension
from ..models.graphs import validate_seed
from .config import check_execution_cfg, check_optimization, check_start_keys


@dataclass(frozen=True)
class NetworkPlan:
    """The checked network of a config: its spec (``c`` may still be ``auto``), its generator setting and
    stage sizes, the instance seed, the FLOPs budget for ``c=auto``."""

    spec: NetworkSpec
    stages: StagePlan
    seed: int
    flops: float | None


def check(cfg: DictConfig) -> NetworkPlan:
    """Every value train.py takes, checked once by its owner; the plan the builders consume."""
    from .data_values import check_data_cfg
    from .distributed import check_strategy

    plan = check_network_cfg(cfg)  # seed, graph, regime, node_op: before any heavy import
    check_data_cfg(OmegaConf.to_container(cfg.data, resolve=True) if cfg.get("data") is not None else None)
    check_execution_cfg(cfg.get("execution"))
    check_strategy((cfg.get("trainer") or {}).get("strategy"))
    check_optimization(cfg)
    check_start_keys(cfg)
    return plan


def graph_params(graph_cfg: Mapping[str, Any]) -> dict[str, Any]:
    """The generator's own parameters from ``cfg.graph`` (name and n removed), its module imported first
    where the YAML names one (``graph._module_``: a generator registered from outside the package)."""

    def plain(value: Any) -> Any:  # graph.kwargs / graph.paths arrive as OmegaConf containers
        return OmegaConf.to_container(value, resolve=True) if OmegaConf.is_config(value) else value

    import_extension(graph_cfg.get("_module_"), "graph._module_")
    gen = generator(graph_cfg.get("name"))
    keys = (*gen.params, *gen.optional, *(("connected",) if gen.sample else ()))
    return {k: plain(graph_cfg[k]) for k in keys if k in graph_cfg}


def network_spec(cfg: Mapping[str, Any]):
    """The network settings a composed config asks for (``c`` may be ``auto``), as one checked
    :class:`~randwire.models.architecture.NetworkSpec`; a rejected value is named by its own key (``c``)."""
    from ..models.architecture import NetworkSpec

    import_extension(cfg["node_op"].get("_module_"), "node_op._module_")  # an op registered from outside
    r, d = cfg["regime"], cfg["data"]
    return NetworkSpec(
        regime=r.get("name"),
        c=r.get("c"),
        num_classes=d.get("num_classes"),
        node_op=cfg["node_op"].get("name"),
        dropout=r.get("dropout"),
        edge_drop=r.get("edge_drop"),
        in_channels=d.get("in_channels"),
        head_channels=r.get("head_channels"),
        edge_drop_mode=r.get("edge_drop_mode"),
    )


def check_network_cfg(cfg: Mapping[str, Any]) -> NetworkPlan:
    """seed, graph, regime, node_op and the data's classes/channels, checked by their owners (no torch
    module is built, no graph is sampled); a rejected value is re-keyed to its config path. The plan the
    network is built from."""
    from ..models.architecture import check_stages, validate_width
    from .schema import extra_keys

    g, r = cfg["graph"], cfg["regime"]
    for group in ("graph", "regime", "node_op"):
        extra, allowed = extra_keys(group, cfg[group])
        if extra:  # `+graph.m=3` gets past the schema (a + override may add keys)
            raise ConfigError(
                f"{group}.{extra[0]} is not a key of {group}={cfg[group].get('name')!r}: allowed {allowed}"
            )
    validate_seed(cfg.get("seed"))
    path_of = {
        **{k: f"regime.{k}" for k in r},
        **{k: f"graph.{k}" for k in g},
        "regime": "regime.name",
        "node_op": "node_op.name",
        "graph": "graph.name",
        "num_classes": "data.num_classes",
        "in_channels": "data.in_channels",
    }
    try:
        validate_width(r.get("c"), r.get("flops"))
        spec = network_spec(cfg)
        stages = check_stages(r.get("name"), g.get("name"), g.get("n"), graph_params(g))
        _warn_if_seed_ignored(stages, g.get("n"))
    except BadValue as err:
        raise BadValue(path_of.get(err.key, err.key), err.value, err.allowed, err.verdict) from None
    return NetworkPlan(spec, stages, int(cfg["seed"]), r.get("flops"))


def _warn_if_seed_ignored(stages, n: int | None) -> None:
    """graph=networkx: a function that gives the same graph for two seeds makes every instance one network."""
    if stages.graph != "networkx":
        return
    from ..models.function_graphs import seed_is_ignored

    fn, kwargs = stages.params["fn"], stages.params.get("kwargs") or {}
    if seed_is_ignored(fn, kwargs, min(stages.sizes)):
        print(
            f"warning: graph.fn={fn} gave the same graph for two seeds: it ignores the seed, so every "
            f"instance (seed=...) of this setting is the same network",
            file=sys.stderr,
            flush=True,
        )
