"""Random graph generators ER, BA, WS and their stored, DAG-oriented form (paper §3.2-3.3).

No torch here: this module is the bottom layer. Every sampler draws only ``Generator.random()`` doubles
from a ``numpy.random.Generator`` (PCG64), whose bit stream numpy keeps stable, and never calls
networkx's samplers, so (generator, params, N, seed) gives the same edges on any machine and with any
networkx or numpy version. networkx is used for analysis and drawing only (:meth:`StageGraph.to_networkx`).
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

from .errors import ConfigError, is_int, is_number, require, require_choice
from .files import atomic_write

FORMAT_VERSION = 1
GENERATORS = ("er", "ba", "ws")
GENERATOR_PARAMS = {"er": ("p",), "ba": ("m",), "ws": ("k", "p")}

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


def validate_graph_params(model: str, n: int, params: dict[str, Any]) -> dict[str, Any]:
    """Check a generator's parameters and return them normalised (ints as int, floats as float)."""
    require_choice("graph", model, GENERATORS)
    require(is_int(n) and n >= 2, "n", n, "an integer >= 2")
    expected = set(GENERATOR_PARAMS[model])
    unknown = set(params) - expected
    if unknown:
        raise ConfigError(f"graph={model!r} takes parameters {sorted(expected)}, got unknown {sorted(unknown)}")
    missing = expected - set(params)
    if missing:
        raise ConfigError(f"graph={model!r} needs parameters {sorted(expected)}, missing {sorted(missing)}")
    out: dict[str, Any] = {}
    if "p" in expected:
        p = params["p"]
        require(is_number(p) and 0 <= p <= 1, "p", p, "a probability in [0, 1]")
        out["p"] = float(p)
    if model == "ba":
        m = params["m"]
        require(is_int(m) and 1 <= m < n, "m", m, f"an integer in [1, n) = [1, {n})")
        out["m"] = int(m)
    if model == "ws":
        k = params["k"]
        require(is_int(k) and k % 2 == 0 and 2 <= k < n, "k", k, f"an even integer in [2, n) = [2, {n})")
        out["k"] = int(k)
    return {key: out[key] for key in GENERATOR_PARAMS[model]}


# ----------------------------------------------------------------------------------------------------
# Samplers. Each returns undirected edges as (u, v) with u < v, nodes already indexed as the paper says.
# ----------------------------------------------------------------------------------------------------


def _uniform_index(rng: np.random.Generator, size: int) -> int:
    """A uniform integer in [0, size) from one stable double (Generator.integers' algorithm may change)."""
    return min(int(rng.random() * size), size - 1)


def _er_edges(n: int, p: float, rng: np.random.Generator) -> list[Edge]:
    # §3.2 ER(P): every pair independently with probability P; then indices in a random order (§3.3).
    us, vs = np.triu_indices(n, 1)
    keep = rng.random(us.size) < p
    order = np.argsort(rng.random(n), kind="stable")  # a uniformly random permutation
    label = np.empty(n, dtype=np.int64)
    label[order] = np.arange(n)
    return [(int(min(a, b)), int(max(a, b))) for a, b in zip(label[us[keep]], label[vs[keep]])]


def _ba_edges(n: int, m: int, rng: np.random.Generator) -> list[Edge]:
    # §3.2 BA(M): M initial nodes 0..M-1 with no edges; node v = M..N-1 is added with M distinct edges to
    # existing nodes chosen with probability proportional to degree. The first new node (all degrees 0)
    # joins all M initial nodes. reading: degrees are those before v is added; a repeat draw is redrawn.
    degree = np.zeros(n, dtype=np.float64)
    edges: list[Edge] = []
    for v in range(m, n):
        if v == m:
            targets = list(range(m))
        else:
            cdf = np.cumsum(degree[:v])
            chosen: set[int] = set()
            while len(chosen) < m:
                t = int(np.searchsorted(cdf, rng.random() * cdf[-1], side="right"))
                chosen.add(min(t, v - 1))
            targets = sorted(chosen)
        for t in targets:
            edges.append((t, v))
        degree[targets] += 1
        degree[v] += m
    return edges


def _ws_edges(n: int, k: int, p: float, rng: np.random.Generator) -> list[Edge]:
    # §3.2 WS(K, P): ring lattice, each node joined to its K/2 neighbours on each side, indices clockwise.
    # Then for i = 1..K/2 (outer), for v clockwise (inner): with probability P rewire edge (v, v+i) to a
    # node chosen uniformly among those that are not v and not adjacent to v.
    adj = [set() for _ in range(n)]
    for v in range(n):
        for i in range(1, k // 2 + 1):
            w = (v + i) % n
            adj[v].add(w)
            adj[w].add(v)
    for i in range(1, k // 2 + 1):
        for v in range(n):
            if rng.random() < p:
                candidates = [w for w in range(n) if w != v and w not in adj[v]]
                if not candidates:  # v is joined to every node: nothing to rewire to
                    continue
                old = (v + i) % n
                new = candidates[_uniform_index(rng, len(candidates))]
                adj[v].discard(old)
                adj[old].discard(v)
                adj[v].add(new)
                adj[new].add(v)
    return [(v, w) for v in range(n) for w in adj[v] if v < w]


_SAMPLERS = {
    "er": lambda n, prm, rng: _er_edges(n, prm["p"], rng),
    "ba": lambda n, prm, rng: _ba_edges(n, prm["m"], rng),
    "ws": lambda n, prm, rng: _ws_edges(n, prm["k"], prm["p"], rng),
}


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
        params = ", ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in self.params.values())
        return f"{self.generator.upper()}({params}) N={self.n}"


def sample_graph(model: str, n: int, seed: int, **params: Any) -> StageGraph:
    """Sample one stage graph: ``sample_graph("ws", 32, seed=0, k=4, p=0.75)``."""
    params = validate_graph_params(model, n, params)
    validate_seed(seed)
    rng = np.random.Generator(np.random.PCG64(int(seed)))
    edges = _SAMPLERS[model](int(n), params, rng)
    return StageGraph(generator=model, params=params, seed=int(seed), n=int(n), edges=tuple(edges))


def graphs_from_dicts(items: Iterable[Any], source: str = "graphs") -> list[StageGraph]:
    return [StageGraph.from_dict(d, source=f"{source}[{i}]") for i, d in enumerate(items)]
