"""``grid`` (Fig. 3): top-1 mean ± std per generator setting, and error EDFs per generator."""

from __future__ import annotations

from pathlib import Path

from ..models.generators import find_generator, generator_title
from ..models.plotting import count, pyplot, save_figure
from .compare import mean_ci, pair_table, verdict_lines
from .tables import finished, generator_key, generator_order, grid_table, load_settings_table, setting_name


def plot_grid(grid, path: Path) -> None:
    plt = pyplot()
    gens = generator_order(grid["generator"])
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
    """One generator's panel on its record's axes: WS and WS-flex over P with a line per K, ER over P, BA over
    M (the paper's axes); a generator without axes one point per setting, named."""
    known = find_generator(gen)
    axes = [f"graph_{k}" for k in (known.axes if known else ())]
    if not axes or not all(k in part for k in axes):
        x = list(range(len(part)))
        ax.errorbar(x, part["top1_mean"], yerr=part["top1_std"].fillna(0), marker="o", capsize=3, linestyle="none")
        ax.set_xticks(x, list(part["setting"]), rotation=25, ha="right", fontsize=7)
        ax.set_xlim(-0.5, len(x) - 0.5)
        return
    lines = part.groupby(axes[1]) if len(axes) > 1 else [(None, part)]
    for value, line in lines:
        line = line.sort_values(axes[0])
        ax.errorbar(
            line[axes[0]],
            line["top1_mean"],
            yerr=line["top1_std"].fillna(0),
            marker="o",
            capsize=3,
            label=None if value is None else f"{axes[1][6:].upper()}={value:g}",
        )
    if len(axes) > 1:
        ax.legend(fontsize=8)
    ax.set_xlabel(axes[0][6:].upper())
    if known.x_range:  # the paper's axes (WS P in [0, 1], ER P in [0.1, 0.8], BA M in [1, 7]), widened to the data
        x, (low, high) = part[axes[0]].astype(float), known.x_range
        margin = 0.05 * (high - low)
        ax.set_xlim(min(low, float(x.min()) - margin), max(high, float(x.max()) + margin))


def plot_edf(table, path: Path) -> None:
    """Error EDF per generator over all its finished instances (pycls); each networkx function and each file
    set is a generator of its own (:func:`generator_key`)."""
    import numpy as np

    plt = pyplot()
    ok = finished(table)
    ok = ok[ok["generator"].notna()]
    fig, ax = plt.subplots(figsize=(5, 3.6), constrained_layout=True)
    # Generators often share steps (the same error on a small test set): each is drawn thinner and dashed
    # differently from the one below it, so a line on top never hides another.
    ok = ok.assign(curve=ok.apply(generator_key, axis=1))
    order = generator_order(ok["generator"])
    gens = sorted(
        ok["curve"].unique(),
        key=lambda c: (order.index(c.split(":")[0]) if c.split(":")[0] in order else len(order), c),
    )
    styles = [("-", 3.2), ("--", 2.2), (":", 1.6), ("-.", 1.2)]
    every = np.sort(100 - 100 * ok["test_acc1"].astype(float).to_numpy())
    grid_x = np.linspace(every[0], every[-1], 200) if len(every) else every
    for i, gen in enumerate(gens):
        err = np.sort(100 - 100 * ok[ok["curve"] == gen]["test_acc1"].astype(float).to_numpy())
        style, width = styles[i % len(styles)]
        low, high = edf_band(err, grid_x)
        if low is not None:  # pycls: the EDF's bootstrap band over instances
            ax.fill_between(grid_x, low, high, step="post", alpha=0.15, color=f"C{i}", linewidth=0)
        ax.step(
            np.r_[err[0], err],
            np.r_[0.0, np.arange(1, len(err) + 1) / len(err)],
            where="post",
            linestyle=style,
            linewidth=width,
            color=f"C{i}",
            alpha=0.85,
            label=f"{generator_title(gen) if find_generator(gen) else gen} (n={len(err)})",
        )
    ax.set_xlabel("test error (%)")
    ax.set_ylabel("cumulative fraction of instances")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    save_figure(fig, path)


def edf_band(err, grid_x, resamples: int = 1000, seed: int = 0):
    """The 95% bootstrap band of an error EDF (instances resampled, seeded) on ``grid_x``; None for fewer
    than 2 instances."""
    import numpy as np

    if len(err) < 2:
        return None, None
    rng = np.random.default_rng(seed)
    samples = err[rng.integers(0, len(err), (resamples, len(err)))]
    curves = (samples[:, :, None] <= grid_x[None, None, :]).mean(axis=1)
    return np.percentile(curves, 2.5, axis=0), np.percentile(curves, 97.5, axis=0)


def setting_instances(table, by: str | None = None) -> dict[str, dict[int, float]]:
    """Each setting's finished instances: seed → test top-1 in %; with ``by`` (a column such as node_op),
    one entry per setting and value, named ``<setting> · <value>``."""
    ok = finished(table)
    ok = ok[ok["generator"].notna()]
    names = list(ok.apply(setting_name, axis=1)) if len(ok) else []
    if by is not None:
        names = [f"{name} · {value}" for name, value in zip(names, ok[by])]
    out: dict[str, dict[int, float]] = {}
    for name, seed, acc in zip(names, ok["seed"], ok["test_acc1"]):
        out.setdefault(name, {})[int(seed)] = 100 * float(acc)
    return out


def grid(paths: list[str], out: Path | None) -> dict[str, Path]:
    table, out = load_settings_table(paths, out)
    settings = grid_table(table)
    written = {"grid": out / "grid.csv", "runs": out / "runs.csv", "plot": out / "grid.png", "edf": out / "edf.png"}
    written.update(pairs=out / "grid_pairs.csv", verdicts=out / "grid_verdicts.md")
    instances = setting_instances(table)
    cis = {name: mean_ci(list(seeds.values())) for name, seeds in instances.items()}
    settings["ci_low"] = [cis.get(name, (float("nan"),) * 2)[0] for name in settings["setting"]]
    settings["ci_high"] = [cis.get(name, (float("nan"),) * 2)[1] for name in settings["setting"]]
    settings.to_csv(written["grid"], index=False)
    table.to_csv(written["runs"], index=False)
    pairs = pair_table(instances)
    pairs.to_csv(written["pairs"], index=False)
    lines = verdict_lines(settings, pairs, instances)
    tested = pairs[pairs["p_value"].notna()]
    if len(tested):  # issue 29 item 3: common random numbers, stated
        shared = int((tested["test"] == "paired t").sum())
        lines.append(
            f"{shared} of {len(tested)} compared pairs ran the same seeds (common random numbers: the same data "
            f"order and initial-weight streams) and use the paired t-test; {len(tested) - shared} Welch's"
        )
    written["verdicts"].write_text(
        "# Which settings can be told apart\n\nTop-1 over network instances; pairs in grid_pairs.csv (Welch's t-test, "
        "or paired where both ran the same seeds; Holm-corrected over all pairs, alpha 0.05; "
        "ci_low/ci_high: the same test's 95% CI of the difference, boot_low/boot_high: a seeded bootstrap over "
        "instances beside it).\n\n" + "".join(f"- {line}\n" for line in lines)
    )
    for line in lines:
        print(line)
    plot_grid(settings, written["plot"])
    plot_edf(table, written["edf"])
    return written
