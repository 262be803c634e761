"""The paper's population analyses as commands over run or sweep folders. They read what runs wrote
(``metrics.json``, ``graphs/stage*.json``); they never retrain and never re-sample a graph.

    python -m randwire.analysis grid PATH... [--out DIR]
    python -m randwire.analysis stats PATH... [--out DIR]

``grid`` (Fig. 3): top-1 mean ± std over the instances of every generator setting (``grid.csv``: one row per
setting; ``grid.png``: one panel per generator, ER over P, BA over M, WS over P with a line per K) and
pycls-style error EDFs (``edf.png``: per generator, the fraction of its trained instances with test error
below x), because the paper's claim is about distributions, not single runs.

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


def _fail(message: str) -> None:
    """Bad input: one line on stderr, exit code 2 (as train.py and evaluate.py)."""
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(2)


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
            _fail(f"{raw!r} is not a folder (give run or sweep folders)")
        found = sorted({p.parent for p in path.rglob("metrics.json")}, key=lambda p: str(p))
        if not found:
            _fail(f"no runs (folders with metrics.json) under {raw!r}")
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
                graph = StageGraph.load(path)
            except (GraphFormatError, OSError, ValueError) as err:
                _fail(f"{path}: {err}")
            if i == 0:  # the generator setting, as the run's stored graphs say (no config parsing)
                row.update(generator=graph.generator, **{f"graph_{k}": v for k, v in graph.params.items()},
                           graph_n=graph.n)
            stats = graph_stats(graph)
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
    out = _out_dir(paths, out)
    table = run_table(runs)
    corr = correlations(table)
    written = {"runs": out / "runs.csv", "correlations": out / "correlations.csv", "plot": out / "stats.png"}
    table.to_csv(written["runs"], index=False)
    corr.to_csv(written["correlations"], index=False)
    plot_stats(table, corr, written["plot"])
    return written


def _setting_name(row) -> str:
    """ER(0.2), BA(5), WS(4, 0.75): the paper's names for a generator setting."""
    gen = str(row["generator"])
    if gen == "er":
        return f"ER({row['graph_p']:g})"
    if gen == "ba":
        return f"BA({int(row['graph_m'])})"
    return f"WS({int(row['graph_k'])}, {row['graph_p']:g})"


def grid_table(table):
    """One row per generator setting: instances, top-1 mean and sample std (ddof 1), failed runs."""
    import pandas as pd

    table = table[table["generator"].notna()].copy()
    table["setting_name"] = table.apply(_setting_name, axis=1)
    rows = []
    keys = ["generator", "graph_n", *[k for k in ("graph_p", "graph_m", "graph_k") if k in table]]
    for name, group in table.groupby("setting_name", sort=False):
        ok = group[(group["status"] == "ok") & group["test_acc1"].notna()]
        acc = 100 * ok["test_acc1"].astype(float)
        first = group.iloc[0]
        rows.append({"setting": name, **{k: first.get(k) for k in keys}, "n": len(ok),
                     "top1_mean": acc.mean() if len(ok) else float("nan"),
                     "top1_std": acc.std(ddof=1) if len(ok) > 1 else float("nan"),
                     "failed": int((group["status"] != "ok").sum()), "seeds": " ".join(str(s) for s in sorted(ok["seed"]))})
    return pd.DataFrame(rows).sort_values(["generator", *[k for k in ("graph_k", "graph_m", "graph_p") if k in keys]])


def plot_grid(grid, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    gens = [g for g in ("er", "ba", "ws") if g in set(grid["generator"])]
    fig, axes = plt.subplots(1, len(gens), figsize=(4.2 * len(gens), 3.6), squeeze=False, sharey=True,
                             constrained_layout=True)
    for ax, gen in zip(axes[0], gens):
        part = grid[grid["generator"] == gen]
        if gen == "ws":
            for k, line in part.groupby("graph_k"):
                ax.errorbar(line["graph_p"], line["top1_mean"], yerr=line["top1_std"].fillna(0), marker="o", capsize=3,
                            label=f"K={int(k)}")
            ax.legend(fontsize=8)
            ax.set_xlabel("P")
        else:
            x = part["graph_p"] if gen == "er" else part["graph_m"]
            ax.errorbar(x, part["top1_mean"], yerr=part["top1_std"].fillna(0), marker="o", capsize=3)
            ax.set_xlabel("P" if gen == "er" else "M")
        ax.set_title(f"{gen.upper()}  ({int(part['n'].sum())} instances)")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("test top-1 (%), mean ± std")
    fig.savefig(path, dpi=90)
    plt.close(fig)


def plot_edf(table, path: Path) -> None:
    """Error EDF per generator over all its finished instances (pycls)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    ok = table[(table["status"] == "ok") & table["test_acc1"].notna() & table["generator"].notna()]
    fig, ax = plt.subplots(figsize=(5, 3.6), constrained_layout=True)
    for gen, group in ok.groupby("generator"):
        err = np.sort(100 - 100 * group["test_acc1"].astype(float).to_numpy())
        ax.step(np.r_[err[0], err], np.r_[0.0, np.arange(1, len(err) + 1) / len(err)], where="post",
                label=f"{gen.upper()} (n={len(err)})")
    ax.set_xlabel("test error (%)")
    ax.set_ylabel("cumulative fraction of instances")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _out_dir(paths: list[str], out: Path | None) -> Path:
    out = out or (Path(paths[0]) / "analysis")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        _fail(f"--out {str(out)!r} is not writable ({err.strerror})")
    return out


def grid(paths: list[str], out: Path | None) -> dict[str, Path]:
    runs = find_runs(paths)
    out = _out_dir(paths, out)
    table = run_table(runs)
    if "generator" not in table or table["generator"].isna().all():
        _fail("no run under the paths stores its stage graphs (graphs/stage0.json)")
    settings = grid_table(table)
    written = {"grid": out / "grid.csv", "runs": out / "runs.csv", "plot": out / "grid.png", "edf": out / "edf.png"}
    settings.to_csv(written["grid"], index=False)
    table.to_csv(written["runs"], index=False)
    plot_grid(settings, written["plot"])
    plot_edf(table, written["edf"])
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m randwire.analysis", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="analysis", required=True)
    for name, what in (("grid", "Fig. 3: top-1 mean ± std per generator setting, and error EDFs"),
                       ("stats", "graph statistics of every run vs its accuracy")):
        p = sub.add_parser(name, help=what)
        p.add_argument("paths", nargs="+", help="run folders, sweep folders, or a parent of several sweeps")
        p.add_argument("--out", type=Path, default=None, help="where to write (default: <first path>/analysis)")
    args = parser.parse_args(argv)
    written = {"grid": grid, "stats": stats}[args.analysis](args.paths, args.out)
    for what, path in written.items():
        print(f"{what}: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
