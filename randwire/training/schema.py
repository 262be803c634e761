"""Typed schemas of the randwire config groups (graph, regime, node_op, execution), registered with Hydra.

The YAML files in ``conf/`` hold the values (paper defaults live there, once); these dataclasses hold only
the types and the keys, so ``graph.k=abc`` or ``+graph.m=3`` on a WS graph fails while Hydra composes the
config, before any code runs. Value *ranges* are checked by the component that owns each value
(generator parameters in :mod:`randwire.models.generators`, regime values in :mod:`randwire.models.architecture`, the execution
switches in :mod:`randwire.models.execution`), not here. No torch here.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, Optional

from omegaconf import MISSING

from ..models.architecture import Execution
from . import resources  # noqa: F401  (registers the resolvers conf/hydra/launcher/*.yaml use)


@dataclass
class ERGraph:
    name: str = "er"
    n: int = MISSING  # nodes per random stage (the regular regime's first stage has n/2)
    p: float = MISSING
    connected: bool = MISSING  # redraw until the graph is connected (randwire.models.graphs.sample_graph)


@dataclass
class BAGraph:
    name: str = "ba"
    n: int = MISSING
    m: int = MISSING
    connected: bool = MISSING


@dataclass
class WSGraph:
    name: str = "ws"
    n: int = MISSING
    k: int = MISSING
    p: float = MISSING
    connected: bool = MISSING


@dataclass
class WSFlexGraph(WSGraph):
    name: str = "ws_flex"
    k: float = MISSING  # average degree, any real number in [2, n - 1]


@dataclass
class NetworkXGraph:
    name: str = "networkx"
    n: int = MISSING
    fn: str = MISSING  # import path of a function (n, seed=..., **kwargs) -> networkx graph
    kwargs: dict[str, Any] = field(default_factory=dict)
    connected: bool = MISSING


@dataclass
class FileGraph:
    name: str = "file"
    n: Optional[int] = None  # unused: the files give each stage's nodes
    paths: list[str] = MISSING


@dataclass
class Regime:
    name: str = MISSING
    c: Any = MISSING  # an integer, or "auto": solved from `flops` (randwire.models.architecture.solve_c)
    flops: Optional[float] = None  # multiply-adds budget at data.image_size, for c=auto
    dropout: float = MISSING
    edge_drop: float = MISSING
    edge_drop_mode: str = MISSING
    head_channels: int = MISSING


@dataclass
class NodeOp:
    name: str = MISSING
    _module_: Optional[str] = None  # a module of yours that registers the op (randwire.models.node_ops)


SCHEMAS = {
    ("graph", "er"): ERGraph,
    ("graph", "ba"): BAGraph,
    ("graph", "ws"): WSGraph,
    ("graph", "ws_flex"): WSFlexGraph,
    ("graph", "networkx"): NetworkXGraph,
    ("graph", "file"): FileGraph,
    ("regime", "regime"): Regime,
    ("node_op", "node_op"): NodeOp,
    ("execution", "execution"): Execution,
}


def extra_keys(group: str, node: Any) -> tuple[list[str], list[str]]:
    """Keys of ``node`` that its schema does not have, and the keys it has (graph: per generator)."""
    schema = SCHEMAS.get((group, node.get("name") if group == "graph" else group))
    if schema is None:
        return [], []
    allowed = [f.name for f in fields(schema)]
    return sorted(set(node) - set(allowed)), allowed


def register() -> None:
    """Store every schema as ``<group>/<name>_schema`` (idempotent); conf files list it in their defaults.
    Also the resolver the presets use (``${randwire.cpu_image_size:${regime.name}}``)."""
    from hydra.core.config_store import ConfigStore
    from omegaconf import OmegaConf

    from ..models.architecture import cpu_image_size

    if not OmegaConf.has_resolver("randwire.cpu_image_size"):
        OmegaConf.register_new_resolver("randwire.cpu_image_size", cpu_image_size)

    cs = ConfigStore.instance()
    for (group, name), node in SCHEMAS.items():
        cs.store(group=group, name=f"{name}_schema", node=node)


register()
