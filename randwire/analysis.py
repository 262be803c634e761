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


def _node_op(run: Path, metrics: dict[str, Any]) -> str | None:
    """The run's node operation: metrics.json (since issue 11), else the config the run saved."""
    if metrics.get("node_op"):
        return metrics["node_op"]
    config = run / "config.yaml"
    if config.is_file():
        import yaml

        return ((yaml.safe_load(config.read_text()) or {}).get("node_op") or {}).get("name")
    return None


def _run_row(run: Path | None, metrics: dict[str, Any], job: dict[str, Any] | None = None) -> dict[str, Any]:
    """One run's row: where, setting, seed, status, metrics, and each stage's graph statistics with their
    mean over stages (``mean_<stat>``). ``job``: a sweep job without results (killed, never started)."""
    from .graphs import GraphFormatError, StageGraph

    overrides = metrics.get("overrides")
    row: dict[str, Any] = {
        "run": str(run) if run else None, "sweep": (job or {}).get("sweep"), "job": (job or {}).get("job"),
        "setting": (",".join(overrides) or "defaults") if overrides is not None else metrics.get("group", (job or {}).get("group")),
        "seed": metrics.get("seed", (job or {}).get("seed")), "status": metrics.get("status", (job or {}).get("status", "ok")),
        "error": metrics.get("error", (job or {}).get("error")),
        "test_acc1": metrics.get("test/acc1"), "test_acc5": metrics.get("test/acc5"), "params": metrics.get("params"),
        "flops": metrics.get("flops"), "c": metrics.get("c"), "node_op": _node_op(run, metrics) if run else None}
    stages = sorted((run / "graphs").glob("stage*.json")) if run else []
    per_stage = []
    for i, path in enumerate(stages):
        try:
            graph = StageGraph.load(path)
        except (GraphFormatError, OSError, ValueError) as err:
            _fail(f"{path}: {err}")
        if i == 0:  # the generator setting, as the run's stored graphs say (no config parsing)
            row.update(generator=graph.generator, **{f"graph_{k}": v for k, v in graph.params.items()}, graph_n=graph.n)
        stats = graph_stats(graph)
        per_stage.append(stats)
        row.update({f"stage{i}_{k}": v for k, v in stats.items()})
    if not stages and job is not None:  # no stored graphs: the setting its config names (never sampled here)
        from .sweeps import graph_config

        graph = graph_config(job) or {}
        if graph.get("name"):
            row.update(generator=graph["name"], graph_n=graph.get("n"),
                       **{f"graph_{k}": v for k, v in graph.items() if k not in ("name", "n")})
    for key in STATS:
        row[f"mean_{key}"] = sum(s[key] for s in per_stage) / len(per_stage) if per_stage else None
    return row


def run_table(runs: list[Path]):
    """One row per run folder (``metrics.json``), see :func:`_run_row`."""
    import pandas as pd

    return pd.DataFrame([_run_row(run, json.loads((run / "metrics.json").read_text())) for run in runs])


def job_table(done: list[dict[str, Any]], failed: list[dict[str, Any]]):
    """One row per sweep job (:func:`randwire.sweeps.collect`): finished, failed, killed, never started."""
    import pandas as pd

    rows = []
    for job in [*done, *failed]:
        path = Path(job["path"]) if job.get("path") else None
        metrics_file = path / "metrics.json" if path else None
        metrics = json.loads(metrics_file.read_text()) if metrics_file and metrics_file.is_file() else {}
        rows.append(_run_row(path, metrics, job))
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
            _fail(f"{raw!r} is not a folder (give run or sweep folders)")
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

    ok = table[(table["status"] == "ok") & table["test_acc1"].notna()].copy()
    if "generator" in ok and ok["generator"].notna().all():  # the paper's names: ER(0.2), BA(5), WS(4, 0.75)
        ok["setting"] = ok.apply(_setting_name, axis=1)
    settings = [str(s) for s in sorted(ok["setting"].dropna().unique())]
    shared = set.intersection(*(set(s.split(",")) for s in settings)) if len(settings) > 1 else set()

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
    table = load_table(paths)
    out = _out_dir(paths, out)
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


FAILED = ("failed", "diverged", "interrupted", "missing")  # ran, left no result ("missing": killed)


def grid_table(table, by: tuple[str, ...] = ()):
    """One row per generator setting (and per value of the ``by`` columns): instances, top-1 mean and sample
    std (ddof 1), mean FLOPs, failed runs."""
    import pandas as pd

    table = table[table["generator"].notna()].copy()
    table["setting_name"] = table.apply(_setting_name, axis=1)
    rows = []
    keys = ["generator", "graph_n", *[k for k in ("graph_p", "graph_m", "graph_k") if k in table]]
    for (name, *_), group in table.groupby(["setting_name", *by], sort=False):
        ok = group[(group["status"] == "ok") & group["test_acc1"].notna()]
        acc = 100 * ok["test_acc1"].astype(float)
        first = group.iloc[0]
        rows.append({"setting": name, **{k: first.get(k) for k in (*by, *keys)}, "n": len(ok),
                     "top1_mean": acc.mean() if len(ok) else float("nan"),
                     "top1_std": acc.std(ddof=1) if len(ok) > 1 else float("nan"),
                     "flops_mean": ok["flops"].astype(float).mean() if len(ok) else float("nan"),
                     "failed": int(group["status"].isin(FAILED).sum()),
                     "never_started": int((group["status"] == "never started").sum()), "seeds": " ".join(str(s) for s in sorted(ok["seed"]))})
    order = ["generator_order", *[k for k in ("graph_k", "graph_m", "graph_p") if k in keys], *by]
    out = pd.DataFrame(rows)
    out["generator_order"] = out["generator"].map({"er": 0, "ba": 1, "ws": 2})  # the paper's order
    return out.sort_values(order, kind="stable").drop(columns="generator_order").reset_index(drop=True)


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
            ax.set_xlim(-0.05, 1.05)  # the paper's axes: WS P in [0, 1], ER P in [0.1, 0.8], BA M in [1, 7]
        else:
            x = part["graph_p"] if gen == "er" else part["graph_m"]
            ax.errorbar(x, part["top1_mean"], yerr=part["top1_std"].fillna(0), marker="o", capsize=3)
            ax.set_xlabel("P" if gen == "er" else "M")
            ax.set_xlim(*((0.05, 0.85) if gen == "er" else (0.5, max(7.5, float(x.max()) + 0.5))))
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
    table = load_table(paths)
    out = _out_dir(paths, out)
    if "generator" not in table or table["generator"].isna().all():
        _fail("no run under the paths stores its stage graphs (graphs/stage0.json)")
    settings = grid_table(table)
    written = {"grid": out / "grid.csv", "runs": out / "runs.csv", "plot": out / "grid.png", "edf": out / "edf.png"}
    settings.to_csv(written["grid"], index=False)
    table.to_csv(written["runs"], index=False)
    plot_grid(settings, written["plot"])
    plot_edf(table, written["edf"])
    return written


NODE_OP_ORDER = ("sep_conv", "conv", "max_pool", "avg_pool")  # Fig. 6's order


def nodeops_pearson(settings):
    """Pearson r between every pair of node operations' accuracy series, over the generator settings both
    have (the paper: 0.91-0.98), as numpy's corrcoef computes it."""
    import numpy as np
    import pandas as pd

    wide = settings.pivot(index="setting", columns="node_op", values="top1_mean")
    ops = [op for op in (*NODE_OP_ORDER, *sorted(set(wide.columns) - set(NODE_OP_ORDER))) if op in wide.columns]
    rows = []
    for i, a in enumerate(ops):
        for b in ops[i + 1:]:
            both = wide[[a, b]].dropna()
            x, y = both[a].to_numpy(), both[b].to_numpy()
            r = float(np.corrcoef(x, y)[0, 1]) if len(both) > 1 and x.std() > 0 and y.std() > 0 else float("nan")
            rows.append({"node_op_a": a, "node_op_b": b, "pearson_r": r, "settings": len(both)})
    return pd.DataFrame(rows, columns=["node_op_a", "node_op_b", "pearson_r", "settings"])


def plot_nodeops(settings, pearson, path: Path) -> None:
    """Fig. 6: each node operation's top-1 (mean ± std) over the generator settings, a line per operation."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    order = list(dict.fromkeys(settings["setting"]))  # grid_table's order: ER by P, BA by M, WS by K, P
    fig, ax = plt.subplots(figsize=(max(6.5, 0.75 * len(order) + 2), 4.4), constrained_layout=True)
    ops = [op for op in (*NODE_OP_ORDER, *sorted(set(settings["node_op"]) - set(NODE_OP_ORDER)))
           if op in set(settings["node_op"])]
    for op in ops:
        line = settings[settings["node_op"] == op].set_index("setting").reindex(order)
        flops = line["flops_mean"].mean()
        ax.errorbar(range(len(order)), line["top1_mean"], yerr=line["top1_std"].fillna(0), marker="o", capsize=3,
                    label=f"{op} ({flops / 1e6:.3g}M multiply-adds)" if flops == flops else op)
    ax.set_xticks(range(len(order)), order, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("test top-1 (%), mean ± std")
    r = pearson["pearson_r"].dropna()
    ax.set_title("node operations over generator settings\n" + (
        f"pairwise Pearson r from {r.min():.2f} to {r.max():.2f} over {int(pearson['settings'].max())} settings"
        if len(r) else "Pearson r: needs 2+ shared settings"), fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.savefig(path, dpi=90)
    plt.close(fig)


def nodeops(paths: list[str], out: Path | None) -> dict[str, Path]:
    table = load_table(paths)
    out = _out_dir(paths, out)
    if "generator" not in table or table["generator"].isna().all():
        _fail("no run under the paths stores its stage graphs (graphs/stage0.json)")
    if table["node_op"].isna().all():
        _fail("no run under the paths says its node operation (metrics.json node_op or config.yaml)")
    settings = grid_table(table, by=("node_op",))
    pearson = nodeops_pearson(settings)
    written = {"nodeops": out / "nodeops.csv", "pearson": out / "nodeops_pearson.csv", "runs": out / "runs.csv",
               "plot": out / "nodeops.png"}
    settings.to_csv(written["nodeops"], index=False)
    pearson.to_csv(written["pearson"], index=False)
    table.to_csv(written["runs"], index=False)
    plot_nodeops(settings, pearson, written["plot"])
    return written


def _checkpoint_of(run: Path) -> Path:
    """The checkpoint a run reported its test numbers with (``metrics.json`` ``test_checkpoint``), else its
    last, else its best one."""
    metrics = json.loads((run / "metrics.json").read_text())
    tested = Path(str(metrics.get("test_checkpoint") or ""))
    for candidate in (tested, run / "checkpoints" / "last.ckpt", run / "checkpoints" / "best.ckpt"):
        if candidate.suffix == ".ckpt" and candidate.is_file():
            return candidate
    _fail(f"run {str(run)!r} has no checkpoint (checkpoints/last.ckpt or best.ckpt)")


def find_checkpoints(paths: list[str]) -> list[Path]:
    """Checkpoint files as given, and for run or sweep folders the checkpoint of every finished run."""
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_file():
            found.append(path)
        elif path.is_dir():
            runs = [r for r in find_runs([raw])
                    if json.loads((r / "metrics.json").read_text()).get("status", "ok") == "ok"]
            if not runs:
                _fail(f"no finished run under {raw!r} (every run there failed or was interrupted)")
            found += [_checkpoint_of(r) for r in runs]
        else:
            _fail(f"{raw!r} does not exist (give a checkpoint file, or run or sweep folders)")
    return found


def damage_table(ckpt: Path, split: str = "test", data_root: str | None = None, batch_size: int | None = None,
                 progress: bool = True):
    """Every node and edge damage of one checkpoint's random stages, evaluated on ``split``: one row each
    (``kind`` node | edge), plus the intact network (``kind`` none)."""
    import pandas as pd
    import torch
    from tqdm import tqdm

    from .damage import Damage, all_damages, evaluate_damages
    from .run import checkpoint_data, load_checkpoint

    net, info = load_checkpoint(ckpt)
    dm, _ = checkpoint_data(ckpt, info, {"root": data_root} if data_root else {}, batch_size=batch_size)
    loader = dm.loader(split)
    damages = all_damages(net.graphs)
    total = len(loader.dataset) * len(damages)
    bar = tqdm(total=total, unit="img", unit_scale=True, desc=f"damage {ckpt.name}", disable=not (progress and sys.stderr.isatty()))
    device = "cuda" if torch.cuda.is_available() else "cpu"
    results = evaluate_damages(net, loader, damages, progress=bar.update, device=device)
    bar.close()
    intact = results[Damage(0)]["acc1"]
    first = net.graphs[0]
    name = _setting_name({"generator": first.generator, **{f"graph_{k}": v for k, v in first.params.items()}})
    run_seed = (info.get("run_config") or {}).get("seed")
    rows = []
    for d in [Damage(0), *damages]:
        r = results[d]
        graph = net.graphs[d.stage]
        rows.append({
            "checkpoint": str(ckpt), "setting": name, "generator": first.generator, "seed": run_seed,
            "node_op": net.config["node_op"], "split": split, "samples": r["samples"],
            "stage": d.stage if d.kind != "none" else None, "kind": d.kind, "node": d.node,
            "edge_from": d.edge[0] if d.edge else None, "edge_to": d.edge[1] if d.edge else None,
            "degree": d.degree(graph), "degree_kind": {"node": "out-degree", "edge": "target in-degree"}.get(d.kind),
            "status": "ok" if r["has_path"] else "no_path",
            "acc1": r["acc1"], "intact_acc1": intact,
            "delta_acc1": None if r["acc1"] is None else 100 * (r["acc1"] - intact),
        })
    table = pd.DataFrame(rows)
    for key in ("stage", "node", "edge_from", "edge_to", "degree"):  # integers with gaps, not floats
        table[key] = table[key].astype("Int64")
    return table


def plot_damage(table, path: Path) -> None:
    """Fig. 5: Δ top-1 per degree, nodes (top) and edges (bottom), a column per generator: red circle mean,
    gray bar median, orange box IQR, blue dots the individual damaged instances."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    ok = table[(table["kind"] != "none") & (table["status"] == "ok")]
    gens = [g for g in ("er", "ba", "ws") if g in set(ok["generator"])]
    fig, axes = plt.subplots(2, max(len(gens), 1), figsize=(4.2 * max(len(gens), 1), 6.4), squeeze=False,
                             constrained_layout=True)
    rng = np.random.default_rng(0)  # jitter of the dots only
    for col, gen in enumerate(gens):
        part = ok[ok["generator"] == gen]
        for row, (kind, xlabel) in enumerate((("node", "out-degree of the removed node"),
                                              ("edge", "in-degree of the removed edge's target"))):
            ax = axes[row][col]
            sel = part[part["kind"] == kind]
            degrees = sorted(int(d) for d in sel["degree"].unique())
            data = [sel[sel["degree"] == d]["delta_acc1"].astype(float).to_numpy() for d in degrees]
            if data:
                ax.boxplot(data, positions=degrees, widths=0.6, showmeans=True, showfliers=False,
                           patch_artist=True, boxprops={"facecolor": "none", "edgecolor": "tab:orange"},
                           medianprops={"color": "gray", "linewidth": 2}, whiskerprops={"color": "tab:orange"},
                           capprops={"color": "tab:orange"},
                           meanprops={"marker": "o", "markerfacecolor": "none", "markeredgecolor": "red"})
                for d, values in zip(degrees, data):
                    ax.scatter(d + rng.uniform(-0.15, 0.15, len(values)), values, s=6, color="tab:blue", alpha=0.5)
                ax.set_xlim(min(degrees) - 1, max(degrees) + 1)
            ax.axhline(0, color="black", linewidth=0.5)
            ax.set_xlabel(xlabel, fontsize=8)
            ax.set_ylabel("Δ top-1 (points)", fontsize=8)
            n_ckpt = part["checkpoint"].nunique()
            ax.set_title(f"{gen.upper()}: remove one {kind}  ({len(sel)} instances, {n_ckpt} network"
                         f"{'s' if n_ckpt > 1 else ''})", fontsize=9)
            ax.tick_params(labelsize=7)
    no_path = int((table["status"] == "no_path").sum())
    fig.suptitle("graph damage" + (f"  ({no_path} damages left no input-output path: not plotted)" if no_path else ""))
    fig.savefig(path, dpi=90)
    plt.close(fig)


def damage(paths: list[str], out: Path | None, split: str = "test", data_root: str | None = None,
           batch_size: int | None = None) -> dict[str, Path]:
    import time

    import pandas as pd

    ckpts = find_checkpoints(paths)
    out = _out_dir([str(Path(paths[0]).parent if Path(paths[0]).is_file() else paths[0])], out)
    tables = []
    for ckpt in ckpts:
        start = time.perf_counter()
        try:
            table = damage_table(ckpt, split, data_root, batch_size)
        except ValueError as err:  # CheckpointError, DataError, ConfigError: one line each
            _fail(str(err))
        tables.append(table)
        nodes, edges = table[table["kind"] == "node"], table[table["kind"] == "edge"]
        no_path = int((table["status"] == "no_path").sum())
        print(f"{ckpt}: {table['setting'].iloc[0]}, intact top-1 {100 * table['intact_acc1'].iloc[0]:.2f}% on "
              f"{table['samples'].iloc[0]} {split} images; mean Δ {nodes['delta_acc1'].mean():+.2f} points over "
              f"{len(nodes)} node removals, {edges['delta_acc1'].mean():+.2f} over {len(edges)} edge removals"
              f"{f', {no_path} without an input-output path' if no_path else ''}"
              f" ({time.perf_counter() - start:.0f} s)", flush=True)
    table = pd.concat(tables, ignore_index=True)
    written = {"damage": out / "damage.csv", "plot": out / "damage.png"}
    table.to_csv(written["damage"], index=False)
    plot_damage(table, written["plot"])
    return written


def log_to_wandb(analysis: str, written: dict[str, Path], paths: list[str], project: str, out: Path) -> str | None:
    """Every PNG as a ``wandb.Image`` and every CSV as a ``wandb.Table`` in one W&B run (job type
    ``analysis``, tagged with the analysis), so the figures sit next to the training runs they came from.
    Offline without a login or a reachable server (as training runs); returns the run's folder."""
    import pandas as pd
    import wandb

    from .loggers import wandb_mode

    mode = wandb_mode("auto", announce=True)
    if mode == "disabled":
        return None
    run = wandb.init(project=project, job_type="analysis", name=f"{analysis} {out.name}", tags=[f"analysis:{analysis}"],
                     dir=str(out), mode=mode, config={"analysis": analysis, "inputs": [str(Path(p).resolve()) for p in paths]},
                     reinit="finish_previous")
    media: dict[str, Any] = {}
    for what, path in written.items():
        if path.suffix == ".png":
            media[f"{analysis}/plot_{path.stem}"] = wandb.Image(str(path))
        elif path.suffix == ".csv":
            media[f"{analysis}/table_{path.stem}"] = wandb.Table(dataframe=pd.read_csv(path))
    run.log(media)
    folder = run.dir
    run.finish()
    return str(Path(folder).parent)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m randwire.analysis", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="analysis", required=True)
    for name, what in (("grid", "Fig. 3: top-1 mean ± std per generator setting, and error EDFs"),
                       ("damage", "Fig. 5: remove each node / edge of trained networks, Δ top-1 vs degree"),
                       ("nodeops", "Fig. 6: each node operation's top-1 over generator settings, pairwise Pearson r"),
                       ("stats", "graph statistics of every run vs its accuracy")):
        p = sub.add_parser(name, help=what, description=what)
        if name == "damage":
            p.add_argument("paths", nargs="+", metavar="PATH",
                           help="checkpoint files, or run / sweep folders (each finished run's tested checkpoint)")
            p.add_argument("--split", choices=("test", "val", "train"), default="test", help="default: test")
            p.add_argument("--data-root", default=None, help="where the data is now, if it moved since training")
            p.add_argument("--batch-size", type=int, default=None, help="default: the training batch size")
        else:
            p.add_argument("paths", nargs="+", metavar="PATH", help="run folders, sweep folders, or a parent of several sweeps")
        p.add_argument("--out", type=Path, default=None, help="where to write (default: <first path>/analysis)")
        p.add_argument("--wandb", nargs="?", const="randwire", default=None, metavar="PROJECT",
                       help="also log the plots (images) and CSVs (tables) to W&B, project PROJECT (default randwire)")
    args = parser.parse_args(argv)
    if args.analysis == "damage":
        if args.batch_size is not None and args.batch_size < 1:
            _fail(f"--batch-size {args.batch_size} is not allowed: an integer >= 1")
        written = damage(args.paths, args.out, args.split, args.data_root, args.batch_size)
    else:
        written = {"grid": grid, "nodeops": nodeops, "stats": stats}[args.analysis](args.paths, args.out)
    for what, path in written.items():
        print(f"{what}: {path}")
    if args.wandb:
        folder = log_to_wandb(args.analysis, written, args.paths, args.wandb, next(iter(written.values())).parent)
        print(f"W&B run: {folder}" if folder else "W&B: disabled (WANDB_MODE=disabled)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
