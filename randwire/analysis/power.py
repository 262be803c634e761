"""``power``: how many instances per setting tell apart a difference of X points, at the std over instances
that a sweep observed (two-sided two-sample t-test; alpha and power given)."""

from __future__ import annotations

from pathlib import Path

from .compare import ALPHA, instances_needed, pooled_std
from .grid import setting_instances
from .tables import load_settings_table


def power(
    paths: list[str], out: Path | None, diff: float, alpha: float = ALPHA, target: float = 0.8
) -> dict[str, Path]:
    """One row per setting (its instances and std) and one for them all pooled, with the instances needed."""
    import pandas as pd

    table, out = load_settings_table(paths, out)
    instances = setting_instances(table)
    rows = []
    for name, seeds in instances.items():
        std = pooled_std([list(seeds.values())])
        rows.append(
            {"setting": name, "n": len(seeds), "std": std, "needed": instances_needed(diff, std, alpha, target)}
        )
    pooled = pooled_std([list(s.values()) for s in instances.values()])
    needed = instances_needed(diff, pooled, alpha, target)
    rows.append({"setting": "(pooled)", "n": sum(len(s) for s in instances.values()), "std": pooled, "needed": needed})
    frame = pd.DataFrame(rows).assign(diff=diff, alpha=alpha, power=target)
    written = {"power": out / "power.csv"}
    frame.to_csv(written["power"], index=False)
    said = f"~{needed} instances per setting" if needed else "no estimate (fewer than 2 instances, or no spread)"
    print(
        f"to tell apart {diff:g} points at the pooled std over instances {pooled:.3g} (alpha {alpha:g}, power "
        f"{target:g}, two-sided t-test): {said}"
    )
    return written
