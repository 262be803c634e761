"""``grid`` (Fig. 3): top-1 mean ± std per generator setting, and error EDFs per generator."""

from __future__ import annotations

from pathlib import Path

from ..models.generators import GENERATORS, generator_title
from ..models.plotting import count, pyplot, save_figure
from .tables import finished, grid_table, load_settings_table


def plot_grid(grid, path: Path) -> None:
    plt = pyplot()
    gens = [g for g in GENERATORS if g in set(grid["generator"])]
    fig, axes = plt.subplots(
        1, len(gens), figsize=(4.2 * len(gens), 3.6), squeeze=False, sharey=True, constrained_layout=True
    )
    for ax, gen in zip(axes[0], gens):
        part = grid[grid["generator"] == gen]
        _plot_generator(ax, gen, part)
        ax.set_title(f"{generator_title(gen)}  ({count(int(part['n'].sum()), 'instance')})")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("test top-1 (%), mean ± std")
    save_figure(fig, path)


def _plot_generator(ax, gen: str, part) -> None:
    """One generator's panel: WS and WS-flex over P with a line per K, ER over P, BA over M (the paper's
    axes); any other generator one point per setting, named."""
    if gen in ("ws", "ws_flex"):
        for k, line in part.groupby("graph_k"):
            ax.errorbar(
                line["graph_p"],
                line["top1_mean"],
                yerr=line["top1_std"].fillna(0),
                marker="o",
                capsize=3,
                label=f"K={k:g}",
            )
        ax.legend(fontsize=8)
        ax.set_xlabel("P")
        ax.set_xlim(-0.05, 1.05)  # the paper's axes: WS P in [0, 1], ER P in [0.1, 0.8], BA M in [1, 7]
    elif gen in ("er", "ba"):
        x = part["graph_p"] if gen == "er" else part["graph_m"]
        ax.errorbar(x, part["top1_mean"], yerr=part["top1_std"].fillna(0), marker="o", capsize=3)
        ax.set_xlabel("P" if gen == "er" else "M")
        ax.set_xlim(*((0.05, 0.85) if gen == "er" else (0.5, max(7.5, float(x.max()) + 0.5))))
    else:
        x = list(range(len(part)))
        ax.errorbar(x, part["top1_mean"], yerr=part["top1_std"].fillna(0), marker="o", capsize=3, linestyle="none")
        ax.set_xticks(x, list(part["setting"]), rotation=25, ha="right", fontsize=7)
        ax.set_xlim(-0.5, len(x) - 0.5)


def plot_edf(table, path: Path) -> None:
    """Error EDF per generator over all its finished instances (pycls)."""
    import numpy as np

    plt = pyplot()
    ok = finished(table)
    ok = ok[ok["generator"].notna()]
    fig, ax = plt.subplots(figsize=(5, 3.6), constrained_layout=True)
    # Generators often share steps (the same error on a small test set): each is drawn thinner and dashed
    # differently from the one below it, so a line on top never hides another.
    gens = sorted(ok["generator"].unique(), key=lambda g: GENERATORS.index(g) if g in GENERATORS else len(GENERATORS))
    styles = [("-", 3.2), ("--", 2.2), (":", 1.6), ("-.", 1.2)]
    for i, gen in enumerate(gens):
        err = np.sort(100 - 100 * ok[ok["generator"] == gen]["test_acc1"].astype(float).to_numpy())
        style, width = styles[i % len(styles)]
        ax.step(
            np.r_[err[0], err],
            np.r_[0.0, np.arange(1, len(err) + 1) / len(err)],
            where="post",
            linestyle=style,
            linewidth=width,
            alpha=0.85,
            label=f"{generator_title(gen)} (n={len(err)})",
        )
    ax.set_xlabel("test error (%)")
    ax.set_ylabel("cumulative fraction of instances")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    save_figure(fig, path)


def grid(paths: list[str], out: Path | None) -> dict[str, Path]:
    table, out = load_settings_table(paths, out)
    settings = grid_table(table)
    written = {"grid": out / "grid.csv", "runs": out / "runs.csv", "plot": out / "grid.png", "edf": out / "edf.png"}
    settings.to_csv(written["grid"], index=False)
    table.to_csv(written["runs"], index=False)
    plot_grid(settings, written["plot"])
    plot_edf(table, written["edf"])
    return written
