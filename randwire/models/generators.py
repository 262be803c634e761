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

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np

from .errors import BadValue, ConfigError, is_int, is_number, require
from .function_graphs import Edge, check_function_params, function_edges, import_user_module
from .registry import Registry
from .samplers import ba_edges, er_edges, ws_edges, ws_flex_edges

Params = dict[str, Any]
MAX_DRAWS = 100  # graph.connected: draws before the build stops (graph2nn's connected_ws_graph, tries=100)


@dataclasses.dataclass(frozen=True)
class Generator:
    """Everything the framework knows of one graph generator, in one record; ``graph=<name>`` looks it up.

    - ``title``: its name in tables and legends (``WS-flex``); ``params``: its parameters besides n, in the
      order setting names show them (``WS(4, 0.75)``); ``optional``: those that may be left out;
    - ``check(n, params)``: the parameters normalised (ints as int, ...), a :class:`BadValue` per bad one;
    - ``sample(n, params, seed)``: edges (u, v) on the nodes 0..n-1 (undirected, oriented by index, §3.3);
      draw from :func:`stage_rng` (``seed`` is the stage's, derived from the run seed) for graphs that are
      the same on every machine; ``None``: graphs that are read, not sampled (``file``);
    - ``stage_check(size, params)``: the parameters against the smallest stage (the regular regime's conv2
      stage has n/2 nodes);
    - ``axes``: the grid plot's x parameter, then the one drawn as a line per value (empty: a point per
      setting); ``x_range``: that axis' limits (the paper's); ``connected``: ``graph.connected``'s default
      for the Python API (the YAML names the same value).
    """

    name: str
    title: str
    params: tuple[str, ...]
    check: Callable[[int, Params], Params]
    sample: Callable[[int, Params, int], list[Edge]] | None = None
    stage_check: Callable[[int, Params], None] | None = None
    optional: tuple[str, ...] = ()
    axes: tuple[str, ...] = ()
    x_range: tuple[float, float] | None = None
    connected: bool = False


REGISTRY: Registry[Generator] = Registry("graph", Generator, ("er", "ba", "ws", "ws_flex", "networkx", "file"))
BUILTIN = REGISTRY.builtin


def register_generator(gen: Generator) -> Generator:
    """Make ``graph=<gen.name>`` known (a module of yours calls this when imported; its YAML names the module
    as ``_module_``). A built-in name cannot be taken; registering a name again replaces the entry."""
    return REGISTRY.register(gen)


def generator(name: Any) -> Generator:
    """The registered generator ``graph=<name>`` names; one line listing the known names otherwise."""
    return REGISTRY[name]


def find_generator(name: Any) -> Generator | None:
    """The registered generator of that name, or None (an analysis reading runs of one not imported here)."""
    return REGISTRY.find(name)


def generator_names() -> tuple[str, ...]:
    """The registered generators, in the order of tables and plots (the paper's first, then registration)."""
    return REGISTRY.names()


def stage_rng(seed: int) -> np.random.Generator:
    """The random stream of one stage graph: PCG64, whose bit stream numpy keeps stable. Draw only
    ``.random()`` doubles from it (``integers``' algorithm may change between numpy versions)."""
    return np.random.Generator(np.random.PCG64(int(seed)))


def import_extension(module: Any, key: str) -> None:
    """Import the module a config names as ``<group>._module_`` (it registers its generator or node op)."""
    if module is None:
        return
    try:
        import_user_module(str(module))
    except Exception as err:  # ModuleNotFoundError, or the module's own error while importing
        raise BadValue(
            key,
            module,
            f"importable: {type(err).__name__}: {err} (run from the folder it is in, or put that on PYTHONPATH)",
            "is not",
        ) from None


def validate_graph_params(model: str, n: int | None, params: Params) -> Params:
    """Check a generator's parameters (one line naming the bad one) and return them normalised;
    ``connected`` (redraw until connected) is every sampled generator's, kept only where true."""
    gen = generator(model)
    params = dict(params)
    connected = params.pop("connected", None)
    expected = set(gen.params)
    unknown = set(params) - expected
    if unknown:
        raise ConfigError(f"graph={model!r} takes parameters {sorted(expected)}, got unknown {sorted(unknown)}")
    missing = expected - set(params) - set(gen.optional)
    if missing:
        raise ConfigError(f"graph={model!r} needs parameters {sorted(expected)}, missing {sorted(missing)}")
    if gen.sample is None:
        require(connected in (None, False), "connected", connected, "false: graph={model} reads its graphs")
        return gen.check(n, params)  # type: ignore[arg-type]
    require(is_int(n) and n >= 2, "n", n, "an integer >= 2")
    connected = gen.connected if connected is None else connected
    require(isinstance(connected, bool), "connected", connected, "true or false")
    return {**gen.check(n, params), **({"connected": True} if connected else {})}


def sample_edges(model: str, n: int, params: Params, seed: int) -> list[Edge]:
    """One draw's edges (u < v); ``params`` as :func:`validate_graph_params` returned them."""
    gen = generator(model)
    if gen.sample is None:
        raise ConfigError(f"graph={model!r} is not sampled: its graphs are read (sample_stage_graphs)")
    own = {k: v for k, v in params.items() if k not in ("connected", "draws")}
    return gen.sample(n, own, seed)


def setting_label(model: str, params: Params) -> str:
    """A generator setting as the tables and plots name it: ER(0.2), BA(5), WS(4, 0.75), WS-flex(3.5, 0.2),
    powerlaw_cluster_graph(m=3, p=0.5), file:<name>, and a generator this process has not imported by its
    name and parameters: mygen(q=0.3)."""

    def value(v: Any) -> str:
        return f"{v:g}" if isinstance(v, float) else str(v)

    if model == "networkx":
        kwargs = ", ".join(f"{k}={value(v)}" for k, v in sorted((params.get("kwargs") or {}).items()))
        return f"{str(params.get('fn')).rsplit('.', 1)[-1]}({kwargs})"
    if model == "file":
        return f"file:{params.get('file')}"
    gen = REGISTRY.find(model)
    if gen is None:
        shown = {k: v for k, v in params.items() if k not in ("connected", "draws", "n")}
        return f"{model}({', '.join(f'{k}={value(v)}' for k, v in sorted(shown.items()))})"
    return f"{gen.title}({', '.join(value(params[k]) for k in gen.params if k in params)})"


def generator_title(model: str) -> str:
    """ER, BA, WS, WS-flex, networkx, file: a generator's name in titles and legends."""
    gen = REGISTRY.find(model)
    return gen.title if gen else str(model)


# ----------------------------------------------------------------------------------------------------
# The built-in generators: the paper's ER, BA, WS (§3.2), WS-flex, any function, hand-made files.
# ----------------------------------------------------------------------------------------------------


def _check_p(p: Any) -> float:
    require(is_number(p) and 0 <= p <= 1, "p", p, "a probability in [0, 1]")
    return float(p)


def _check_er(n: int, params: Params) -> Params:
    return {"p": _check_p(params["p"])}


def _check_ba(n: int, params: Params) -> Params:
    m = params["m"]
    require(is_int(m) and 1 <= m < n, "m", m, f"an integer in [1, n) = [1, {n})")
    return {"m": int(m)}


def _check_ws(n: int, params: Params) -> Params:
    k = params["k"]
    require(is_int(k) and k % 2 == 0 and 2 <= k < n, "k", k, f"an even integer in [2, n) = [2, {n})")
    return {"k": int(k), "p": _check_p(params["p"])}


def _check_ws_flex(n: int, params: Params) -> Params:
    k = params["k"]
    require(is_number(k) and 2 <= k <= n - 1, "k", k, f"an average degree in [2, n - 1] = [2, {n - 1}]")
    return {"k": float(k), "p": _check_p(params["p"])}


def _stage_ba(size: int, params: Params) -> None:
    if params["m"] >= size:
        raise BadValue("m", params["m"], f"[1, {size}) for the {size}-node stage")


def _stage_ws(size: int, params: Params) -> None:
    if params["k"] >= size:
        raise BadValue("k", params["k"], f"an even integer in [2, {size}) for the {size}-node stage")


def _stage_ws_flex(size: int, params: Params) -> None:
    if params["k"] > size - 1:
        raise BadValue("k", params["k"], f"an average degree in [2, {size - 1}] for the {size}-node stage")


def _check_files(n: int | None, params: Params) -> Params:
    paths = params["paths"]
    ok = isinstance(paths, (list, tuple)) and paths and all(isinstance(p, str) and p for p in paths)
    require(ok, "paths", paths, "a list of graph files: [a.json] for every stage, or one per random stage")
    return {"paths": [str(p) for p in paths]}


def _check_function(n: int, params: Params) -> Params:
    return check_function_params(n, params)


for _gen in (
    Generator(
        "er",
        "ER",
        ("p",),
        _check_er,
        lambda n, prm, s: er_edges(n, prm["p"], stage_rng(s)),
        axes=("p",),
        x_range=(0.05, 0.85),
    ),
    Generator(
        "ba",
        "BA",
        ("m",),
        _check_ba,
        lambda n, prm, s: ba_edges(n, prm["m"], stage_rng(s)),
        _stage_ba,
        axes=("m",),
        x_range=(0.5, 7.5),
    ),
    Generator(
        "ws",
        "WS",
        ("k", "p"),
        _check_ws,
        lambda n, prm, s: ws_edges(n, prm["k"], prm["p"], stage_rng(s)),
        _stage_ws,
        axes=("p", "k"),
        x_range=(-0.05, 1.05),
    ),
    Generator(
        "ws_flex",
        "WS-flex",
        ("k", "p"),
        _check_ws_flex,
        lambda n, prm, s: ws_flex_edges(n, prm["k"], prm["p"], stage_rng(s)),
        _stage_ws_flex,
        axes=("p", "k"),
        x_range=(-0.05, 1.05),
        connected=True,
    ),  # graph2nn draws until connected
    Generator(
        "networkx",
        "networkx",
        ("fn", "kwargs"),
        _check_function,
        lambda n, prm, s: function_edges(prm["fn"], prm["kwargs"], n, s, prm.get("seed_bits")),
        optional=("kwargs",),
    ),
    Generator("file", "file", ("paths",), _check_files),
):
    REGISTRY.register(_gen, builtin=True)
