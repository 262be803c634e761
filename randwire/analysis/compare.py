"""Is one setting better than another, or is that noise? Every pair of settings compared over their network
instances (the paper's unit: 5 random graphs per setting): the difference of mean top-1, a p-value (Welch's
t-test; the paired t-test where both settings ran the same seeds, i.e. shared data order and init streams)
with that test's own 95% CI of the difference, a seeded bootstrap 95% CI beside it, and a Holm-corrected
verdict over all pairs of one output file.

Reading: the CI to read is the t-test's (``ci_low``/``ci_high``): it excludes 0 exactly where the unadjusted
p < 0.05, and covers at its level. A bootstrap over 5 instances is too narrow (percentile and BCa alike
covered 86.5% of 400 seeded normal samples at n=5, the t-interval 96.5%), so it is only reported beside it
(``boot_low``/``boot_high``, with the resamples and the seed). Instances are what is resampled, never images.
Torch-free (numpy, scipy, pandas).
"""

from __future__ import annotations

import itertools
import math
from typing import Any, NamedTuple

import numpy as np

ALPHA = 0.05
RESAMPLES = 10_000
BOOTSTRAP_SEED = 0


class Comparison(NamedTuple):
    diff: float
    ci_low: float  # the t-test's 95% CI of the difference
    ci_high: float
    p_value: float
    test: str
    boot_low: float  # the bootstrap percentile 95% CI over instances, beside it
    boot_high: float


def mean_ci(values, confidence: float = 0.95) -> tuple[float, float]:
    """The t-interval of a mean over instances; NaN for fewer than 2."""
    from scipy import stats

    x = np.asarray(values, dtype=float)
    if len(x) < 2:
        return float("nan"), float("nan")
    half = stats.t.ppf(0.5 + confidence / 2, len(x) - 1) * x.std(ddof=1) / math.sqrt(len(x))
    return float(x.mean() - half), float(x.mean() + half)


def compare(a: dict[int, float], b: dict[int, float], resamples: int = RESAMPLES, seed: int = BOOTSTRAP_SEED):
    """Two settings' instances (seed → top-1 in %): diff of means (a − b); the t-test's p-value and its 95%
    CI of the difference (paired where both ran exactly the same seeds); the bootstrap percentile CI over
    instances; which test."""
    from scipy import stats

    rng = np.random.default_rng(seed)
    paired = len(a) >= 2 and set(a) == set(b)
    diff = float(np.mean(list(a.values())) - np.mean(list(b.values())))
    if paired:
        x, y = np.array([a[s] for s in sorted(a)]), np.array([b[s] for s in sorted(a)])
        d = x - y
        boot = d[rng.integers(0, len(d), (resamples, len(d)))].mean(axis=1)
        spread = d.std() > 0
        test = stats.ttest_rel(x, y) if spread else None
    else:
        x, y = np.array(list(a.values())), np.array(list(b.values()))
        boot = x[rng.integers(0, len(x), (resamples, len(x)))].mean(axis=1)
        boot -= y[rng.integers(0, len(y), (resamples, len(y)))].mean(axis=1)
        spread = x.std() > 0 or y.std() > 0
        test = stats.ttest_ind(x, y, equal_var=False) if spread else None
    if test is not None:
        p, (low, high) = float(test.pvalue), test.confidence_interval(0.95)
    else:  # no spread to test against: every instance differs by the same amount (or none)
        p, low, high = (0.0 if diff else 1.0), diff, diff
    boot_low, boot_high = np.percentile(boot, [2.5, 97.5])
    return Comparison(
        diff, float(low), float(high), p, "paired t" if paired else "Welch t", float(boot_low), float(boot_high)
    )


def holm(p_values: list[float]) -> list[float]:
    """Holm's step-down adjustment (a family: all pairs of one output file)."""
    order = np.argsort(p_values)
    adjusted, running = [0.0] * len(p_values), 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(p_values) - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


def pair_table(instances: dict[str, dict[int, float]], alpha: float = ALPHA, seed: int = BOOTSTRAP_SEED, pairs=None):
    """Every pair of settings (``setting → {seed: top-1 %}``; or the given ``pairs`` of names), one row each,
    Holm-corrected over them all (one family per output file)."""
    import pandas as pd

    rows: list[dict[str, Any]] = []
    for name_a, name_b in pairs if pairs is not None else itertools.combinations(instances, 2):
        a, b = instances[name_a], instances[name_b]
        row = {"a": name_a, "b": name_b, "n_a": len(a), "n_b": len(b)}
        if min(len(a), len(b)) < 2:
            rows.append({**row, "diff": float("nan"), "verdict": "too few instances"})
            continue
        rows.append({**row, **compare(a, b, seed=seed)._asdict()})
    columns = ["a", "b", "n_a", "n_b", "diff", "ci_low", "ci_high", "p_value", "test", "boot_low", "boot_high"]
    columns.append("verdict")
    table = pd.DataFrame(rows, columns=columns).astype({"verdict": object, "test": object})
    tested = table["p_value"].notna()
    if tested.any():
        table.loc[tested, "p_holm"] = holm(list(table.loc[tested, "p_value"]))
        n = table.loc[tested, ["n_a", "n_b"]].min(axis=1)
        table.loc[tested, "verdict"] = [
            "differ" if p < alpha else f"not distinguishable at n={k}" for p, k in zip(table.loc[tested, "p_holm"], n)
        ]
    return table.assign(alpha=alpha, resamples=RESAMPLES, bootstrap_seed=seed)


def _sort_by_verdict(pairs, best: str, others: list[str]) -> dict[str, list[str]]:
    """The ``others`` by their pair's verdict against ``best``: differ, same (indistinguishable), few."""
    said: dict[str, list[str]] = {"differ": [], "same": [], "few": []}
    for other in others:
        pair = (pairs["a"].isin([best, other])) & (pairs["b"].isin([best, other]))
        verdict = pairs[pair].iloc[0]["verdict"]
        said["few" if verdict == "too few instances" else "differ" if verdict == "differ" else "same"].append(other)
    return said


def verdict_lines(settings, pairs, instances: dict[str, dict[int, float]] | None = None) -> list[str]:
    """One line per generator: its best setting, those indistinguishable from it (with the instances each that
    would resolve the widest such gap at the observed std), those with too few instances."""
    from ..models.generators import generator_title

    lines = []
    for generator, part in settings.groupby("generator", sort=False):
        part = part[part["n"] > 0]
        if part.empty:
            continue
        title = generator_title(generator)
        best = part.sort_values("top1_mean", ascending=False).iloc[0]["setting"]
        if len(part) == 1:
            lines.append(f"{title}: {best} (one setting)")
            continue
        said = _sort_by_verdict(pairs, best, [other for other in part["setting"] if other != best])
        parts = [
            f"indistinguishable from it: {', '.join(said['same'])}"
            if said["same"]
            else "no setting is indistinguishable from it"
        ]
        hint = _resolve_hint(best, said["same"], instances)
        if hint:
            parts.append(hint)
        if said["few"]:
            parts.append(f"too few instances to tell: {', '.join(said['few'])}")
        lines.append(f"{title}: best {best}; " + "; ".join(parts))
    return lines + _overall_line(settings, pairs, instances)


def _resolve_hint(best: str, same: list[str], instances: dict[str, dict[int, float]] | None) -> str | None:
    """How many instances each would resolve the widest gap between ``best`` and a setting indistinguishable
    from it, at the pooled std of the two (item 2 of issue 29: the hint beside a "not distinguishable")."""
    if not same or not instances:
        return None
    mean = {s: np.mean(list(instances[s].values())) for s in [best, *same]}
    gaps = {other: abs(mean[best] - mean[other]) for other in same}
    widest = max(gaps, key=gaps.get)
    needed = instances_needed(gaps[widest], pooled_std([list(instances[s].values()) for s in (best, widest)]))
    if not needed:
        return None
    return f"~{needed} instances each would resolve its {gaps[widest]:.2g}-point gap to {widest} at this std"


def _overall_line(settings, pairs, instances: dict[str, dict[int, float]] | None = None) -> list[str]:
    """Across generators: the best setting of all, and which generators' best settings it can be told from."""
    ok = settings[settings["n"] > 0]
    if ok["generator"].nunique() < 2:
        return []
    best = ok.sort_values("top1_mean", ascending=False).iloc[0]
    others = [
        part.sort_values("top1_mean", ascending=False).iloc[0]["setting"]
        for generator, part in ok.groupby("generator", sort=False)
        if generator != best["generator"]
    ]
    said = _sort_by_verdict(pairs, best["setting"], others)
    parts = [
        f"{label}: {', '.join(said[key])}"
        for key, label in (
            ("differ", "better than the best of"),
            ("same", "indistinguishable from"),
            ("few", "too few instances to tell from"),
        )
        if said[key]
    ]
    hint = _resolve_hint(best["setting"], said["same"], instances)
    return [f"best of all: {best['setting']}; " + "; ".join(parts + ([hint] if hint else []))]


def power_of(n: int, diff: float, std: float, alpha: float = ALPHA) -> float:
    """The power of a two-sided two-sample t-test with ``n`` instances each, at a true difference ``diff``
    and a common std ``std`` (noncentral t)."""
    from scipy import stats

    df = 2 * n - 2
    nc = abs(diff) / (std * math.sqrt(2 / n))
    t = stats.t.ppf(1 - alpha / 2, df)
    return float(1 - stats.nct.cdf(t, df, nc) + stats.nct.cdf(-t, df, nc))


def instances_needed(
    diff: float, std: float, alpha: float = ALPHA, power: float = 0.8, most: int = 10_000
) -> int | None:
    """The fewest instances per setting that resolve ``diff`` points at ``std`` with that power; None where
    there is no spread to work with, or more than ``most`` would be needed."""
    if not (std > 0 and diff != 0 and math.isfinite(std)):
        return None
    n = 2
    while n <= most and power_of(n, diff, std, alpha) < power:
        n = n + 1 if n < 64 else int(n * 1.1)
    return n if n <= most else None


def pooled_std(groups) -> float:
    """The std within settings, pooled over them (each weighted by its n - 1)."""
    groups = [np.asarray(g, dtype=float) for g in groups if len(g) > 1]
    dof = sum(len(g) - 1 for g in groups)
    return float(math.sqrt(sum(((g - g.mean()) ** 2).sum() for g in groups) / dof)) if dof else float("nan")
