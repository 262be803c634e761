"""A RandWire network's description without torch: regimes (paper Table 1), node operations, the stage
layout, the checks of their values and the sampling of the stage graphs. Importing it costs no torch, so
a bad value is reported before torch loads; :mod:`randwire.models.network` builds the modules from it."""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Optional

from .complexity import Cx, conv2d_cx, gap_cx, linear_cx, norm2d_cx, pool2d_cx
from .errors import BadValue, is_int, is_number, require, require_choice
from .graphs import StageGraph, derive_stage_seed, sample_graph, validate_graph_params

MISSING = "???"  # OmegaConf's marker of a value the config must give (the model library does not import it)


@dataclasses.dataclass
class Execution:
    """The keys and types of ``conf/execution/*.yaml`` (registered as its schema by randwire.training.schema)."""

    mode: str = MISSING
    channels_last: bool = MISSING
    fold_bn: bool = MISSING
    schedule: str = MISSING
    fused_aggregation: bool = MISSING
    compile: bool = MISSING
    compile_mode: Optional[str] = None
    threads: Optional[int] = None


NODE_OPS = ("sep_conv", "conv", "max_pool", "avg_pool")
REGIMES = ("small", "regular", "lowres")


def cpu_image_size(regime: str) -> int:
    """experiment=cpu_budget's input size: MNIST's own 28² where the network keeps enough resolution
    (lowres), else 64² so the small/regular stems' 32x reduction leaves a 2x2 last stage. (At 64² the
    lowres network would cost 16x the small one's multiply-adds and memory for nothing.)"""
    return 28 if regime == "lowres" else 64


HEAD_CHANNELS = 1280
# §5 edge removal, two readings of "randomly remove one edge with probability p" (see network.RandomStage)
EDGE_DROP_MODES = ("per_node", "per_graph")


def stage_layout(regime: str, n: int, c: int, stem_channels: int | None = None) -> list[tuple[int, int, int]]:
    """(nodes, C_in, C_out) of each random stage, in order, for a regime (Table 1). ``stem_channels``:
    conv1's width, C/2 unless ``c=auto`` had to move it (:func:`solve_width`)."""
    require_choice("regime", regime, REGIMES)
    if regime == "regular":
        # reading: the conv2 stage has floor(N/2) nodes and its input is conv1's floor(C/2) channels.
        return [(n // 2, stem_channels or c // 2, c), (n, c, 2 * c), (n, 2 * c, 4 * c), (n, 4 * c, 8 * c)]
    return [(n, c, c), (n, c, 2 * c), (n, 2 * c, 4 * c)]  # small / lowres: conv2 already gives C


def validate_node_op(op: str) -> None:
    """Fig. 6 node operations."""
    require_choice("node_op", op, NODE_OPS)


def validate_network_args(
    regime: str,
    c: int,
    num_classes: int,
    node_op: str,
    dropout: float,
    edge_drop: float,
    in_channels: int = 3,
    head_channels: int = HEAD_CHANNELS,
    edge_drop_mode: str = "per_node",
    stem_channels: int | None = None,
) -> None:
    stage_layout(regime, 2, 2)  # the regime's name
    validate_node_op(node_op)
    require(is_int(c) and c >= 2, "c", c, "an integer >= 2")
    require(is_int(num_classes) and num_classes >= 1, "num_classes", num_classes, "an integer >= 1")
    require(is_number(dropout) and 0 <= dropout < 1, "dropout", dropout, "a float in [0, 1)")
    require(is_number(edge_drop) and 0 <= edge_drop <= 1, "edge_drop", edge_drop, "a probability in [0, 1]")
    require_choice("edge_drop_mode", edge_drop_mode, EDGE_DROP_MODES)
    require(is_int(in_channels) and in_channels >= 1, "in_channels", in_channels, "an integer >= 1")
    require(is_int(head_channels) and head_channels >= 1, "head_channels", head_channels, "an integer >= 1")
    require(
        stem_channels is None or (is_int(stem_channels) and stem_channels >= 1),
        "stem_channels",
        stem_channels,
        "an integer >= 1, or null (C/2)",
    )


def validate_width(c: Any, flops: Any) -> None:
    """``c``: an integer >= 2, or ``auto`` with a FLOPs budget (multiply-adds) to solve it from."""
    if c == "auto" or flops is not None:  # a budget given with a fixed C is checked too (and ignored)
        require(
            is_number(flops) and math.isfinite(flops) and flops > 0,
            "flops",
            flops,
            "a multiply-add budget > 0 (e.g. 580e6) when c=auto"
            if c == "auto"
            else "null, or a multiply-add budget > 0 (read only with c=auto)",
        )
    if c != "auto":
        require(is_int(c) and c >= 2, "c", c, "an integer >= 2, or auto (with regime.flops=<multiply-adds>)")


def validate_stage_params(regime: str, graph: str, n: int, graph_params: dict[str, Any]) -> list[int]:
    """Check the generator parameters against every stage's node count; returns those node counts."""
    validate_graph_params(graph, n, graph_params)
    sizes = [nodes for nodes, _, _ in stage_layout(regime, n, 2)]
    if min(sizes) < 2:
        raise BadValue("n", n, f"n >= 4 for regime={regime!r} (its first stage has n/2 nodes)")
    size = min(sizes)
    if graph == "ba" and graph_params["m"] >= size:
        raise BadValue("m", graph_params["m"], f"[1, {size}) for the {size}-node stage")
    if graph == "ws" and graph_params["k"] >= size:
        raise BadValue("k", graph_params["k"], f"an even integer in [2, {size}) for the {size}-node stage")
    return sizes


def sample_stage_graphs(regime: str, graph: str, n: int, seed: int, **graph_params: Any) -> list[StageGraph]:
    """The stage graphs of g(θ, s): stage i samples its own graph from ``derive_stage_seed(seed, i)``."""
    sizes = validate_stage_params(regime, graph, n, graph_params)
    return [sample_graph(graph, size, derive_stage_seed(seed, i), **graph_params) for i, size in enumerate(sizes)]


# ----------------------------------------------------------------------------------------------------
# Complexity from the description alone (pycls style): what each module of randwire.models.network adds, as
# functions of its sizes. The modules' complexity() methods call these, so there is one count; solving
# C for a FLOPs budget evaluates them, never a built network.
# ----------------------------------------------------------------------------------------------------


def transform_cx(cx: Cx, c_in: int, c_out: int, stride: int, op: str) -> Cx:
    """A node's ReLU-op-BN (§3.3, Fig. 6 node ops)."""
    if op == "sep_conv":
        cx = conv2d_cx(cx, c_in, c_in, 3, stride, groups=c_in)
        cx = conv2d_cx(cx, c_in, c_out, 1)
    elif op == "conv":
        cx = conv2d_cx(cx, c_in, c_out, 3, stride)
    else:
        cx = pool2d_cx(cx, c_in, 3, stride)
        cx = conv2d_cx(cx, c_in, c_out, 1)
    return norm2d_cx(cx, c_out)


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


def network_cx(
    cx: Cx,
    regime: str,
    graphs: list[StageGraph],
    c: int,
    num_classes: int = 1000,
    node_op: str = "sep_conv",
    in_channels: int = 3,
    head_channels: int = HEAD_CHANNELS,
    stem_channels: int | None = None,
    **_: Any,
) -> Cx:
    """Stem, random stages and head of Table 1 (``**_``: config keys that cost nothing, e.g. dropout)."""
    half, stride2 = stem_channels or c // 2, 1 if regime == "lowres" else 2
    cx = conv_bn_cx(cx, in_channels, half, stride2)
    if regime != "regular":
        cx = conv_bn_cx(cx, half, c, stride2)
    layout = stage_layout(regime, 2, c, stem_channels)
    for graph, (_, c_in, c_out) in zip(graphs, layout):
        cx = stage_cx(cx, graph, c_in, c_out, node_op)
    return head_cx(cx, layout[-1][2], head_channels, num_classes)


def solve_c(budget: float, regime: str, graphs: list[StageGraph], image_size: int, **config: Any) -> int:
    """The C whose network's multiply-adds at ``image_size`` are closest to ``budget`` (FLOPs grow with C,
    so a bisection over integers; each step is the analytic count above)."""

    def flops(c: int) -> int:
        return network_cx(Cx(h=image_size, w=image_size), regime, graphs, c, **config).flops

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


def solve_width(
    budget: float, regime: str, graphs: list[StageGraph], image_size: int, **config: Any
) -> tuple[int, int | None]:
    """(C, stem_channels) for ``c=auto``: C as :func:`solve_c`; where that integer C misses the budget by
    more than 1% (dense 3×3 conv at C≈30: one channel is ~6.5% of its FLOPs), conv1's width (Table 1: C/2)
    becomes the fine knob: of the (C±1, width in [C/4, C]) pairs within 1% of the budget, the one whose
    width is closest to C/2 (else the pair closest to the budget). The random
    stages keep Table 1's N·C, N·2C, N·4C exactly. ``stem_channels`` None: C/2, as in the paper."""
    config = {k: v for k, v in config.items() if k != "stem_channels"}

    def flops(c: int, stem: int | None = None) -> int:
        return network_cx(Cx(h=image_size, w=image_size), regime, graphs, c, stem_channels=stem, **config).flops

    c = solve_c(budget, regime, graphs, image_size, **config)
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
