"""Pictures of stage DAGs as the paper draws them (Fig. 1): input node at the bottom, output at the top."""

from __future__ import annotations

from pathlib import Path

from .graphs import StageGraph


def dag_layout(graph: StageGraph) -> dict:
    """Node positions: y = topological level (input node below all, output node above all), x spread
    evenly within a level, ordered by index so edges cross as little as a simple layout allows."""
    levels = graph.levels()
    top = max(levels, default=0)
    by_level: dict[int, list[int]] = {}
    for v, lv in enumerate(levels):
        by_level.setdefault(lv, []).append(v)
    pos: dict = {"input": (0.0, -1.0), "output": (0.0, top + 1.0)}
    for lv, nodes in by_level.items():
        width = len(nodes)
        for i, v in enumerate(nodes):
            pos[v] = (i - (width - 1) / 2, float(lv))
    return pos


def count(n: int, noun: str) -> str:
    """``1 instance``, ``2 instances``: a number and its noun in the titles."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


def pyplot():
    """matplotlib.pyplot on the file-only Agg backend (no display on a cluster node)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: str | Path, dpi: int = 90) -> Path:
    """Write a figure as PNG (its folder made) and free it: pyplot keeps every open figure alive."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    pyplot().close(fig)
    return path


def draw_stage(graph: StageGraph, path: str | Path, title: str | None = None) -> Path:
    """Write a PNG of one stage's DAG; returns the path."""
    import networkx as nx

    plt = pyplot()

    dag = graph.to_networkx()
    pos = dag_layout(graph)
    width = max(len([v for v in pos if pos[v][1] == y]) for y in {p[1] for p in pos.values()})
    fig, ax = plt.subplots(figsize=(max(4.0, 0.45 * width + 2), max(4.0, 0.5 * len(set(graph.levels())) + 3)))
    colors = ["#d62728" if v in ("input", "output") else "#1f77b4" for v in dag.nodes]
    nx.draw_networkx_edges(
        dag, pos, ax=ax, arrows=True, arrowsize=6, width=0.6, alpha=0.5, node_size=60, connectionstyle="arc3,rad=0.08"
    )
    nx.draw_networkx_nodes(dag, pos, ax=ax, node_size=60, node_color=colors)
    if graph.n <= 40:
        nx.draw_networkx_labels(
            dag, pos, ax=ax, labels={v: str(v) for v in range(graph.n)}, font_size=5, font_color="white"
        )
    ax.set_title(title or f"{graph.describe()}  seed={graph.seed}  edges={len(graph.edges)}", fontsize=9)
    ax.axis("off")
    fig.tight_layout()
    return save_figure(fig, path, dpi=130)
