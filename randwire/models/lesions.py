"""Graph damage (paper Fig. 5): remove one node, or one edge, of a trained network's random stage and
measure the change of test accuracy — for every node and every edge of every stage.

The network is rebuilt from the graphs stored in its checkpoint (never re-sampled) and run in eval mode
with its trained weights and BN statistics (reading: no BN re-calibration after the damage, the paper
evaluates the damaged network as it is). What "remove" means (reading, the paper gives one sentence):

- **node** ``v``: ``v`` and its edges are gone. A successor keeps its other inputs with their learned weights
  (not re-normalised, as with edge removal in training); a successor whose only input was ``v`` has no input
  left and is gone too, and so on down the DAG. The stage's output averages the output nodes that are left.
- **edge** ``u -> v``: ``v``'s weighted sum loses ``u``'s term; if it was ``v``'s only input, ``v`` is gone
  (as above).
- If no output node is left, the stage has **no path from its input to its output**: that damage is
  reported as ``no_path`` with no accuracy, not evaluated.

The x axes of Fig. 5: a node's out-degree in the stage DAG (reading: the edge to the extra output node is
not counted, so output nodes have out-degree 0), an edge's target in-degree.

Cost: the data is read once; for each batch the undamaged stem and stages run once, and each damage of stage
``s`` runs only stage ``s`` (damaged: ``RandomStage.forward_reference(x, damaged)``) and what follows it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from .graphs import StageGraph
from .metrics import topk_correct


@dataclass(frozen=True)
class Damage:
    """One damaged instance: ``kind`` is ``none`` (the intact network), ``node`` or ``edge``."""

    stage: int
    kind: str = "none"
    node: int | None = None
    edge: tuple[int, int] | None = None

    def degree(self, graph: StageGraph) -> int | None:
        """Fig. 5's x value: the removed node's out-degree, or the removed edge's target in-degree."""
        if self.kind == "node":
            return len(graph.successors()[self.node])
        if self.kind == "edge":
            return len(graph.predecessors()[self.edge[1]])
        return None


@dataclass(frozen=True)
class DamagedStage:
    """What is left of a stage after a damage: live nodes, each live node's kept in-edges (indices into its
    predecessor list) and the output nodes still averaged. ``outputs`` empty: no input-output path."""

    alive: tuple[bool, ...]
    kept: tuple[tuple[int, ...], ...]
    outputs: tuple[int, ...]

    @property
    def has_path(self) -> bool:
        return bool(self.outputs)


def damage_stage(graph: StageGraph, damage: Damage) -> DamagedStage:
    """Apply one damage to a stage graph (pure graph logic, no torch)."""
    if damage.kind not in ("none", "node", "edge"):
        raise ValueError(f"damage kind {damage.kind!r} is not one of none, node, edge")
    if damage.kind == "node" and not (damage.node is not None and 0 <= damage.node < graph.n):
        raise ValueError(f"node {damage.node!r} is not a node of this {graph.n}-node stage")
    if damage.kind == "edge" and tuple(damage.edge or ()) not in set(graph.edges):
        raise ValueError(f"edge {damage.edge!r} is not an edge of this stage")
    preds = graph.predecessors()
    alive = [True] * graph.n
    kept: list[tuple[int, ...]] = []
    for v in range(graph.n):  # index order is a topological order
        if damage.kind == "node" and v == damage.node:
            alive[v] = False
        keep = tuple(
            i
            for i, u in enumerate(preds[v])
            if alive[u] and not (damage.kind == "edge" and (u, v) == tuple(damage.edge))
        )
        if preds[v] and not keep:  # every input removed: nothing reaches this node any more
            alive[v] = False
        kept.append(keep if alive[v] else ())
    outputs = tuple(v for v in graph.output_nodes if alive[v])
    return DamagedStage(tuple(alive), tuple(kept), outputs)


def all_damages(graphs: Sequence[StageGraph]) -> list[Damage]:
    """Every single-node and single-edge damage of every stage, in a fixed order."""
    out: list[Damage] = []
    for s, graph in enumerate(graphs):
        out += [Damage(s, "node", node=v) for v in range(graph.n)]
        out += [Damage(s, "edge", edge=e) for e in graph.edges]
    return out


def evaluate_damages(
    net, loader: Iterable, damages: Sequence[Damage], progress=None, device: torch.device | str = "cpu"
) -> dict[Damage, dict[str, Any]]:
    """Top-1 of the intact network and of each damaged one over ``loader`` (one pass over the data), on
    ``device`` (the network is moved there).

    Returns, per damage (plus ``Damage(0)`` for the intact network): ``acc1`` (None where the damage leaves
    no path), ``correct``, ``samples`` and ``has_path``.
    """
    intact = Damage(0)
    plans = {d: damage_stage(net.graphs[d.stage], d) for d in damages}
    evaluated = [d for d in damages if plans[d].has_path]
    correct = {d: 0 for d in [intact, *evaluated]}
    samples = 0
    net.to(device).eval()
    with torch.no_grad():
        for x, y in loader:
            x, y = x.to(device), y.to(device)
            h = net.stem(x)
            stage_inputs = []
            for stage in net.stages:
                stage_inputs.append(h)
                h = stage.forward_reference(h)
            correct[intact] += topk_correct(net.head(h), y, ks=(1,))[0]
            for d in evaluated:
                h = net.stages[d.stage].forward_reference(stage_inputs[d.stage], plans[d])
                for stage in net.stages[d.stage + 1 :]:
                    h = stage.forward_reference(h)
                correct[d] += topk_correct(net.head(h), y, ks=(1,))[0]
                if progress is not None:
                    progress(len(y))
            samples += len(y)
    result = {
        d: {"acc1": correct[d] / samples, "correct": correct[d], "samples": samples, "has_path": True} for d in correct
    }
    result.update(
        {
            d: {"acc1": None, "correct": None, "samples": samples, "has_path": False}
            for d in damages
            if not plans[d].has_path
        }
    )
    return result
