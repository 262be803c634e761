"""randwire: randomly wired neural networks (Xie et al., ICCV 2019), from stored graphs to trained runs.

Public API (stable; the framework and outside scripts use only this):

- :func:`sample_graph` — one stored stage graph from ER / BA / WS.
- :func:`build_network` — g(θ, s): sample every stage's graph from a seed and build the network.
- :func:`network_from_graphs` / :func:`network_from_spec` — rebuild from stored graphs (never re-samples).
- :func:`complexity` — params and multiply-add FLOPs at an input size.
"""

from .complexity import complexity
from .graphs import GraphFormatError, StageGraph, derive_stage_seed, sample_graph

# The torch side is imported on first use: `train.py <bad value>` answers before torch loads.
_LAZY = {**{name: "network" for name in (
    "NODE_OPS", "REGIMES", "RandWireNet", "build_network", "network_from_graphs", "network_from_spec",
    "sample_stage_graphs")}}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'randwire' has no attribute {name!r}")


__version__ = "0.1.0"

__all__ = [
    "GraphFormatError",
    "NODE_OPS",
    "REGIMES",
    "RandWireNet",
    "StageGraph",
    "build_network",
    "complexity",
    "derive_stage_seed",
    "network_from_graphs",
    "network_from_spec",
    "sample_graph",
    "sample_stage_graphs",
]
