"""Analytic complexity in the pycls style: each module reports what it adds to a running count.

FLOPs are multiply-adds, as the paper counts them (§4, Tables 2-3): a k×k conv adds
k·k·(C_in/groups)·C_out·H_out·W_out, an fc adds in·out; BN, ReLU, pooling, edge aggregation and the
output-node mean add none. ``torch.utils.flop_counter`` counts the same operations at 2 FLOPs per
multiply-add, which the tests use as the independent second count.

The one home of complexity counting: the primitives (conv, pool, BN, fc), a RandWire network's count
from its description and graphs alone (:func:`network_cx`, no torch module built), the width that meets a
FLOPs budget (:func:`solve_width`, ``regime.c=auto``), and :func:`complexity` of a built network.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from .architecture import NetworkSpec, stage_layout
from .errors import BadValue

if TYPE_CHECKING:
    from .graphs import StageGraph


@dataclass
class Cx:
    """Running complexity: spatial size of the current feature map, multiply-adds, params, activations."""

    h: int
    w: int
    flops: int = 0
    params: int = 0
    acts: int = 0


def conv2d_cx(cx: Cx, c_in: int, c_out: int, k: int, stride: int = 1, groups: int = 1, bias: bool = False) -> Cx:
    """A k×k conv with padding k//2 (every conv of RandWire)."""
    h = (cx.h + 2 * (k // 2) - k) // stride + 1
    w = (cx.w + 2 * (k // 2) - k) // stride + 1
    weights = k * k * (c_in // groups) * c_out
    cx.flops += weights * h * w
    cx.params += weights + (c_out if bias else 0)
    cx.acts += c_out * h * w
    cx.h, cx.w = h, w
    return cx


def pool2d_cx(cx: Cx, c: int, k: int, stride: int) -> Cx:
    cx.h = (cx.h + 2 * (k // 2) - k) // stride + 1
    cx.w = (cx.w + 2 * (k // 2) - k) // stride + 1
    cx.acts += c * cx.h * cx.w
    return cx


def norm2d_cx(cx: Cx, c: int) -> Cx:
    cx.params += 2 * c
    return cx


def linear_cx(cx: Cx, c_in: int, c_out: int) -> Cx:
    cx.flops += c_in * c_out
    cx.params += c_in * c_out + c_out
    cx.acts += c_out
    return cx


def gap_cx(cx: Cx) -> Cx:
    cx.h, cx.w = 1, 1
    return cx


def complexity(model, input_size: int | tuple[int, int] = 224) -> dict[str, int]:
    """Params and multiply-add FLOPs of a built network at an input size (no forward pass needed)."""
    h, w = (input_size, input_size) if isinstance(input_size, int) else input_size
    cx = model.complexity(Cx(h=int(h), w=int(w)))
    return {"flops": cx.flops, "params": cx.params, "acts": cx.acts}


def transform_cx(cx: Cx, c_in: int, c_out: int, stride: int, op: str) -> Cx:
    """A node's ReLU-op-BN (§3.3, Fig. 6 node ops): the op's own count (its record), then the BN."""
    from .node_ops import node_op  # the op table imports this module's primitives

    return norm2d_cx(node_op(op).complexity(cx, c_in, c_out, stride), c_out)


def node_cx(cx: Cx, in_degree: int, c_in: int, c_out: int, stride: int, op: str) -> Cx:
    cx.params += in_degree if in_degree > 1 else 0  # its aggregation weights
    return transform_cx(cx, c_in, c_out, stride, op)


def stage_cx(cx: Cx, graph: StageGraph, c_in: int, c_out: int, op: str) -> Cx:
    """A random stage: nodes fed by the stage input run at its resolution with stride 2, the others at
    the stage's output resolution."""
    h_out, w_out = (cx.h - 1) // 2 + 1, (cx.w - 1) // 2 + 1
    inputs = set(graph.input_nodes)
    for v, preds in enumerate(graph.predecessors()):
        fed = v in inputs
        start = Cx(h=cx.h, w=cx.w) if fed else Cx(h=h_out, w=w_out)
        node_cx(start, max(len(preds), 1), c_in if fed else c_out, c_out, 2 if fed else 1, op)
        cx.flops += start.flops
        cx.params += start.params
        cx.acts += start.acts
    cx.h, cx.w = h_out, w_out
    return cx


def conv_bn_cx(cx: Cx, c_in: int, c_out: int, stride: int) -> Cx:
    return norm2d_cx(conv2d_cx(cx, c_in, c_out, 3, stride), c_out)


def head_cx(cx: Cx, c_in: int, width: int, num_classes: int) -> Cx:
    cx = norm2d_cx(conv2d_cx(cx, c_in, width, 1), width)
    return linear_cx(gap_cx(cx), width, num_classes)


def network_cx(cx: Cx, spec: NetworkSpec, graphs: list[StageGraph]) -> Cx:
    """Stem, random stages and head of Table 1, from the spec and the graphs alone (no module built)."""
    cx = backbone_cx(cx, spec, graphs)
    return head_cx(
        cx, stage_layout(spec.regime, 2, spec.c, spec.stem_channels)[-1][2], spec.head_channels, spec.num_classes
    )


def backbone_cx(cx: Cx, spec: NetworkSpec, graphs: list[StageGraph]) -> Cx:
    """Stem and random stages (conv1..conv5: what a detector keeps of the classifier)."""
    half, stride2 = spec.stem_channels or spec.c // 2, 1 if spec.regime == "lowres" else 2
    cx = conv_bn_cx(cx, spec.in_channels, half, stride2)
    if spec.regime != "regular":
        cx = conv_bn_cx(cx, half, spec.c, stride2)
    for graph, (_, c_in, c_out) in zip(graphs, stage_layout(spec.regime, 2, spec.c, spec.stem_channels)):
        cx = stage_cx(cx, graph, c_in, c_out, spec.node_op)
    return cx


def solve_c(budget: float, spec: NetworkSpec, graphs: list[StageGraph], image_size: int) -> int:
    """The C whose network's multiply-adds at ``image_size`` are closest to ``budget`` (FLOPs grow with C,
    so a bisection over integers; each step is the analytic count above)."""

    def flops(c: int) -> int:
        return network_cx(Cx(h=image_size, w=image_size), spec.replace(c=c), graphs).flops

    lo, hi = 2, 4
    if flops(lo) >= budget:
        return lo
    while flops(hi) < budget:
        lo, hi = hi, hi * 2
        if hi > 1 << 16:
            raise BadValue("flops", budget, "a budget a network with C <= 65536 channels can reach")
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if flops(mid) < budget else (lo, mid)
    return lo if budget - flops(lo) <= flops(hi) - budget else hi


STEM_TOLERANCE = 0.01  # reading: how far integer C may miss a FLOPs budget before the stem width moves


def solve_width(budget: float, spec: NetworkSpec, graphs: list[StageGraph], image_size: int) -> tuple[int, int | None]:
    """(C, stem_channels) for ``c=auto``: C as :func:`solve_c`; where that integer C misses the budget by
    more than 1% (dense 3×3 conv at C≈30: one channel is ~6.5% of its FLOPs), conv1's width (Table 1: C/2)
    becomes the fine knob: of the (C±1, width in [C/4, C]) pairs within 1% of the budget, the one whose
    width is closest to C/2 (else the pair closest to the budget). The random
    stages keep Table 1's N·C, N·2C, N·4C exactly. ``stem_channels`` None: C/2, as in the paper."""

    def flops(c: int, stem: int | None = None) -> int:
        return network_cx(Cx(h=image_size, w=image_size), spec.replace(c=c, stem_channels=stem), graphs).flops

    c = solve_c(budget, spec.replace(stem_channels=None), graphs, image_size)
    if abs(flops(c) / budget - 1) <= STEM_TOLERANCE:
        return c, None
    candidates = [
        (abs(flops(k, w) - budget), abs(w - k // 2), k, w)
        for k in (c - 1, c, c + 1)
        if k >= 2
        for w in range(max(1, k // 4), k + 1)
    ]
    near = [(moved, miss, k, w) for miss, moved, k, w in candidates if miss <= STEM_TOLERANCE * budget]
    # within 1%: the stem closest to C/2 (least change to Table 1); else the closest FLOPs
    _, _, c_best, stem = min(near) if near else min(candidates)
    return c_best, (None if stem == c_best // 2 else stem)
