"""``graph=networkx``: any function by import path (``networkx.powerlaw_cluster_graph``, ``mygens.ring``),
called as ``fn(n, **kwargs, seed=<stage seed>)``, and its graph turned into stored edges (no torch)."""

from __future__ import annotations

import importlib
import inspect
import os
import sys
from collections.abc import Callable
from typing import Any

import numpy as np

from .errors import BadValue, ConfigError

Edge = tuple[int, int]


def check_function_params(n: int, params: dict[str, Any]) -> dict[str, Any]:
    """graph.fn and graph.kwargs: the function imports and takes (n, **kwargs, seed=...)."""
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
    checked = {"fn": str(params["fn"]), "kwargs": kwargs}
    return {**checked, "seed_bits": 32} if _wants_32_bit_seed(fn, n, kwargs) else checked


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


def resolve_function(path: Any) -> Callable[..., Any]:
    """The function an import path names (``module.function``), looked up as Python imports, then in the
    current folder (where a user's generator file lives); one line for each way it can be wrong."""
    if not isinstance(path, str) or "." not in path.strip("."):
        raise BadValue(
            "fn", path, "an import path module.function, e.g. networkx.powerlaw_cluster_graph", "is not allowed:"
        )
    module_name, name = path.rsplit(".", 1)
    try:
        module = import_user_module(module_name)
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


def import_user_module(module_name: str):
    """A module by name, looked up as Python imports, then in the current folder (a user's file beside the
    command: train.py's own folder is first on sys.path, the working folder may not be)."""
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


def _wants_32_bit_seed(fn: Callable[..., Any], n: int, kwargs: dict[str, Any]) -> bool:
    """Whether ``fn`` refuses a 63-bit seed the way numpy's legacy RandomState does (which some networkx
    functions seed: ``maybe_regular_expander_graph``). Probed once, at the check, with a seed above 2**32."""
    if "seed" not in inspect.signature(fn).parameters:
        return False
    try:
        fn(n, **kwargs, seed=2**40 + 1)
    except ValueError as err:
        return "2**32" in str(err)
    except Exception:  # its own failure is reported, with its parameters, when the graphs are sampled
        return False
    return False


def function_edges(fn_path: str, kwargs: dict[str, Any], n: int, seed: int, seed_bits: int | None = None) -> list[Edge]:
    """Call the generator and turn its graph into stored edges (u < v in a topological order).

    reading: a function that takes seeds below 2**32 only (``seed_bits: 32`` in the graph's params, decided
    by :func:`check_function_params` and stored with each graph) gets the stage seed's lower 32 bits."""
    fn = resolve_function(fn_path)
    if seed_bits == 32:
        seed = int(seed) & 0xFFFFFFFF
    try:
        graph = fn(n, **kwargs, **_seed_argument(fn, seed))
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
