"""A RandWire network's description without torch: regimes (paper Table 1), node operations, the stage
layout, the checks of their values and the sampling of the stage graphs. Importing it costs no torch, so
a bad value is reported before torch loads; :mod:`randwire.models.network` builds the modules from it."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any, Optional

from .errors import BadValue, is_int, is_number, require, require_choice
from .generators import generator, validate_graph_params
from .graph_files import read_graph_file
from .graphs import StageGraph, derive_stage_seed, draw_graph

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
    """A registered node operation (Fig. 6's four, and any registered op: randwire.models.node_ops)."""
    from .node_ops import node_op  # its table counts complexity, which imports this module

    node_op(op)


@dataclasses.dataclass(frozen=True)
class NetworkSpec:
    """A RandWire network's settings apart from its graphs (paper Table 1, §3.3-3.4), checked once, when made.

    ``c`` is an integer >= 2, or ``"auto"``: a request to solve it from a FLOPs budget on the network's own
    graphs (:func:`randwire.models.complexity.solve_width`); a built network needs an integer.
    ``stem_channels``: conv1's width where ``c=auto`` moved it off C/2 (None: C/2, as in the paper)."""

    regime: str
    c: int | str
    num_classes: int = 1000
    node_op: str = "sep_conv"
    dropout: float = 0.0
    edge_drop: float = 0.0
    in_channels: int = 3
    head_channels: int = HEAD_CHANNELS
    edge_drop_mode: str = "per_node"
    stem_channels: int | None = None

    def __post_init__(self) -> None:
        stage_layout(self.regime, 2, 2)  # the regime's name
        validate_node_op(self.node_op)
        require(self.c == "auto" or (is_int(self.c) and self.c >= 2), "c", self.c, "an integer >= 2")
        require(is_int(self.num_classes) and self.num_classes >= 1, "num_classes", self.num_classes, "an integer >= 1")
        require(is_number(self.dropout) and 0 <= self.dropout < 1, "dropout", self.dropout, "a float in [0, 1)")
        require(
            is_number(self.edge_drop) and 0 <= self.edge_drop <= 1,
            "edge_drop",
            self.edge_drop,
            "a probability in [0, 1]",
        )
        require_choice("edge_drop_mode", self.edge_drop_mode, EDGE_DROP_MODES)
        require(is_int(self.in_channels) and self.in_channels >= 1, "in_channels", self.in_channels, "an integer >= 1")
        require(
            is_int(self.head_channels) and self.head_channels >= 1,
            "head_channels",
            self.head_channels,
            "an integer >= 1",
        )
        require(
            self.stem_channels is None or (is_int(self.stem_channels) and self.stem_channels >= 1),
            "stem_channels",
            self.stem_channels,
            "an integer >= 1, or null (C/2)",
        )

    def replace(self, **changes: Any) -> NetworkSpec:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """The stored form (checkpoints' ``net_spec["config"]``): ``stem_channels`` only where it was moved,
        so the specs of paper-layout networks are those of before it existed."""
        out = dataclasses.asdict(self)
        if out["stem_channels"] is None:
            del out["stem_channels"]
        return out


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


@dataclasses.dataclass(frozen=True)
class StagePlan:
    """A generator setting checked once against a regime: its parameters normalised, each random stage's
    node count, and (``file``) the graphs already read; :func:`draw_stage_graphs` samples from it."""

    regime: str
    graph: str
    params: dict[str, Any]
    sizes: list[int]
    read: list[StageGraph] | None = None  # graph=file: the files' graphs (the same for every seed)


def check_stages(regime: str, graph: str, n: int | None, graph_params: dict[str, Any]) -> StagePlan:
    """Check the generator parameters against every stage's node count (for ``file``, each file read and
    checked): the one check of a generator setting."""
    params = validate_graph_params(graph, n, graph_params)
    if graph == "file":
        read = _file_stage_graphs(regime, params["paths"])
        return StagePlan(regime, graph, params, [g.n for g in read], read)
    sizes = [nodes for nodes, _, _ in stage_layout(regime, n, 2)]
    if min(sizes) < 2:
        raise BadValue("n", n, f"n >= 4 for regime={regime!r} (its first stage has n/2 nodes)")
    stage_check = generator(graph).stage_check
    if stage_check is not None:
        stage_check(min(sizes), params)
    return StagePlan(regime, graph, params, sizes)


def draw_stage_graphs(plan: StagePlan, seed: int) -> list[StageGraph]:
    """The stage graphs of g(θ, s) for a checked setting: stage i samples its own graph from
    ``derive_stage_seed(seed, i)``; ``file`` graphs are the ones read (seed 0, the same for every seed)."""
    if plan.read is not None:
        return list(plan.read)
    return [draw_graph(plan.graph, size, derive_stage_seed(seed, i), plan.params) for i, size in enumerate(plan.sizes)]


def sample_stage_graphs(regime: str, graph: str, n: int | None, seed: int, **graph_params: Any) -> list[StageGraph]:
    """The stage graphs of g(θ, s) (:func:`check_stages`, then :func:`draw_stage_graphs`)."""
    return draw_stage_graphs(check_stages(regime, graph, n, graph_params), seed)


def _file_stage_graphs(regime: str, paths: list[str]) -> list[StageGraph]:
    """One graph per random stage from ``paths`` (one file for every stage, or one per stage), each file read
    and checked once; stored as ``file`` with the file's name and seed 0 (the same for every seed)."""
    stages = len(stage_layout(regime, 4, 2))
    if len(paths) not in (1, stages):
        raise BadValue(
            "paths",
            paths,
            f"1 file (every stage) or {stages} (one per random stage of regime={regime})",
            "has the wrong number of files:",
        )
    read = {
        path: StageGraph("file", {"file": Path(path).name}, 0, *read_graph_file(path)) for path in dict.fromkeys(paths)
    }
    return [read[path] for path in (paths * stages if len(paths) == 1 else paths)]


# ----------------------------------------------------------------------------------------------------
# Complexity from the description alone (pycls style): what each module of randwire.models.network adds, as
# functions of its sizes. The modules' complexity() methods call these, so there is one count; solving
# C for a FLOPs budget evaluates them, never a built network.
# ----------------------------------------------------------------------------------------------------
