"""``stats``: graph statistics of every run vs its accuracy (the question the paper leaves open)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..models.plotting import pyplot, save_figure
from .sweeps import shared_overrides, short_setting
from .tables import STATS, finished, load_table, out_dir, pearson, setting_name


def correlations(table) -> Any:
    """Pearson r of each mean statistic with test top-1 over the finished runs (NaN where constant)."""
    import pandas as pd

    ok = finished(table)
    return pd.DataFrame(
        [
            {"statistic": f"mean_{key}", "pearson_r": pearson(ok[f"mean_{key}"], ok["test_acc1"]), "runs": len(ok)}
            for key in STATS
        ]
    )


def plot_stats(table, corr, path: Path) -> None:
    plt = pyplot()
    ok = finished(table).copy()
    if "generator" in ok and ok["generator"].notna().all():  # the paper's names: ER(0.2), BA(5), WS(4, 0.75)
        ok["setting"] = ok.apply(setting_name, axis=1)
    shared = shared_overrides([str(s) for s in ok["setting"].dropna()])

    def label(setting: str) -> str:  # what tells the settings apart (overrides they all share left out)
        return short_setting(setting, shared)[:60]

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
    save_figure(fig, path)


def stats(paths: list[str], out: Path | None) -> dict[str, Path]:
    table = load_table(paths)
    out = out_dir(paths, out)
    corr = correlations(table)
    written = {"runs": out / "runs.csv", "correlations": out / "correlations.csv", "plot": out / "stats.png"}
    table.to_csv(written["runs"], index=False)
    corr.to_csv(written["correlations"], index=False)
    plot_stats(table, corr, written["plot"])
    return written
