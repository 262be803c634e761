"""Graph generators: a name or a function, its parameters and a seed → one stage's graph (paper §3.2).

A generator is a callable ``(n, seed, **params)`` returning a networkx graph on the nodes 0..n-1, either
undirected (oriented by node index, §3.3, as ER/BA/WS) or directed and acyclic (kept as it is, its nodes
renumbered in a topological order). The project then stores, hashes and builds it like any other graph.

- ``er``, ``ba``, ``ws`` (the paper's) and ``ws_flex`` (You et al. 2020: WS with a real average degree)
  are built in: they draw only ``Generator.random()`` doubles from a PCG64 stream, whose bit stream numpy
  keeps stable, so (generator, params, N, seed) gives the same edges on any machine and version;
- ``networkx``: any function by import path (``networkx.powerlaw_cluster_graph``, ``mygens.ring``) with
  its keyword arguments; its randomness is the stage seed, passed as ``seed=`` (or ``rng=``, a numpy
  Generator). Its graphs are stored with the run, so a run never depends on the function again;
- ``file``: hand-made graphs, one per stage or one for all (this project's JSON, or an edge list).
"""

from __future__ import annotations

import importlib
import inspect
import os
import sys
from collections.abc import Callable
from typing import Any

import numpy as np

from .errors import BadValue, ConfigError, is_int, is_number, require, require_choice

Edge = tuple[int, int]
BUILTIN = ("er", "ba", "ws", "ws_flex")
GENERATORS = ("er", "ba", "ws", "ws_flex", "networkx", "file")  # the order of tables and plots
GENERATOR_PARAMS = {
    "er": ("p",),
    "ba": ("m",),
    "ws": ("k", "p"),
    "ws_flex": ("k", "p"),
    "networkx": ("fn", "kwargs"),
    "file": ("paths",),
}


def validate_graph_params(model: str, n: int | None, params: dict[str, Any]) -> dict[str, Any]:
    """Check a generator's parameters (one line naming the bad one) and return them normalised."""
    require_choice("graph", model, GENERATORS)
    expected = set(GENERATOR_PARAMS[model])
    unknown = set(params) - expected
    if unknown:
        raise ConfigError(f"graph={model!r} takes parameters {sorted(expected)}, got unknown {sorted(unknown)}")
    missing = expected - set(params) - ({"kwargs"} if model == "networkx" else set())
    if missing:
        raise ConfigError(f"graph={model!r} needs parameters {sorted(expected)}, missing {sorted(missing)}")
    if model == "file":
        paths = params["paths"]
        ok = isinstance(paths, (list, tuple)) and paths and all(isinstance(p, str) and p for p in paths)
        require(ok, "paths", paths, "a list of graph files: [a.json] for every stage, or one per random stage")
        return {"paths": [str(p) for p in paths]}
    require(is_int(n) and n >= 2, "n", n, "an integer >= 2")
    if model == "networkx":
        kwargs = dict(params.get("kwargs") or {})
        fn = resolve_function(params["fn"])
        try:
            inspect.signature(fn).bind(n, **kwargs, **_seed_argument(fn, 0))
        except TypeError as err:
            raise BadValue(
                "kwargs",
                kwargs,
                f"the arguments of {params['fn']} ({err}){_first_parameter_hint(fn)}",
                "is not allowed:",
            ) from None
        return {"fn": str(params["fn"]), "kwargs": kwargs}
    return _builtin_params(model, n, params)


def _first_parameter_hint(fn: Callable[..., Any]) -> str:
    """Where a function's first parameter is not the node count (``random_regular_graph(d, n)``), the
    wrapper that fixes the order."""
    parameters = inspect.signature(fn).parameters
    names = list(parameters)
    if not names or names[0] == "n":
        return ""
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    required = [
        k
        for k, p in parameters.items()
        if p.kind in positional and p.default is inspect.Parameter.empty and k != "seed"
    ]
    own = [k for k in required if k != "n"]
    seeded = "seed" in parameters
    wrapper = ", ".join(["n", *own, *(["seed=None"] if seeded else [])])
    call = ", ".join([*required, *(["seed=seed"] if seeded else [])])
    where = "" if "n" in required else f" (its node count is one of {required})"
    return (
        f"; graph=networkx passes the node count as the first argument, and its first parameter is "
        f"{names[0]!r}{where}: put def f({wrapper}): return {fn.__module__.split('.')[0]}.{fn.__name__}({call}) "
        f"in a module of yours and give graph.fn=<module>.f"
    )


def _builtin_params(model: str, n: int, params: dict[str, Any]) -> dict[str, Any]:
    """ER/BA/WS/WS-flex parameters, normalised (ints as int, floats as float)."""
    out: dict[str, Any] = {}
    if "p" in GENERATOR_PARAMS[model]:
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
    if model == "ws_flex":
        k = params["k"]
        require(is_number(k) and 2 <= k <= n - 1, "k", k, f"an average degree in [2, n - 1] = [2, {n - 1}]")
        out["k"] = float(k)
    return {key: out[key] for key in GENERATOR_PARAMS[model]}


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
                _rewire(adj, v, (v + i) % n, rng)
    return [(v, w) for v in range(n) for w in adj[v] if v < w]


def _rewire(adj: list[set[int]], v: int, old: int, rng: np.random.Generator) -> None:
    """Edge (v, old) moved to (v, new), ``new`` uniform among the nodes that are not v and not adjacent to v;
    kept where v is joined to every node (nothing to rewire to)."""
    candidates = [u for u in range(len(adj)) if u != v and u not in adj[v]]
    if not candidates:
        return
    new = candidates[_uniform_index(rng, len(candidates))]
    adj[v].discard(old)
    adj[old].discard(v)
    adj[v].add(new)
    adj[new].add(v)


def _ws_flex_edges(n: int, k: float, p: float, rng: np.random.Generator) -> list[Edge]:
    # WS-flex (You, Leskovec, He, Xie 2020, §4): WS with a real average degree K. reading: round(N·K/2) edges
    # are dealt to the nodes in turn (the first ones get one more), node v joins the next count[v] nodes
    # clockwise; then each dealt edge (v, w), v in order, is rewired with probability P to a node chosen
    # uniformly among those not v and not adjacent to v (as WS here). K = 4 deals WS(4, P)'s ring lattice;
    # the rewiring visits the edges node by node (WS: ring distance by ring distance), so P > 0 differs.
    m = int(round(n * k / 2))
    count = [m // n + (1 if v < m % n else 0) for v in range(n)]
    adj: list[set[int]] = [set() for _ in range(n)]
    dealt = [(v, (v + i) % n) for v in range(n) for i in range(1, count[v] + 1)]
    for v, w in dealt:
        adj[v].add(w)
        adj[w].add(v)
    for v, w in dealt:
        if rng.random() < p and w in adj[v]:
            _rewire(adj, v, w, rng)
    return [(v, w) for v in range(n) for w in adj[v] if v < w]


_SAMPLERS = {
    "er": lambda n, prm, rng: _er_edges(n, prm["p"], rng),
    "ba": lambda n, prm, rng: _ba_edges(n, prm["m"], rng),
    "ws": lambda n, prm, rng: _ws_edges(n, prm["k"], prm["p"], rng),
    "ws_flex": lambda n, prm, rng: _ws_flex_edges(n, prm["k"], prm["p"], rng),
}


def sample_edges(model: str, n: int, params: dict[str, Any], seed: int) -> list[Edge]:
    """One sampled graph's edges (u < v); ``params`` as :func:`validate_graph_params` returned them."""
    if model == "networkx":
        return function_edges(params["fn"], params["kwargs"], n, seed)
    if model not in BUILTIN:
        raise ConfigError(f"graph={model!r} is not sampled: its graphs are read (sample_stage_graphs)")
    return _SAMPLERS[model](n, params, np.random.Generator(np.random.PCG64(int(seed))))


def setting_label(model: str, params: dict[str, Any]) -> str:
    """A generator setting as the tables and plots name it: ER(0.2), BA(5), WS(4, 0.75), WS-flex(3.5, 0.2),
    powerlaw_cluster_graph(m=3, p=0.5), file:<name>."""

    def value(v: Any) -> str:
        return f"{v:g}" if isinstance(v, float) else str(v)

    if model == "networkx":
        kwargs = ", ".join(f"{k}={value(v)}" for k, v in sorted((params.get("kwargs") or {}).items()))
        return f"{str(params.get('fn')).rsplit('.', 1)[-1]}({kwargs})"
    if model == "file":
        return f"file:{params.get('file')}"
    return f"{generator_title(model)}({', '.join(value(v) for v in params.values())})"


def generator_title(model: str) -> str:
    """ER, BA, WS, WS-flex, networkx, file: a generator's name in titles and legends."""
    return {"ws_flex": "WS-flex", "networkx": "networkx", "file": "file"}.get(model, model.upper())


# ----------------------------------------------------------------------------------------------------
# Any function (graph=networkx) and its result.
# ----------------------------------------------------------------------------------------------------


def resolve_function(path: Any) -> Callable[..., Any]:
    """The function an import path names (``module.function``), looked up as Python imports, then in the
    current folder (where a user's generator file lives); one line for each way it can be wrong."""
    if not isinstance(path, str) or "." not in path.strip("."):
        raise BadValue(
            "fn", path, "an import path module.function, e.g. networkx.powerlaw_cluster_graph", "is not allowed:"
        )
    module_name, name = path.rsplit(".", 1)
    try:
        module = _import(module_name)
    except Exception as err:  # ModuleNotFoundError, or the module's own error while importing
        raise BadValue(
            "fn", path, f"importable: {type(err).__name__}: {err} (looked on sys.path and in {os.getcwd()})", "is not"
        ) from None
    fn = getattr(module, name, None)
    if fn is None:
        raise BadValue("fn", path, f"a name in {module_name} (it has no {name!r})", "is not")
    if not callable(fn):
        raise BadValue("fn", path, f"callable (it is a {type(fn).__name__})", "is not")
    return fn


def _import(module_name: str):
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError:
        if os.getcwd() in sys.path:
            raise
        sys.path.append(os.getcwd())  # a generator file beside the user's command (train.py's folder is first)
        return importlib.import_module(module_name)


def _seed_argument(fn: Callable[..., Any], seed: int) -> dict[str, Any]:
    """How ``fn`` takes its randomness: ``seed=`` (networkx's convention), ``rng=`` (a numpy Generator), or
    not at all (a deterministic function: every instance is then the same graph)."""
    parameters = inspect.signature(fn).parameters
    if "seed" in parameters:
        return {"seed": int(seed)}
    if "rng" in parameters:
        return {"rng": np.random.Generator(np.random.PCG64(int(seed)))}
    return {}


def _wants_32_bit_seed(err: ValueError, fn: Callable[..., Any]) -> bool:
    return "seed" in inspect.signature(fn).parameters and "2**32" in str(err)


def function_edges(fn_path: str, kwargs: dict[str, Any], n: int, seed: int) -> list[Edge]:
    """Call the generator and turn its graph into stored edges (u < v in a topological order)."""
    fn = resolve_function(fn_path)
    try:
        try:
            graph = fn(n, **kwargs, **_seed_argument(fn, seed))
        except ValueError as err:
            if not _wants_32_bit_seed(err, fn):
                raise
            # reading: numpy's legacy RandomState (which some networkx functions seed) takes seeds below 2**32;
            # such a function gets the stage seed's lower 32 bits, a function of the stored stage seed
            graph = fn(n, **kwargs, seed=int(seed) & 0xFFFFFFFF)
    except Exception as err:  # a wrong type or value of one of its own parameters
        raise ConfigError(f"graph.fn={fn_path} failed for n={n} with {kwargs}: {type(err).__name__}: {err}") from None
    return edges_of(graph, n, f"graph.fn={fn_path}")


def edges_of(graph: Any, n: int, who: str) -> list[Edge]:
    """A generator's graph as stored edges: nodes exactly 0..n-1, no self loops, no parallel edges, and a
    directed graph acyclic (renumbered in its lexicographic topological order); else one line."""
    import networkx as nx

    if not isinstance(graph, nx.Graph):
        raise ConfigError(f"{who} gives a {type(graph).__name__}, not a networkx graph")
    nodes = sorted(graph.nodes, key=str)
    if graph.number_of_nodes() != n:
        raise ConfigError(f"{who} gives {graph.number_of_nodes()} nodes for n={n}: a stage graph has exactly n")
    if set(graph.nodes) != set(range(n)):
        shown = ", ".join(repr(v) for v in nodes[:4])
        raise ConfigError(f"{who} labels its nodes {shown}, ...: they must be the integers 0..{n - 1}")
    loops = list(nx.selfloop_edges(graph))
    if loops:
        raise ConfigError(f"{who} gives self loops (e.g. {loops[0]}): a node cannot feed itself")
    if graph.is_multigraph() and graph.number_of_edges() != nx.Graph(graph).number_of_edges():
        raise ConfigError(f"{who} gives parallel edges (a multigraph): one edge per pair of nodes")
    if not graph.is_directed():
        return sorted({(min(u, v), max(u, v)) for u, v in graph.edges()})
    if not nx.is_directed_acyclic_graph(graph):
        cycle = nx.find_cycle(nx.DiGraph(graph))
        raise ConfigError(
            f"{who} gives a directed graph with a cycle ({' -> '.join(str(u) for u, _ in cycle)} -> "
            f"{cycle[0][0]}): a network's graph must be acyclic (or undirected)"
        )
    rank = {v: i for i, v in enumerate(nx.lexicographical_topological_sort(graph))}
    return sorted({(rank[u], rank[v]) for u, v in graph.edges()})


def seed_is_ignored(fn_path: str, kwargs: dict[str, Any], n: int) -> bool:
    """True where two seeds give the same graph: the instances of a sweep over seeds would all be one network."""
    return function_edges(fn_path, kwargs, n, 0) == function_edges(fn_path, kwargs, n, 1)
