"""Hand-made graphs (``graph=file``): this project's stored JSON, or an edge list of ``u v`` lines, read and
checked as a generator's graph is (no torch)."""

from __future__ import annotations

from pathlib import Path

from .errors import ConfigError
from .function_graphs import Edge, edges_of


def _node_count(path: str, edges: list[Edge]) -> int:
    """The node count of an edge list without ``# n:``: one more than its largest node, every node in an
    edge; an empty list, or a node number no edge names (a gap, or numbering from 1), is one line: isolated
    nodes are said with ``# n: N``, never made up."""
    if not edges:
        raise ConfigError(
            f"graph.paths: {path}: no edges and no '# n: N' line (an edge list has 'u v' lines of node numbers "
            f"0..n-1; '# n: N' gives N nodes, isolated ones included)"
        )
    n = 1 + max(max(e) for e in edges)
    unnamed = sorted(set(range(n)) - {v for e in edges for v in e})
    if unnamed:
        hint = " (numbered from 1? nodes are 0..n-1)" if unnamed == [0] else ""
        raise ConfigError(
            f"graph.paths: {path}: node {unnamed[0]} of 0..{n - 1} is in no edge{hint}: number the nodes "
            f"0..n-1, or keep isolated nodes with a '# n: {n}' line"
        )
    return n


def read_graph_file(path: str) -> tuple[int, list[Edge]]:
    """(n, edges) of a graph file: this project's stored JSON (hash checked), or an edge list of ``u v`` lines
    (``#`` comments; ``# n: 12`` sets a node count with isolated nodes after the last one named; ``# directed``
    keeps each edge's direction, else edges are oriented by node number as ER/BA/WS)."""
    from .graphs import GraphFormatError, StageGraph

    file = Path(path)
    if not file.is_file():
        raise ConfigError(f"graph.paths: {path!r} is not a file")
    if file.suffix == ".json":
        try:
            stored = StageGraph.load(file)
        except GraphFormatError as err:
            raise ConfigError(f"graph.paths: {err}") from None
        return stored.n, list(stored.edges)
    n, edges, directed = None, [], False
    for number, line in enumerate(file.read_text().splitlines(), 1):
        text, comment = (line.split("#", 1) + [""])[:2]
        if comment.strip().startswith("n:"):
            value = comment.split(":", 1)[1].strip()
            if not value.isdigit() or int(value) < 1:
                raise ConfigError(f"graph.paths: {path}:{number}: '# n: {value}' is not a node count (an integer >= 1)")
            n = int(value)
        directed = directed or comment.strip() == "directed"
        parts = text.replace(",", " ").split()
        if not parts:
            continue
        if len(parts) != 2 or not all(p.isdigit() for p in parts):
            raise ConfigError(
                f"graph.paths: {path}:{number}: {line.strip()!r} is not an edge 'u v' of two node numbers"
            )
        edges.append((int(parts[0]), int(parts[1])))
    if n is None:
        n = _node_count(path, edges)
    import networkx as nx

    graph = nx.MultiDiGraph() if directed else nx.MultiGraph()  # multi: a repeated line is named, not merged
    graph.add_nodes_from(range(n))
    graph.add_edges_from(edges)
    return n, edges_of(graph, n, f"graph.paths: {path}")


def file_set_name(graphs: list) -> str:
    """A ``graph=file`` setting by its content: the files' names and a hash of their distinct graphs, in
    order (``a.json+b.json#19cb56c6``), so two settings with the same file names but other graphs are two
    settings in every table and plot."""
    import hashlib

    distinct = list(dict.fromkeys((g.params.get("file"), g.hash) for g in graphs))
    digest = hashlib.sha256("+".join(h for _, h in distinct).encode()).hexdigest()[:8]
    return f"{'+'.join(dict.fromkeys(str(name) for name, _ in distinct))}#{digest}"


def file_set_name_of_paths(paths: list[str]) -> str:
    """:func:`file_set_name` of the files a config names (a job that failed before storing its graphs); the
    names alone where a file cannot be read any more."""
    from pathlib import Path

    from .graphs import StageGraph

    try:
        graphs = [StageGraph("file", {"file": Path(p).name}, 0, *read_graph_file(p)) for p in paths]
    except (ConfigError, OSError, ValueError):
        return "+".join(dict.fromkeys(Path(p).name for p in paths))
    return file_set_name(graphs)
