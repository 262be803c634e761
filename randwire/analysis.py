"""The paper's population analyses as commands over run or sweep folders. They read what runs wrote
(``metrics.json``, ``graphs/stage*.json``); they never retrain and never re-sample a graph.

    python -m randwire.analysis stats PATH... [--out DIR]

``stats``: for every run under the PATHs (run folders, sweep folders or a parent of several sweeps), the
networkx statistics of each stage graph — average clustering and average shortest path length of the
undirected graph, degree mean/std/max, input and output nodes, DAG depth and width — joined to the run's
accuracy in a tidy per-run CSV (``runs.csv``: one row per run, pandas reads it as is), their Pearson
correlation with test top-1 (``correlations.csv``) and one scatter plot per statistic (``stats.png``). The
question the paper leaves open: which wiring properties predict accuracy.

Reading: the shortest-path length of a disconnected graph (possible for sparse ER) is taken on its largest
connected component (``*_connected`` says whether the whole graph was).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

STATS = ("avg_clustering", "avg_shortest_path", "degree_mean", "degree_std", "degree_max", "inputs", "outputs",
         "depth", "width")


def graph_stats(graph) -> dict[str, Any]:
    """Statistics of one stored stage graph (randwire.graphs.StageGraph)."""
    import networkx as nx
    import numpy as np

    g = graph.to_undirected_networkx()
    connected = nx.is_connected(g)
    core = g if connected else g.subgraph(max(nx.connected_components(g), key=len))
    degrees = np.array([d for _, d in g.degree()], dtype=float)
    levels = graph.levels()
    return {
        "avg_clustering": nx.average_clustering(g),
        "avg_shortest_path": nx.average_shortest_path_length(core) if core.number_of_nodes() > 1 else 0.0,
        "connected": connected,
        "degree_mean": float(degrees.mean()), "degree_std": float(degrees.std()), "degree_max": int(degrees.max()),
        "inputs": len(graph.input_nodes), "outputs": len(graph.output_nodes),
        "depth": max(levels) + 1, "width": max(levels.count(level) for level in set(levels)),
    }


def find_runs(paths: list[str]) -> list[Path]:
    """Run folders (holding ``metrics.json``) at or below each path; one line for a path that has none."""
    runs: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if not path.is_dir():
            raise SystemExit(f"error: {raw!r} is not a folder (give run or sweep folders)")
        found = sorted({p.parent for p in path.rglob("metrics.json")}, key=lambda p: str(p))
        if not found:
            raise SystemExit(f"error: no runs (folders with metrics.json) under {raw!r}")
        runs += found
    return runs


def run_table(runs: list[Path]):
    """One row per run: where, setting, seed, status, metrics, and each stage's graph statistics with
    their mean over stages (``mean_<stat>``)."""
    import pandas as pd

    from .graphs import GraphFormatError, StageGraph

    rows = []
    for run in runs:
        metrics = json.loads((run / "metrics.json").read_text())
        row: dict[str, Any] = {"run": str(run), "setting": metrics.get("group"), "seed": metrics.get("seed"),
                               "status": metrics.get("status", "ok"), "test_acc1": metrics.get("test/acc1"),
                               "test_acc5": metrics.get("test/acc5"), "params": metrics.get("params"),
                               "flops": metrics.get("flops"), "c": metrics.get("c")}
        stages = sorted((run / "graphs").glob("stage*.json"))
        per_stage = []
        for i, path in enumerate(stages):
            try:
                stats = graph_stats(StageGraph.load(path))
            except (GraphFormatError, OSError, ValueError) as err:
                raise SystemExit(f"error: {path}: {err}") from None
            per_stage.append(stats)
            row.update({f"stage{i}_{k}": v for k, v in stats.items()})
        for key in STATS:
            row[f"mean_{key}"] = sum(s[key] for s in per_stage) / len(per_stage) if per_stage else None
        rows.append(row)
    return pd.DataFrame(rows)


def correlations(table) -> "Any":
    """Pearson r of each mean statistic with test top-1 over the finished runs (NaN where constant)."""
    import numpy as np
    import pandas as pd

    ok = table[(table["status"] == "ok") & table["test_acc1"].notna()]
    rows = []
    for key in STATS:
        x, y = ok[f"mean_{key}"].astype(float).to_numpy(), ok["test_acc1"].astype(float).to_numpy()
        r = float(np.corrcoef(x, y)[0, 1]) if len(x) > 1 and x.std() > 0 and y.std() > 0 else float("nan")
        rows.append({"statistic": f"mean_{key}", "pearson_r": r, "runs": len(x)})
    return pd.DataFrame(rows)


def plot_stats(table, corr, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = table[(table["status"] == "ok") & table["test_acc1"].notna()]
    settings = [str(s) for s in sorted(ok["setting"].dropna().unique())]
    shared = set.intersection(*(set(s.split(",")) for s in settings)) if settings else set()

    def label(setting: str) -> str:  # what tells the settings apart (overrides they all share left out)
        return ",".join(part for part in setting.split(",") if part not in shared)[:60] or setting[:60]

    fig, axes = plt.subplots(3, 3, figsize=(12, 10), constrained_layout=True)
    for ax, key in zip(axes.flat, STATS):
        for setting, group in ok.groupby("setting", sort=True):
            ax.scatter(group[f"mean_{key}"], 100 * group["test_acc1"], s=18, alpha=0.8, label=label(str(setting)))
        r = corr.set_index("statistic").loc[f"mean_{key}", "pearson_r"]
        shown = "undefined: one value" if r != r else f"{r:.2f}"
        ax.set_title(f"{key.replace('_', ' ')}  (Pearson r = {shown})", fontsize=10)
        ax.set_xlabel(f"mean over stages: {key}", fontsize=8)
        ax.set_ylabel("test top-1 (%)", fontsize=8)
        ax.tick_params(labelsize=7)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    if 1 < len(labels) <= 12:
        fig.legend(handles, labels, loc="outside lower center", ncol=3, fontsize=7)
    fig.suptitle(f"graph statistics vs test top-1 ({len(ok)} runs)")
    fig.savefig(path, dpi=90)
    plt.close(fig)


def stats(paths: list[str], out: Path | None) -> dict[str, Path]:
    runs = find_runs(paths)
    out = out or (Path(paths[0]) / "analysis")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise SystemExit(f"error: --out {str(out)!r} is not writable ({err.strerror})") from None
    table = run_table(runs)
    corr = correlations(table)
    written = {"runs": out / "runs.csv", "correlations": out / "correlations.csv", "plot": out / "stats.png"}
    table.to_csv(written["runs"], index=False)
    corr.to_csv(written["correlations"], index=False)
    plot_stats(table, corr, written["plot"])
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m randwire.analysis", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="analysis", required=True)
    p = sub.add_parser("stats", help="graph statistics of every run vs its accuracy")
    p.add_argument("paths", nargs="+", help="run folders, sweep folders, or a parent of several sweeps")
    p.add_argument("--out", type=Path, default=None, help="where to write (default: <first path>/analysis)")
    args = parser.parse_args(argv)
    written = stats(args.paths, args.out)
    for what, path in written.items():
        print(f"{what}: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
