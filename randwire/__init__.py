"""randwire: randomly wired neural networks (Xie et al., ICCV 2019), from stored graphs to trained runs.

Three layers, each importing only from the ones before it:

- :mod:`randwire.models` — the model library: random graphs and their stored form, the architecture and
  its analytic complexity, the network, its execution, lesions. torch, numpy, networkx; no Lightning,
  Hydra or W&B, so it can be used from any training loop.
- :mod:`randwire.training` — the training framework: config and its validation, data, the LightningModule
  and its callbacks, checkpoints and resume, train / evaluate, DDP, Slurm, loggers.
- :mod:`randwire.analysis` — the population analyses over run and sweep folders: summary, grid, damage,
  node ops, graph statistics.

The model library's public names are importable from here (``from randwire import build_network``):
:func:`sample_graph`, :func:`build_network` (g(θ, s): sample every stage's graph from a seed and build the
network), :func:`network_from_graphs` / :func:`network_from_spec` (rebuild from stored graphs, never
re-sampled), :func:`complexity` (params and multiply-add FLOPs at an input size), :func:`detection_backbone`
(a copy of a network as an FPN backbone for torchvision's detectors).
"""

from .models.complexity import complexity
from .models.graphs import GraphFormatError, StageGraph, derive_stage_seed, sample_graph

# The torch side is imported on first use: `train.py <bad value>` answers before torch loads.
_LAZY = {
    "NODE_OPS": "node_ops",
    "NodeOp": "node_ops",
    "register_node_op": "node_ops",
    "Generator": "generators",
    "register_generator": "generators",
    "stage_rng": "generators",
    "REGIMES": "architecture",
    "sample_stage_graphs": "architecture",
    "RandWireNet": "network",
    "build_network": "network",
    "detection_backbone": "detection",
    "network_from_graphs": "network",
    "network_from_spec": "network",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".models.{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'randwire' has no attribute {name!r}")


__version__ = "0.1.0"

__all__ = [
    "Generator",
    "GraphFormatError",
    "NODE_OPS",
    "NodeOp",
    "REGIMES",
    "RandWireNet",
    "StageGraph",
    "build_network",
    "complexity",
    "detection_backbone",
    "derive_stage_seed",
    "network_from_graphs",
    "network_from_spec",
    "register_generator",
    "register_node_op",
    "sample_graph",
    "sample_stage_graphs",
    "stage_rng",
]
