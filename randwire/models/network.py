"""RandWire networks built from stored stage graphs (paper §3.3-3.4, Table 1).

A network is always built from :class:`~randwire.models.graphs.StageGraph` objects; :func:`build_network` samples
them first (one per random stage, each from its own derived seed), :func:`network_from_graphs` rebuilds from
stored ones (checkpoints) and never re-samples. How a stage is executed (plain per-node loop or the fast
plan of :mod:`randwire.models.execution`) does not change its parameters or its ``state_dict``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from .architecture import NetworkSpec, sample_stage_graphs, stage_layout
from .complexity import Cx, network_cx, node_cx, stage_cx
from .graphs import StageGraph
from .layers import ConvBN, Head, node_transform

# ----------------------------------------------------------------------------------------------------
# Node operation (§3.3): weighted-sum aggregation, ReLU-conv-BN transformation, one output to all edges.
# ----------------------------------------------------------------------------------------------------


class Node(nn.Module):
    """One graph node: aggregation weights (one per in-edge) and its transformation."""

    def __init__(self, in_degree: int, c_in: int, c_out: int, stride: int, op: str) -> None:
        super().__init__()
        self.in_degree = in_degree
        # §3.3 positive weights w = sigmoid(raw). reading: raw starts at 0 (w = 0.5); a node with one
        # input passes it unweighted, so it has no weight at all (BN cancels a scale anyway).
        self.edge_logits = nn.Parameter(torch.zeros(in_degree)) if in_degree > 1 else None
        self.transform = node_transform(c_in, c_out, stride, op)

    def complexity(self, cx: Cx) -> Cx:
        t = self.transform
        return node_cx(cx, self.in_degree, t.c_in, t.c_out, t.stride, t.op)


class RandomStage(nn.Module):
    """One random stage: the DAG of a stored graph, with an extra input and output node (§3.3).

    Nodes fed by the stage's input (the previous stage's output) use stride 2 and map C_in → C_out; all
    others map C_out → C_out. The output node is the unweighted mean of the out-degree-0 nodes.
    """

    def __init__(
        self,
        graph: StageGraph,
        c_in: int,
        c_out: int,
        op: str = "sep_conv",
        edge_drop: float = 0.0,
        edge_drop_mode: str = "per_node",
    ) -> None:
        super().__init__()
        self.graph = graph
        self.c_in, self.c_out = c_in, c_out
        self.edge_drop, self.edge_drop_mode = float(edge_drop), edge_drop_mode
        self.preds = graph.predecessors()
        self.inputs = graph.input_nodes
        self.outputs = graph.output_nodes
        input_set = set(self.inputs)
        self.nodes = nn.ModuleList(
            Node(
                max(len(p), 1),
                c_in if v in input_set else c_out,
                c_out,
                2 if v in input_set else 1,
                op,
            )
            for v, p in enumerate(self.preds)
        )
        self.multi = [v for v, p in enumerate(self.preds) if len(p) > 1]
        self.plan = None  # set by randwire.models.execution when the fast execution is switched on

    # -- aggregation weights ------------------------------------------------------------------------
    def edge_weights(self) -> list[torch.Tensor | None]:
        """Per node, the weights of its in-edges for this step (None: single input, passed as is).

        §5 edge removal (regular regime), two readings of its sentence (``edge_drop_mode``):
        ``per_node`` (default) — each node with in-degree > 1 drops one uniformly chosen in-edge with
        probability ``edge_drop`` (~1.8 edges per 32-node stage per step at p=0.1); ``per_graph`` — with
        probability ``edge_drop`` the stage drops one edge, uniform over the in-edges of nodes with
        in-degree > 1 (~0.1 per stage per step). reading: decided per step, the other weights are not
        re-normalised, and a node never loses its last input.
        """
        weights: list[torch.Tensor | None] = [None] * len(self.nodes)
        drop = None
        if self.training and self.edge_drop > 0 and self.multi and self.edge_drop_mode == "per_graph":
            d, u = torch.rand(2).tolist()
            drop = [-1] * len(self.multi)
            if d < self.edge_drop:
                degrees = [self.nodes[v].in_degree for v in self.multi]
                k = min(int(u * sum(degrees)), sum(degrees) - 1)
                for i, degree in enumerate(degrees):
                    if k < degree:
                        drop[i] = k
                        break
                    k -= degree
        elif self.training and self.edge_drop > 0 and self.multi:
            draw = torch.rand(len(self.multi), 2)
            drop = [
                int(u * self.nodes[v].in_degree) if d < self.edge_drop else -1
                for v, d, u in zip(self.multi, draw[:, 0].tolist(), draw[:, 1].tolist())
            ]
        for i, v in enumerate(self.multi):
            w = torch.sigmoid(self.nodes[v].edge_logits)
            if drop is not None and drop[i] >= 0:
                keep = torch.ones_like(w)
                keep[min(drop[i], len(w) - 1)] = 0
                w = w * keep
            weights[v] = w
        return weights

    # -- execution -----------------------------------------------------------------------------------
    def forward_reference(self, x: torch.Tensor, damaged: Any = None) -> torch.Tensor:
        """The plain per-node loop every public implementation uses; all node outputs live to the end.
        ``damaged`` (a :class:`randwire.models.lesions.DamagedStage`): run only the nodes, in-edges and output
        nodes a graph damage left (Fig. 5); None: the whole stage."""
        weights = self.edge_weights()
        outs: dict[int, torch.Tensor] = {}
        for v, node in enumerate(self.nodes):
            if damaged is not None and not damaged.alive[v]:
                continue
            preds = self.preds[v]
            if not preds:
                agg = x
            elif len(preds) == 1:
                agg = outs[preds[0]]
            else:
                w = weights[v]
                kept = range(len(preds)) if damaged is None else damaged.kept[v]
                agg = sum(w[i] * outs[preds[i]] for i in kept)
            outs[v] = node.transform(agg)
        outputs = self.outputs if damaged is None else damaged.outputs
        return sum(outs[v] for v in outputs) / len(outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.plan is not None:
            return self.plan(self, x)
        return self.forward_reference(x)

    def complexity(self, cx: Cx) -> Cx:
        return stage_cx(cx, self.graph, self.c_in, self.c_out, self.nodes[0].transform.op)


# ----------------------------------------------------------------------------------------------------
# Stem, head and the whole network (Table 1).
# ----------------------------------------------------------------------------------------------------


class RandWireNet(nn.Module):
    """A randomly wired network: stem, random stages built from ``graphs``, classifier head.

    Regimes (Table 1, 224² input): ``small`` (conv1 3×3 C/2 s2 + BN; conv2 ReLU-3×3 C s2-BN; random stages
    N·C, N·2C, N·4C), ``regular`` (conv1; random stages N/2·C, N·2C, N·4C, N·8C). ``lowres`` is this
    project's regime for 28-32 px inputs (reading): the small regime with conv1 and conv2 at stride 1, so a
    32² input reaches the stages at 32² and leaves them at 4² (28² → 4²): 8× downsampling instead of 32×.
    """

    def __init__(self, spec: NetworkSpec, graphs: Sequence[StageGraph]) -> None:
        super().__init__()
        if spec.c == "auto":
            raise ValueError(
                "c='auto' is a request, not a width: solve it first (randwire.models.complexity.solve_width)"
            )
        self.spec = spec  # the one description of this network apart from its graphs
        self.graphs = list(graphs)
        layout = stage_layout(spec.regime, 2, spec.c, spec.stem_channels)  # channels only: nodes come from the graphs
        if len(self.graphs) != len(layout):
            raise ValueError(f"regime={spec.regime!r} needs {len(layout)} stage graphs, got {len(self.graphs)}")
        half = spec.stem_channels or spec.c // 2  # reading: C/2 = floor(C/2)
        stride2 = 1 if spec.regime == "lowres" else 2
        stem: list[nn.Module] = [ConvBN(spec.in_channels, half, stride2, relu=False)]
        if spec.regime != "regular":
            stem.append(ConvBN(half, spec.c, stride2, relu=True))
        self.stem = nn.Sequential(*stem)
        self.stages = nn.ModuleList(
            RandomStage(graph, c_in, c_out, spec.node_op, spec.edge_drop, spec.edge_drop_mode)
            for graph, (_, c_in, c_out) in zip(self.graphs, layout)
        )
        self.head = Head(layout[-1][2], spec.num_classes, spec.dropout, spec.head_channels)
        self.plan = None  # set by randwire.models.execution when the fast execution is switched on
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # reading (pycls init): convs Kaiming-normal fan-out, BN γ=1 β=0, fc N(0, 0.01) with zero bias.
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, std=0.01)
                nn.init.zeros_(m.bias)

    @property
    def feature_info(self) -> FeatureInfo:
        """The levels :meth:`forward_levels` returns, in timm's convention (``num_chs``, ``reduction``,
        ``module``; ``.channels()``, ``.reduction()``, ``.module_name()``): Table 1's conv2..conv5, at
        reductions 4, 8, 16, 32 in the small and regular regimes (lowres: 1, 2, 4, 8). Small/lowres: conv2 is
        the stem's second conv, conv3..conv5 the random stages; regular: conv2..conv5 are the four random
        stages. Still callable (``net.feature_info()``), as before it was an attribute."""
        stride = 1 if self.spec.regime == "lowres" else 2
        info, reduction = [], stride  # conv1
        if self.spec.regime != "regular":
            reduction *= stride
            info.append({"num_chs": self.spec.c, "reduction": reduction, "module": f"stem.{len(self.stem) - 1}"})
        for i, stage in enumerate(self.stages):
            reduction *= 2  # every random stage's input-fed nodes have stride 2 (§3.3)
            info.append({"num_chs": stage.c_out, "reduction": reduction, "module": f"stages.{i}"})
        return FeatureInfo(info)

    def forward_levels(self, x: torch.Tensor) -> list[torch.Tensor]:
        """conv2..conv5's outputs (:attr:`feature_info`), after the ReLU that every reader of them applies, as
        the classifier computes them on the way to its head (in either execution)."""
        if self.plan is not None:
            return self.plan.levels(self, x)
        levels = []
        x = self.stem(x)
        if self.spec.regime != "regular":
            levels.append(torch.relu(x))
        for stage in self.stages:
            x = stage(x)
            levels.append(torch.relu(x))
        return levels

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """timm's ``forward_features``: the unpooled map the classifier pools (the head's 1×1 conv, BN, ReLU on
        conv5); without a head (``features_only``), conv5 itself."""
        last = self.plan.last_level(self, x) if self.plan is not None else self.forward_levels(x)[-1]
        return last if self.head is None else self.head.map(last, relu_done=True)

    def forward_head(self, features: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """timm's ``forward_head``: pool :meth:`forward_features`'s map, then dropout and the classifier."""
        pooled = features.mean((2, 3))
        return pooled if pre_logits else self.head.fc(self.head.dropout(pooled))

    def forward(self, x: torch.Tensor) -> torch.Tensor | list[torch.Tensor]:
        if self.head is None:  # features_only (timm): the feature maps, conv2..conv5
            return self.forward_levels(x)
        if self.plan is not None:
            return self.plan(self, x)
        x = self.stem(x)
        for stage in self.stages:
            x = stage(x)
        return self.head(x)

    def complexity(self, cx: Cx) -> Cx:
        return network_cx(cx, self.spec, self.graphs)

    def record(self) -> dict[str, Any]:
        """What a checkpoint stores to rebuild this network (weights aside), as plain data: its
        :class:`NetworkSpec` and its stored graphs; :func:`network_from_spec` reads it back."""
        return {"config": self.spec.to_dict(), "graphs": [g.to_dict() for g in self.graphs]}


def _with_init_seed(init_seed: int | None, make):
    """``make()`` with the initial weights a pure function of ``init_seed``, the global RNG untouched."""
    if init_seed is None:
        return make()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(init_seed)
        return make()


def network_from_graphs(
    regime: str, graphs: Sequence[StageGraph], c: int, *, init_seed: int | None = None, **settings: Any
) -> RandWireNet:
    """Build a network from stored graphs (never re-samples); ``settings``: the rest of :class:`NetworkSpec`."""
    return network_of(NetworkSpec(regime, c, **settings), graphs, init_seed)


def network_of(spec: NetworkSpec, graphs: Sequence[StageGraph], init_seed: int | None = None) -> RandWireNet:
    """The network a spec and stored graphs describe, its initial weights a pure function of ``init_seed``."""
    return _with_init_seed(init_seed, lambda: RandWireNet(spec, graphs))


def network_from_spec(record: dict[str, Any], source: str = "network spec") -> RandWireNet:
    """The network :meth:`RandWireNet.record` describes (what checkpoints store), its spec read back into a
    :class:`NetworkSpec`."""
    from .graphs import graphs_from_dicts

    try:
        settings = NetworkSpec(**record["config"])
        graphs = graphs_from_dicts(record["graphs"], source=source)
    except (KeyError, TypeError) as err:
        raise ValueError(f"{source}: not a RandWire network spec (missing {err})") from None
    return RandWireNet(settings, graphs)


def build_network(
    regime: str,
    *,
    graph: str,
    n: int,
    c: int,
    seed: int,
    dropout: float | None = None,
    edge_drop: float | None = None,
    features_only: bool = False,
    **settings: Any,
) -> RandWireNet:
    """g(θ, s): sample each stage's graph from ``seed`` and build the network, weights seeded by ``seed``.
    ``settings``: the rest of :class:`NetworkSpec`, then the generator's own parameters (``k``, ``p``, ``m``).

    ``dropout`` and ``edge_drop`` default to the paper's (§5): 0.2 and 0.1 in the regular regime, 0 otherwise
    (conf/regime/*.yaml names the same values; a test checks that they agree). ``features_only`` (timm's):
    no classifier head; ``net(x)`` returns conv2..conv5's maps, described by ``net.feature_info``. The same
    seed gives the same graphs and the same weights as the classifier's, head aside.
    """
    fields = {f.name for f in dataclasses.fields(NetworkSpec)}
    graph_params = {k: v for k, v in settings.items() if k not in fields}
    dropout = (0.2 if regime == "regular" else 0.0) if dropout is None else dropout
    edge_drop = (0.1 if regime == "regular" else 0.0) if edge_drop is None else edge_drop
    own = {k: v for k, v in settings.items() if k in fields}
    spec = NetworkSpec(regime, c, dropout=dropout, edge_drop=edge_drop, **own)
    graphs = sample_stage_graphs(regime, graph, n, seed, **graph_params)
    net = _with_init_seed(seed, lambda: RandWireNet(spec, graphs))
    return without_head(net) if features_only else net


def without_head(net: RandWireNet) -> RandWireNet:
    """``net`` without its classifier head, in place (timm's ``features_only``): ``net(x)`` then returns its
    feature maps. The head would otherwise leave parameters without gradients in DDP."""
    net.head = None
    return net


class FeatureInfo(list):
    """timm's feature description: a list of ``{"num_chs", "reduction", "module"}`` with its helpers
    (``channels()``, ``reduction()``, ``module_name()``, each of every level or of level ``idx``). Calling
    it returns itself, so code written for ``net.feature_info()`` keeps working."""

    def __call__(self) -> FeatureInfo:
        return self

    def _get(self, key: str, idx: int | None):
        return [level[key] for level in self] if idx is None else self[idx][key]

    def channels(self, idx: int | None = None):
        return self._get("num_chs", idx)

    def reduction(self, idx: int | None = None):
        return self._get("reduction", idx)

    def module_name(self, idx: int | None = None):
        return self._get("module", idx)
