"""``nodeops`` (Fig. 6): each node operation's accuracy series over the generator settings, and the Pearson
correlation of every pair of series."""

from __future__ import annotations

import itertools
from pathlib import Path

from ..models.node_ops import NODE_OPS  # Fig. 6's order
from ..models.plotting import pyplot, save_figure
from .compare import pair_table
from .grid import setting_instances
from .tables import fail, grid_table, load_settings_table, pearson


def _ordered_ops(ops) -> list[str]:
    """The node operations present, in Fig. 6's order (any other, e.g. a user's, after them)."""
    present = set(ops)
    return [op for op in (*NODE_OPS, *sorted(present - set(NODE_OPS))) if op in present]


def nodeops_pearson(settings):
    """Pearson r between every pair of node operations' accuracy series, over the generator settings both
    have (the paper: 0.91-0.98), as numpy's corrcoef computes it."""
    import pandas as pd

    wide = settings.pivot(index="setting", columns="node_op", values="top1_mean")
    ops = _ordered_ops(wide.columns)
    rows = []
    for i, a in enumerate(ops):
        for b in ops[i + 1 :]:
            both = wide[[a, b]].dropna()
            rows.append({"node_op_a": a, "node_op_b": b, "pearson_r": pearson(both[a], both[b]), "settings": len(both)})
    return pd.DataFrame(rows, columns=["node_op_a", "node_op_b", "pearson_r", "settings"])


def plot_nodeops(settings, pearson, path: Path) -> None:
    """Fig. 6: each node operation's top-1 (mean ± std) over the generator settings, a line per operation."""
    plt = pyplot()
    order = list(dict.fromkeys(settings["setting"]))  # grid_table's order: ER by P, BA by M, WS by K, P
    fig, ax = plt.subplots(figsize=(max(6.5, 0.75 * len(order) + 2), 4.4), constrained_layout=True)
    for op in _ordered_ops(settings["node_op"]):
        line = settings[settings["node_op"] == op].set_index("setting").reindex(order)
        flops = line["flops_mean"].mean()
        ax.errorbar(
            range(len(order)),
            line["top1_mean"],
            yerr=line["top1_std"].fillna(0),
            marker="o",
            capsize=3,
            label=f"{op} ({flops / 1e6:.3g}M multiply-adds)" if flops == flops else op,
        )
    ax.set_xticks(range(len(order)), order, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("test top-1 (%), mean ± std")
    r = pearson["pearson_r"].dropna()
    ax.set_title(
        "node operations over generator settings\n"
        + (
            f"pairwise Pearson r from {r.min():.2f} to {r.max():.2f} over {int(pearson['settings'].max())} settings"
            if len(r)
            else "Pearson r: needs 2+ node operations"
            if settings["node_op"].nunique() < 2
            else "Pearson r: needs 2+ settings that both operations have"
        ),
        fontsize=10,
    )
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    save_figure(fig, path)


def nodeops(paths: list[str], out: Path | None) -> dict[str, Path]:
    table, out = load_settings_table(paths, out)
    if table["node_op"].isna().all():
        fail("no run under the paths says its node operation (metrics.json node_op or config.yaml)")
    settings = grid_table(table, by=("node_op",))
    pearson = nodeops_pearson(settings)
    written = {
        "nodeops": out / "nodeops.csv",
        "pearson": out / "nodeops_pearson.csv",
        "pairs": out / "nodeops_pairs.csv",
        "runs": out / "runs.csv",
        "plot": out / "nodeops.png",
    }
    instances = setting_instances(table, by="node_op")
    within = [  # the node operations of one generator setting, compared with each other (issue 29)
        (f"{s} · {a}", f"{s} · {b}")
        for s, part in settings.groupby("setting", sort=False)
        for a, b in itertools.combinations(_ordered_ops(part["node_op"]), 2)
        if f"{s} · {a}" in instances and f"{s} · {b}" in instances
    ]
    pair_table(instances, pairs=within).to_csv(written["pairs"], index=False)
    settings.to_csv(written["nodeops"], index=False)
    pearson.to_csv(written["pearson"], index=False)
    table.to_csv(written["runs"], index=False)
    plot_nodeops(settings, pearson, written["plot"])
    return written
