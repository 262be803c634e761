"""What the analyses read: one row per run or sweep job (metrics, status, the graph statistics of its
stages), and the per-setting table the grid and node-operation analyses share."""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Any

from ..models.generators import find_generator, generator_names, setting_label
from ..models.graph_files import file_set_name, file_set_name_of_paths
from .sweeps import read_metrics

STATS = (
    "avg_clustering",
    "avg_shortest_path",
    "degree_mean",
    "degree_std",
    "degree_max",
    "inputs",
    "outputs",
    "depth",
    "width",
)


def finished(table):
    """The rows of runs that finished with a test accuracy (what means, EDFs and correlations average)."""
    return table[(table["status"] == "ok") & table["test_acc1"].notna()]


def mean_std(frame, by: list[str], columns: list[str]):
    """Mean and sample std (ddof 1; NaN for a single value) of ``columns`` per group of ``by``, missing values
    skipped: the one aggregation over seeds (network instances) that the summary and the analyses share.
    Columns ``(column, "mean")`` and ``(column, "std")``, indexed by the ``by`` values."""
    return frame.groupby(by, sort=False, dropna=False)[columns].agg(["mean", std])


def std(values) -> float:
    """Sample std in two passes (pandas' Series.std). Reading: groupby's built-in "std" accumulates online
    (Welford) and differs from it in the last digits; the summaries have always printed the two-pass value."""
    return values.std(ddof=1)


def pearson(x, y) -> float:
    """numpy's Pearson r of two equally long series; NaN where it is undefined (fewer than two points, or
    a series without spread)."""
    import numpy as np

    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    return float(np.corrcoef(x, y)[0, 1]) if len(x) > 1 and x.std() > 0 and y.std() > 0 else float("nan")


def fail(message: str) -> None:
    """Bad input: one line on stderr, exit code 2 (as train.py and evaluate.py)."""
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(2)


def graph_stats(graph) -> dict[str, Any]:
    """Statistics of one stored stage graph (randwire.models.graphs.StageGraph)."""
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
        "degree_mean": float(degrees.mean()),
        "degree_std": float(degrees.std()),
        "degree_max": int(degrees.max()),
        "inputs": len(graph.input_nodes),
        "outputs": len(graph.output_nodes),
        "depth": max(levels) + 1,
        "width": max(levels.count(level) for level in set(levels)),
    }


def find_runs(paths: list[str]) -> list[Path]:
    """Run folders (holding ``metrics.json``) at or below each path; one line for a path that has none."""
    runs: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if not path.is_dir():
            fail(f"{raw!r} is not a folder (give run or sweep folders)")
        found = sorted({p.parent for p in path.rglob("metrics.json")}, key=lambda p: str(p))
        if not found:
            fail(f"no runs (folders with metrics.json) under {raw!r}")
        runs += found
    return runs


def _node_op(run: Path, metrics: dict[str, Any]) -> str | None:
    """The run's node operation: metrics.json, else the config the run saved (runs from before metrics.json named it)."""
    if metrics.get("node_op"):
        return metrics["node_op"]
    config = run / "config.yaml"
    if config.is_file():
        import yaml

        return ((yaml.safe_load(config.read_text()) or {}).get("node_op") or {}).get("name")
    return None


def _run_row(run: Path | None, metrics: dict[str, Any], job: dict[str, Any] | None = None) -> dict[str, Any]:
    """One run's row: where, setting, seed, status, metrics, and each stage's graph statistics with their
    mean over stages (``mean_<stat>``). ``job``: the sweep job it belongs to (:mod:`randwire.analysis.sweeps`), the
    only record of a job without results (killed, never started). An unreadable stage graph is a warning
    on stderr and a row without statistics: one bad file must not cost a sweep's summary."""
    from ..models.graphs import GraphFormatError, StageGraph

    job = job or {}
    overrides = metrics.get("overrides")
    row: dict[str, Any] = {
        "run": str(run) if run else None,
        "sweep": job.get("sweep"),
        "job": job.get("job"),
        "setting": (",".join(overrides) or "defaults")
        if overrides is not None
        else metrics.get("group", job.get("group")),
        "seed": metrics.get("seed", job.get("seed")),
        "status": metrics.get("status", job.get("status", "ok")),
        "error": metrics.get("error", job.get("error")),
        "test_acc1": metrics.get("test/acc1"),
        "test_acc5": metrics.get("test/acc5"),
        **{k.replace("/", "_"): metrics[k] for k in ("test/map", "test/map_50", "test/map_75") if k in metrics},
        "params": metrics.get("params"),
        "flops": metrics.get("flops"),
        "c": metrics.get("c"),
        "node_op": _node_op(run, metrics) if run else None,
    }
    try:
        graphs = [StageGraph.load(path) for path in sorted((run / "graphs").glob("stage*.json"))] if run else []
    except (GraphFormatError, OSError, ValueError) as err:
        print(f"warning: {run}/graphs: {err} — this run's graph statistics are left out", file=sys.stderr)
        graphs = []
    per_stage = []
    for i, graph in enumerate(graphs):
        if i == 0:  # the generator setting, as the run's stored graphs say (no config parsing)
            row.update(generator=graph.generator, **{f"graph_{k}": v for k, v in graph.params.items()}, graph_n=graph.n)
        stats = graph_stats(graph)
        per_stage.append(stats)
        row.update({f"stage{i}_{k}": v for k, v in stats.items()})
    if not graphs and job:  # no stored graphs: the setting its config names (never sampled here)
        from .sweeps import graph_config

        graph = graph_config(job) or {}
        if graph.get("name"):
            row.update(
                generator=graph["name"],
                graph_n=graph.get("n"),
                **{f"graph_{k}": v for k, v in graph.items() if k not in ("name", "n")},
            )
    if row.get("generator") == "file":  # named by content: the files' names and their graphs' hash
        row["graph_file"] = (
            file_set_name(graphs) if graphs else file_set_name_of_paths(list(row.get("graph_paths") or []))
        )
    for key in STATS:
        row[f"mean_{key}"] = sum(s[key] for s in per_stage) / len(per_stage) if per_stage else None
    return row


def run_table(runs: list[Path]):
    """One row per run folder (``metrics.json``), see :func:`_run_row`."""
    import pandas as pd

    return pd.DataFrame([_run_row(run, read_metrics(run) or {}) for run in runs])


def job_table(done: list[dict[str, Any]], failed: list[dict[str, Any]]):
    """One row per sweep job (:func:`randwire.analysis.sweeps.collect`): finished, failed, killed, never started."""
    import pandas as pd

    rows = []
    for job in [*done, *failed]:
        path = Path(job["path"]) if job.get("path") else None
        rows.append(_run_row(path, (read_metrics(path) if path else None) or {}, job))
    return pd.DataFrame(rows)


def load_table(paths: list[str]):
    """Every run at or below the paths: whole sweeps (with their failed, killed and never-started jobs)
    where the paths are or hold sweep folders, else every folder with a ``metrics.json``."""
    import pandas as pd

    from .sweeps import collect_many

    tables = []
    for raw in paths:
        path = Path(raw)
        if not path.is_dir():
            fail(f"{raw!r} is not a folder (give run or sweep folders)")
        if (path / "metrics.json").is_file():
            tables.append(run_table([path]))
            continue
        try:
            done, failed, _ = collect_many([path])
        except FileNotFoundError:
            done = failed = []
        tables.append(job_table(done, failed) if done or failed else run_table(find_runs([raw])))
    table = pd.concat(tables, ignore_index=True)
    return table[~(table["run"].notna() & table.duplicated(subset=["run"]))].reset_index(drop=True)


def setting_name(row) -> str:
    """A setting by its content: ER(0.2), BA(5), WS(4, 0.75), WS-flex(3.5, 0.2), powerlaw_cluster_graph(m=3,
    p=0.5), file:a.json+b.json#19cb56c6, mygen(q=0.3); rows with other graphs never share a name."""
    gen = str(row["generator"])
    known = find_generator(gen)
    own = (*known.params, *known.optional) if known and gen != "file" else None
    keys = own or [k[6:] for k in row.index if k.startswith("graph_") and k not in ("graph_connected", "graph_draws")]
    params = {k: row.get(f"graph_{k}") for k in keys if k != "n" and not _missing(row.get(f"graph_{k}"))}
    return setting_label(gen, params)


def generator_key(row) -> str:
    """What counts as one generator in the EDFs (pycls: a curve per generator): ER, BA, WS, WS-flex, each
    networkx function, each file set, each registered generator."""
    gen = str(row["generator"])
    if gen == "networkx":
        return f"networkx:{str(row.get('graph_fn')).rsplit('.', 1)[-1]}"
    return setting_name(row) if gen == "file" else gen


def generator_order(names) -> list[str]:
    """The generators present, in the order of tables and plots: the paper's, then registration, then the
    others (not imported here) by name."""
    present = {str(g) for g in names}
    known = [g for g in generator_names() if g in present]
    return [*known, *sorted(present - set(known))]


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


# ran, left no result ("missing": killed; "unreadable": a metrics.json that cannot be parsed; "cancelled", "node
# failed", "out of memory", "timeout", "preempted": left Slurm's queue without a result, in Slurm's words where it
# keeps accounting: randwire.training.slurm_end)
FAILED = (
    "failed",
    "diverged",
    "interrupted",
    "cancelled",
    "node failed",
    "out of memory",
    "timeout",
    "preempted",
    "missing",
    "unreadable",
)


def grid_table(table, by: tuple[str, ...] = ()):
    """One row per generator setting (and per value of the ``by`` columns): instances, top-1 mean and sample
    std (ddof 1), mean FLOPs, failed runs."""
    import pandas as pd

    table = table[table["generator"].notna()].copy()
    table["setting_name"] = table.apply(setting_name, axis=1)
    rows = []
    keys = ["generator", "graph_n", *[k for k in ("graph_p", "graph_m", "graph_k") if k in table]]
    ok_all = finished(table)
    stats = mean_std(
        ok_all.assign(top1=100 * ok_all["test_acc1"].astype(float), flops=ok_all["flops"].astype(float)),
        ["setting_name", *by],
        ["top1", "flops"],
    )
    for index, group in table.groupby(["setting_name", *by], sort=False):
        ok = finished(group)
        first = group.iloc[0]
        stat = stats.loc[index] if len(ok) else None
        rows.append(
            {
                "setting": index[0],
                **{k: first.get(k) for k in (*by, *keys)},
                "n": len(ok),
                "top1_mean": stat[("top1", "mean")] if stat is not None else float("nan"),
                "top1_std": stat[("top1", "std")] if stat is not None else float("nan"),
                "flops_mean": stat[("flops", "mean")] if stat is not None else float("nan"),
                "failed": int(group["status"].isin(FAILED).sum()),
                "never_started": int((group["status"] == "never started").sum()),
                "seeds": " ".join(str(s) for s in sorted(ok["seed"])),
            }
        )
    order = ["generator_order", *[k for k in ("graph_k", "graph_m", "graph_p") if k in keys], *by]
    out = pd.DataFrame(rows)
    out["generator_order"] = out["generator"].map({g: i for i, g in enumerate(generator_order(out["generator"]))})
    return out.sort_values(order, kind="stable").drop(columns="generator_order").reset_index(drop=True)


def out_dir(paths: list[str], out: Path | None) -> Path:
    out = out or (Path(paths[0]) / "analysis")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        fail(f"--out {str(out)!r} is not writable ({err.strerror})")
    return out


def load_settings_table(paths: list[str], out: Path | None) -> tuple[Any, Path]:
    """:func:`load_table` and the output folder, for analyses grouped by generator setting: the setting
    comes from the runs' stored graphs, so a folder of runs that stored none is one line."""
    table = load_table(paths)
    out = out_dir(paths, out)
    if "generator" not in table or table["generator"].isna().all():
        fail("no run under the paths stores its stage graphs (graphs/stage0.json)")
    return table, out
