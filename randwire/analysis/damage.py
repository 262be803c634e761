"""``damage`` (Fig. 5): every node and edge of trained networks removed in turn (:mod:`randwire.models.lesions`),
Δ top-1 against degree, as a CSV and the paper's box plots."""

from __future__ import annotations

import sys
from pathlib import Path

from ..models.plotting import count, pyplot, save_figure
from .sweeps import read_metrics
from .tables import fail, find_runs, generator_order, out_dir, setting_name


def _checkpoint_of(run: Path, metrics: dict) -> Path:
    """The checkpoint a run reported its test numbers with (``metrics.json`` ``test_checkpoint``), else its
    last, else its best one."""
    tested = Path(str(metrics.get("test_checkpoint") or ""))
    for candidate in (tested, run / "checkpoints" / "last.ckpt", run / "checkpoints" / "best.ckpt"):
        if candidate.suffix == ".ckpt" and candidate.is_file():
            return candidate
    fail(f"run {str(run)!r} has no checkpoint (checkpoints/last.ckpt or best.ckpt)")


def find_checkpoints(paths: list[str]) -> list[Path]:
    """Checkpoint files as given, and for run or sweep folders the checkpoint of every finished run."""
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_file():
            found.append(path)
        elif path.is_dir():
            records = {r: read_metrics(r) or {} for r in find_runs([raw])}
            runs = {r: m for r, m in records.items() if m.get("status", "ok") == "ok"}
            if not runs:
                fail(f"no finished run under {raw!r} (every run there failed or was interrupted)")
            found += [_checkpoint_of(r, m) for r, m in runs.items()]
        else:
            fail(f"{raw!r} does not exist (give a checkpoint file, or run or sweep folders)")
    return found


def damage_table(
    ckpt: Path, split: str = "test", data_root: str | None = None, batch_size: int | None = None, progress: bool = True
):
    """Every node and edge damage of one checkpoint's random stages, evaluated on ``split``: one row each
    (``kind`` node | edge), plus the intact network (``kind`` none)."""
    import pandas as pd
    import torch
    from tqdm import tqdm

    from ..models.lesions import Damage, all_damages, evaluate_damages
    from ..training.checkpoints import load_checkpoint
    from ..training.evaluate import checkpoint_data

    net, info = load_checkpoint(ckpt)
    dm, _ = checkpoint_data(ckpt, info, {"root": data_root} if data_root else {}, batch_size=batch_size, split=split)
    loader = dm.loader(split)
    damages = all_damages(net.graphs)
    total = len(loader.dataset) * len(damages)
    bar = tqdm(
        total=total,
        unit="img",
        unit_scale=True,
        desc=f"damage {ckpt.name}",
        disable=not (progress and sys.stderr.isatty()),
    )
    device = "cuda" if torch.cuda.is_available() else "cpu"
    results = evaluate_damages(net, loader, damages, progress=bar.update, device=device)
    bar.close()
    first = net.graphs[0]
    about = {
        "checkpoint": str(ckpt),
        "setting": setting_name({"generator": first.generator, **{f"graph_{k}": v for k, v in first.params.items()}}),
        "generator": first.generator,
        "seed": (info.get("run_config") or {}).get("seed"),
        "node_op": net.spec.node_op,
        "split": split,
    }
    intact = results[Damage(0)]["acc1"]
    rows = [{**about, **_damage_row(d, results[d], net.graphs[d.stage], intact)} for d in [Damage(0), *damages]]
    table = pd.DataFrame(rows)
    for key in ("stage", "node", "edge_from", "edge_to", "degree"):  # integers with gaps, not floats
        table[key] = table[key].astype("Int64")
    return table


def _damage_row(d, result: dict, graph, intact: float) -> dict:
    """One damage's row: what was removed, its degree, and the change of top-1 (percentage points)."""
    return {
        "samples": result["samples"],
        "stage": d.stage if d.kind != "none" else None,
        "kind": d.kind,
        "node": d.node,
        "edge_from": d.edge[0] if d.edge else None,
        "edge_to": d.edge[1] if d.edge else None,
        "degree": d.degree(graph),
        "degree_kind": {"node": "out-degree", "edge": "target in-degree"}.get(d.kind),
        "status": "ok" if result["has_path"] else "no_path",
        "acc1": result["acc1"],
        "intact_acc1": intact,
        "delta_acc1": None if result["acc1"] is None else 100 * (result["acc1"] - intact),
    }


def plot_damage(table, path: Path) -> None:
    """Fig. 5: Δ top-1 per degree, nodes (top) and edges (bottom), a column per generator: red circle mean,
    gray bar median, orange box IQR, blue dots the individual damaged instances."""
    import numpy as np

    plt = pyplot()
    ok = table[(table["kind"] != "none") & (table["status"] == "ok")]
    gens = generator_order(ok["generator"])
    fig, axes = plt.subplots(
        2, max(len(gens), 1), figsize=(4.2 * max(len(gens), 1), 6.4), squeeze=False, constrained_layout=True
    )
    rng = np.random.default_rng(0)  # jitter of the dots only
    for col, gen in enumerate(gens):
        part = ok[ok["generator"] == gen]
        for row, (kind, xlabel) in enumerate(
            (("node", "out-degree of the removed node"), ("edge", "in-degree of the removed edge's target"))
        ):
            ax = axes[row][col]
            sel = part[part["kind"] == kind]
            degrees = sorted(int(d) for d in sel["degree"].unique())
            data = [sel[sel["degree"] == d]["delta_acc1"].astype(float).to_numpy() for d in degrees]
            if data:
                ax.boxplot(
                    data,
                    positions=degrees,
                    widths=0.6,
                    showmeans=True,
                    showfliers=False,
                    patch_artist=True,
                    boxprops={"facecolor": "none", "edgecolor": "tab:orange"},
                    medianprops={"color": "gray", "linewidth": 2},
                    whiskerprops={"color": "tab:orange"},
                    capprops={"color": "tab:orange"},
                    meanprops={"marker": "o", "markerfacecolor": "none", "markeredgecolor": "red"},
                )
                for d, values in zip(degrees, data):
                    ax.scatter(d + rng.uniform(-0.15, 0.15, len(values)), values, s=6, color="tab:blue", alpha=0.5)
                ax.set_xlim(min(degrees) - 1, max(degrees) + 1)
            ax.axhline(0, color="black", linewidth=0.5)
            ax.set_xlabel(xlabel, fontsize=8)
            ax.set_ylabel("Δ top-1 (points)", fontsize=8)
            n_ckpt = part["checkpoint"].nunique()
            ax.set_title(
                f"{gen.upper()}: remove one {kind}  ({count(len(sel), 'instance')}, {count(n_ckpt, 'network')})",
                fontsize=9,
            )
            ax.tick_params(labelsize=7)
    no_path = int((table["status"] == "no_path").sum())
    fig.suptitle("graph damage" + (f"  ({no_path} damages left no input-output path: not plotted)" if no_path else ""))
    save_figure(fig, path)


def damage(
    paths: list[str], out: Path | None, split: str = "test", data_root: str | None = None, batch_size: int | None = None
) -> dict[str, Path]:
    import time

    import pandas as pd

    ckpts = find_checkpoints(paths)
    first = Path(paths[0])
    if first.is_file():  # <run>/checkpoints/x.ckpt -> <run>/analysis
        first = first.parent.parent if first.parent.name == "checkpoints" else first.parent
    out = out_dir([str(first)], out)
    tables = []
    for ckpt in ckpts:
        start = time.perf_counter()
        try:
            table = damage_table(ckpt, split, data_root, batch_size)
        except ValueError as err:  # CheckpointError, DataError, ConfigError: one line each
            fail(str(err))
        tables.append(table)
        nodes, edges = table[table["kind"] == "node"], table[table["kind"] == "edge"]
        no_path = int((table["status"] == "no_path").sum())
        print(
            f"{ckpt}: {table['setting'].iloc[0]}, intact top-1 {100 * table['intact_acc1'].iloc[0]:.2f}% on "
            f"{table['samples'].iloc[0]} {split} images; mean Δ {nodes['delta_acc1'].mean():+.2f} points over "
            f"{len(nodes)} node removals, {edges['delta_acc1'].mean():+.2f} over {len(edges)} edge removals"
            f"{f', {no_path} without an input-output path' if no_path else ''}"
            f" ({time.perf_counter() - start:.0f} s)",
            flush=True,
        )
    table = pd.concat(tables, ignore_index=True)
    written = {"damage": out / "damage.csv", "plot": out / "damage.png"}
    table.to_csv(written["damage"], index=False)
    plot_damage(table, written["plot"])
    return written
