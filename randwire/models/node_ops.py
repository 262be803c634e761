"""Node operations (paper §3.3, Fig. 6): one record per op, in one table that everything looks up.

A node computes ReLU → op → BN; the op is a :class:`randwire.models.layers.NodeTransform` subclass (torch),
named here by import path so that checking a config's ``node_op`` loads no torch. Its complexity is a
torch-free function, so FLOPs are counted (and ``regime.c=auto`` solved) from the description alone.
An op of yours: subclass ``NodeTransform``, register a :class:`NodeOp` when your module is imported, and
name the module in ``conf/node_op/<name>.yaml`` as ``_module_`` (README, "Add a generator or a node op").
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable
from typing import Any

from .complexity import Cx, conv2d_cx, pool2d_cx
from .registry import Registry


@dataclasses.dataclass(frozen=True)
class NodeOp:
    """``module``: the NodeTransform subclass, or its import path ``package.module.Class`` (imported when a
    network is built); ``complexity(cx, c_in, c_out, stride)``: what the op adds before its BN (which the
    node counts), with ``cx`` at the node's input resolution."""

    name: str
    module: str | type
    complexity: Callable[[Cx, int, int, int], Cx]

    def build(self, c_in: int, c_out: int, stride: int) -> Any:
        """The op's module for one node (torch is imported here, not before)."""
        cls = self.module
        if isinstance(cls, str):
            module_name, name = cls.rsplit(".", 1)
            cls = getattr(importlib.import_module(module_name), name)
        return cls(c_in, c_out, stride)


NODE_OPS = ("sep_conv", "conv", "max_pool", "avg_pool")  # Fig. 6's order
REGISTRY: Registry[NodeOp] = Registry("node_op", NodeOp, NODE_OPS)


def register_node_op(op: NodeOp) -> NodeOp:
    """Make ``node_op=<op.name>`` known; a built-in name cannot be taken, registering again replaces."""
    return REGISTRY.register(op)


def node_op(name: Any) -> NodeOp:
    """The registered op ``node_op=<name>`` names; one line listing the known names otherwise."""
    return REGISTRY[name]


def _sep_conv_cx(cx: Cx, c_in: int, c_out: int, stride: int) -> Cx:
    return conv2d_cx(conv2d_cx(cx, c_in, c_in, 3, stride, groups=c_in), c_in, c_out, 1)  # 3×3 depthwise, 1×1


def _conv_cx(cx: Cx, c_in: int, c_out: int, stride: int) -> Cx:
    return conv2d_cx(cx, c_in, c_out, 3, stride)


def _pool_cx(cx: Cx, c_in: int, c_out: int, stride: int) -> Cx:
    return conv2d_cx(pool2d_cx(cx, c_in, 3, stride), c_in, c_out, 1)  # 3×3 pool, 1×1 conv


for _op in (
    NodeOp("sep_conv", "randwire.models.layers.SepConv", _sep_conv_cx),
    NodeOp("conv", "randwire.models.layers.Conv", _conv_cx),
    NodeOp("max_pool", "randwire.models.layers.MaxPoolConv", _pool_cx),
    NodeOp("avg_pool", "randwire.models.layers.AvgPoolConv", _pool_cx),
):
    REGISTRY.register(_op, builtin=True)
