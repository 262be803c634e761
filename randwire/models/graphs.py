"""The stored, DAG-oriented form of a stage graph (paper §3.3), and sampling one from a generator.

No torch here. The generators themselves live in :mod:`randwire.models.generators`; what any of them
returns is stored here the same way: nodes 0..n-1, edges u < v, a content hash, so a network is always
rebuilt from its stored graphs and never re-sampled.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ConfigError, is_int, require
from .files import atomic_write
from .generators import MAX_DRAWS, sample_edges, setting_label, validate_graph_params

FORMAT_VERSION = 1

Edge = tuple[int, int]


class GraphFormatError(ValueError):
    """A stored graph is tampered with, of another format version, or not a graph at all."""


# ----------------------------------------------------------------------------------------------------
# Validation: one message per bad value, naming the parameter, its value and what is allowed.
# ----------------------------------------------------------------------------------------------------


def validate_seed(seed: Any) -> int:
    """The instance seed s of g(θ, s): any integer >= 0 (0 is a seed like any other)."""
    require(is_int(seed) and seed >= 0, "seed", seed, "an integer >= 0")
    return int(seed)


def derive_stage_seed(seed: int, stage_index: int) -> int:
    """The graph seed of one random stage: each stage gets its own graph (spec §1), derived from the run
    seed and the stage index with numpy's SeedSequence (a documented, stable hash)."""
    validate_seed(seed)
    return int(np.random.SeedSequence([int(seed), int(stage_index)]).generate_state(1, np.uint64)[0] >> 1)


# ----------------------------------------------------------------------------------------------------
# The stored form.
# ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StageGraph:
    """One stage's graph as plain data: enough to rebuild the network, with no pickles and no networkx.

    Nodes are 0..n-1; edges are undirected pairs stored sorted with u < v, and oriented u -> v in the DAG,
    so index order is a topological order (paper §3.3).
    """

    generator: str
    params: dict[str, Any]
    seed: int
    n: int
    edges: tuple[Edge, ...]
    version: int = field(default=FORMAT_VERSION)

    def __post_init__(self) -> None:
        edges = tuple(sorted((int(u), int(v)) for u, v in self.edges))
        object.__setattr__(self, "edges", edges)
        for u, v in edges:
            if not (0 <= u < v < self.n):
                raise GraphFormatError(f"edge ({u}, {v}) is not a pair u < v of nodes in [0, {self.n})")
        if len(set(edges)) != len(edges):
            raise GraphFormatError("duplicate edges")

    # -- DAG view (§3.3: extra input node feeds every in-degree-0 node, output node reads out-degree-0 ones)
    def predecessors(self) -> list[list[int]]:
        preds: list[list[int]] = [[] for _ in range(self.n)]
        for u, v in self.edges:
            preds[v].append(u)
        return preds

    def successors(self) -> list[list[int]]:
        succs: list[list[int]] = [[] for _ in range(self.n)]
        for u, v in self.edges:
            succs[u].append(v)
        return succs

    @property
    def input_nodes(self) -> list[int]:
        """Nodes fed by the stage's input node (in-degree 0; an isolated node is one)."""
        return [v for v, p in enumerate(self.predecessors()) if not p]

    @property
    def output_nodes(self) -> list[int]:
        """Nodes averaged by the stage's output node (out-degree 0; an isolated node is one)."""
        return [v for v, s in enumerate(self.successors()) if not s]

    def levels(self) -> list[int]:
        """Topological level of each node: 0 for input nodes, else 1 + max level of its predecessors."""
        level = [0] * self.n
        for v, preds in enumerate(self.predecessors()):
            if preds:
                level[v] = 1 + max(level[u] for u in preds)
        return level

    def to_networkx(self):
        """The DAG as a ``networkx.DiGraph`` with the extra nodes "input" and "output"."""
        import networkx as nx

        g = nx.DiGraph()
        g.add_nodes_from(range(self.n))
        g.add_edges_from(self.edges)
        g.add_edges_from(("input", v) for v in self.input_nodes)
        g.add_edges_from((v, "output") for v in self.output_nodes)
        return g

    def is_connected(self) -> bool:
        """Whether the undirected graph is one component (a union-find over the edges, no networkx)."""
        parent = list(range(self.n))

        def root(v: int) -> int:
            while parent[v] != v:
                parent[v] = parent[parent[v]]
                v = parent[v]
            return v

        for u, v in self.edges:
            parent[root(u)] = root(v)
        return len({root(v) for v in range(self.n)}) == 1

    def to_undirected_networkx(self):
        """The sampled undirected graph (N nodes, no extra nodes), for graph statistics."""
        import networkx as nx

        g = nx.Graph()
        g.add_nodes_from(range(self.n))
        g.add_edges_from(self.edges)
        return g

    # -- serialisation
    def _content(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "generator": self.generator,
            "params": dict(self.params),
            "seed": int(self.seed),
            "n": int(self.n),
            "edges": [list(e) for e in self.edges],
        }

    @property
    def hash(self) -> str:
        """sha256 of the canonical JSON content: the graph's identity in checkpoints, metrics and W&B."""
        blob = json.dumps(self._content(), sort_keys=True, separators=(",", ":")).encode()
        return hashlib.sha256(blob).hexdigest()

    def to_dict(self) -> dict[str, Any]:
        return {**self._content(), "hash": self.hash}

    @classmethod
    def from_dict(cls, data: Any, source: str = "graph") -> StageGraph:
        """Rebuild from :meth:`to_dict` output; refuses other versions and any content whose hash differs."""
        if not isinstance(data, dict):
            raise GraphFormatError(f"{source}: not a stored stage graph (expected a JSON object)")
        version = data.get("version")
        if version != FORMAT_VERSION:
            raise GraphFormatError(
                f"{source}: stored graph format version {version!r} is not supported (this randwire reads "
                f"version {FORMAT_VERSION})"
            )
        keys = {"version", "generator", "params", "seed", "n", "edges", "hash"}
        if set(data) != keys:
            raise GraphFormatError(f"{source}: stored graph must have exactly the keys {sorted(keys)}")
        try:
            graph = cls(
                generator=data["generator"],
                params=dict(data["params"]),
                seed=int(data["seed"]),
                n=int(data["n"]),
                edges=tuple(tuple(e) for e in data["edges"]),
                version=version,
            )
        except (TypeError, ValueError) as err:
            raise GraphFormatError(f"{source}: malformed stored graph ({err})") from None
        if graph.hash != data["hash"]:
            raise GraphFormatError(
                f"{source}: content hash mismatch (stored {str(data['hash'])[:12]}…, content "
                f"{graph.hash[:12]}…): the graph was modified after it was saved"
            )
        return graph

    def save(self, path: str | os.PathLike) -> Path:
        return atomic_write(path, json.dumps(self.to_dict(), indent=1) + "\n")  # never a half-written graph file

    @classmethod
    def load(cls, path: str | os.PathLike) -> StageGraph:
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise GraphFormatError(f"{path}: no such graph file") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise GraphFormatError(f"{path}: not a JSON graph file ({err})") from None
        return cls.from_dict(data, source=str(path))

    def describe(self) -> str:
        return f"{setting_label(self.generator, self.params)} N={self.n}"


def sample_graph(model: str, n: int, seed: int, **params: Any) -> StageGraph:
    """Sample one stage graph: ``sample_graph("ws", 32, seed=0, k=4, p=0.75)``, or any function:
    ``sample_graph("networkx", 32, 0, fn="networkx.powerlaw_cluster_graph", kwargs={"m": 3, "p": 0.5})``.

    ``connected=True`` (WS-flex's default, as graph2nn) redraws until the undirected graph is connected, at
    most :data:`MAX_DRAWS` times: draw 0 uses the stage seed, draw i its :func:`derive_stage_seed`; the graph
    stores ``connected`` and ``draws`` in its params, so the retry is on record."""
    return draw_graph(model, n, validate_seed(seed), validate_graph_params(model, n, params))


def draw_graph(model: str, n: int, seed: int, params: dict[str, Any]) -> StageGraph:
    """:func:`sample_graph` on parameters :func:`validate_graph_params` already returned (checked once)."""
    if not params.get("connected"):
        edges = sample_edges(model, int(n), params, int(seed))
        return StageGraph(generator=model, params=params, seed=int(seed), n=int(n), edges=tuple(edges))
    for draw in range(MAX_DRAWS):
        edges = sample_edges(model, int(n), params, int(seed) if draw == 0 else derive_stage_seed(seed, draw))
        graph = StageGraph(model, {**params, "draws": draw + 1}, int(seed), int(n), tuple(edges))
        if graph.is_connected():
            return graph
    raise ConfigError(
        f"graph={model} with {params} gave no connected {n}-node graph in {MAX_DRAWS} draws (seed {seed}): "
        f"raise the average degree, or set graph.connected=false"
    )


def graphs_from_dicts(items: Iterable[Any], source: str = "graphs") -> list[StageGraph]:
    return [StageGraph.from_dict(d, source=f"{source}[{i}]") for i, d in enumerate(items)]
