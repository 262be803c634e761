"""Population results: mean ± std over seeds, grouped by every override except the seed (paper §4).

Runs after every ``-m`` sweep (Hydra callback) and as a command over any sweep directory, so a Slurm
sweep whose launching shell died can still be summarised:

    python -m randwire.summary multirun/randwire/2026-11-26_10-00-00-123456
"""

from __future__ import annotations

import csv
import io
import json
import math
import sys
from pathlib import Path
from typing import Any

import yaml

from .resources import sweep_plan

COLUMNS = [("test/acc1", "top-1 (%)", 100.0), ("test/acc5", "top-5 (%)", 100.0),
           ("params", "params (M)", 1e-6), ("flops", "FLOPs (M)", 1e-6),
           ("peak_train_memory_mb", "train step MB", 1.0)]


def _seed_of(overrides: list[str]) -> int | None:
    for o in overrides:
        if o.lstrip("+~").startswith("seed="):
            try:
                return int(o.split("=", 1)[1])
            except ValueError:
                return None
    return None


def collect(sweep_dir: str | Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Finished jobs (with ``metrics.json``) and failed or missing ones (a job folder without it)."""
    sweep_dir = Path(sweep_dir)
    if not sweep_dir.is_dir():
        raise FileNotFoundError(f"sweep directory {str(sweep_dir)!r} does not exist")
    done, failed = [], []
    job_dirs = sorted({p.parent.parent for p in sweep_dir.glob("*/.hydra/overrides.yaml")}
                      | {p.parent for p in sweep_dir.glob("*/metrics.json")}, key=lambda p: (len(p.name), p.name))
    for job in job_dirs:
        ov_file = job / ".hydra" / "overrides.yaml"
        overrides = [str(o) for o in (yaml.safe_load(ov_file.read_text()) or [])] if ov_file.exists() else []
        metrics_file = job / "metrics.json"
        m = json.loads(metrics_file.read_text()) if metrics_file.exists() else {}
        key = m.get("overrides")
        if key is None:
            key = sorted(o for o in overrides if _seed_of([o]) is None)
        row = {"job": job.name, "group": ",".join(key) or "defaults", "seed": m.get("seed", _seed_of(overrides))}
        if m.get("status", "ok") == "ok" and m:
            done.append({**m, **row})  # grouped by the overrides, like its failed siblings
        else:  # failed (status and reason recorded by the job), or killed before it wrote anything
            failed.append({**row, "status": m.get("status", "missing"),
                           "error": m.get("error", "no metrics.json: killed, or still running")})
    seen = {job.name for job in job_dirs}
    for num, overrides in enumerate(job for batch in (sweep_plan(sweep_dir) or []) for job in batch):
        if str(num) not in seen:  # planned by the sweep, never given a folder (the sweep was cut short)
            key = sorted(o for o in overrides if _seed_of([o]) is None)
            failed.append({"job": str(num), "group": ",".join(key) or "defaults", "seed": _seed_of(overrides),
                           "status": "never started",
                           "error": "the sweep stopped before this job started: rerun the sweep into this folder"})
    return done, failed


def provenance_lines(done: list[dict[str, Any]]) -> list[str]:
    """What the finished jobs ran on: each distinct code version, package set and hardware, with its jobs,
    so a grid assembled from runs of different code is visible at a glance."""
    def describe(p: dict[str, Any]) -> tuple[str, str, str]:
        code = _code(p, dirty=" (uncommitted changes)", missing="no git checkout")
        packages = ", ".join(f"{k} {v}" for k, v in (p.get("packages") or {}).items()
                             if v and k in ("randwire", "torch", "pytorch-lightning"))
        hw = p.get("hardware") or {}
        machine = f"{', '.join(hw.get('gpus') or []) or hw.get('cpu', '?')} x{p.get('world_size', 1)}"
        return code, packages, machine

    rows: dict[tuple[str, str, str], list[str]] = {}
    for r in done:
        if isinstance(r.get("provenance"), dict):
            rows.setdefault(describe(r["provenance"]), []).append(r["job"])
    if not rows:
        return []
    lines = ["", "Provenance" + (" (differs between jobs!)" if len(rows) > 1 else "") + ":", "",
             "| code | packages | hardware x world size | jobs |", "|---|---|---|---|"]
    lines += [f"| {c} | {p} | {h} | {','.join(jobs)} |" for (c, p, h), jobs in rows.items()]
    return lines


def _mean_std(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof = 1; NaN for a single run)."""
    n = len(values)
    mean = sum(values) / n
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else float("nan")
    return mean, std


def _code(origin: dict[str, Any], dirty: str = "+dirty", missing: str = "unknown") -> str:
    """A run's code version from its provenance record: the short commit, marked when the tree was dirty."""
    commit = origin.get("commit")
    return f"{commit[:10]}{dirty if origin.get('dirty') else ''}" if commit else missing


def summarize(done: list[dict[str, Any]], failed: list[dict[str, Any]]) -> list[dict[str, Any]]:
    groups: dict[str, list[dict[str, Any]]] = {}
    for row in done:
        groups.setdefault(row["group"], []).append(row)
    for row in failed:
        groups.setdefault(row["group"], [])
    out = []
    for group, rows in groups.items():
        entry: dict[str, Any] = {"group": group, "n": len(rows), "seeds": sorted(r["seed"] for r in rows),
                                 "failed_seeds": sorted((r["seed"] for r in failed if r["group"] == group),
                                                        key=lambda s: (s is None, s))}
        entry["code"] = sorted({_code(r.get("provenance") or {}) for r in rows})
        for key, _, _ in COLUMNS:
            vals = [float(r[key]) for r in rows if r.get(key) is not None]
            entry[key] = _mean_std(vals) if vals else (float("nan"), float("nan"))
        out.append(entry)
    return out


def _fmt(mean: float, std: float, scale: float) -> str:
    if math.isnan(mean):
        return "–"
    digits = {100.0: 2, 1.0: 1}.get(scale, 3)
    return f"{mean * scale:.{digits}f} ± {std * scale:.{digits}f}" if not math.isnan(std) else f"{mean * scale:.{digits}f}"


def to_markdown(table: list[dict[str, Any]], failed: list[dict[str, Any]] = (), done: list[dict[str, Any]] = ()) -> str:
    head = ["setting", "n", *[c[1] for c in COLUMNS], "seeds", "failed"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for e in table:
        cells = [e["group"], str(e["n"]), *[_fmt(*e[k], s) for k, _, s in COLUMNS],
                 ",".join(map(str, e["seeds"])), ",".join(map(str, e["failed_seeds"])) or "–"]
        lines.append("| " + " | ".join(cells) + " |")
    if failed:
        lines += ["", "Failed jobs (not averaged):", "", "| job | setting | seed | status | reason |", "|---|---|---|---|---|"]
        lines += [f"| {r['job']} | {r['group']} | {r['seed']} | {r['status']} | {r['error'].replace('|', '/')} |" for r in failed]
    lines += provenance_lines(list(done))
    return "\n".join(lines) + "\n"


def to_csv(table: list[dict[str, Any]]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["setting", "n", *[f"{k}_{s}" for k, _, _ in COLUMNS for s in ("mean", "std")], "seeds", "failed_seeds",
                "code"])
    for e in table:
        w.writerow([e["group"], e["n"], *[v for k, _, _ in COLUMNS for v in e[k]],
                    " ".join(map(str, e["seeds"])), " ".join(map(str, e["failed_seeds"])), " ".join(e.get("code", []))])
    return buf.getvalue()


def write_summary(sweep_dir: str | Path, quiet: bool = False) -> list[dict[str, Any]]:
    """Collect, summarise, write ``summary.md`` and ``summary.csv`` into the sweep dir, print the table."""
    sweep_dir = Path(sweep_dir)
    done, failed = collect(sweep_dir)
    table = summarize(done, failed)
    (sweep_dir / "summary.md").write_text(to_markdown(table, failed, done))
    (sweep_dir / "summary.csv").write_text(to_csv(table))
    if not quiet:
        _print(table, failed, sweep_dir)
    return table


def _print(table, failed, sweep_dir: Path) -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table(title=f"mean ± std over seeds · {sweep_dir}")
    for col in ["setting", "n", *[c[1] for c in COLUMNS]]:
        t.add_column(col, justify="left" if col == "setting" else "right")
    for e in table:
        t.add_row(e["group"], str(e["n"]), *[_fmt(*e[k], s) for k, _, s in COLUMNS])
    console = Console()
    if not console.is_terminal:
        console = Console(width=max(console.width, 130))
    console.print(t)
    for row in failed:
        console.print(f"[red]{row['status']}:[/red] job {row['job']} (seed={row['seed']}, {row['group']}): "
                      f"{row['error']} — not averaged", highlight=False)
    console.print(f"written: {sweep_dir / 'summary.md'}, {sweep_dir / 'summary.csv'}")


try:
    from hydra.experimental.callback import Callback
except ImportError:  # pragma: no cover - hydra is a dependency
    Callback = object  # type: ignore[assignment,misc]


# What the last sweep of this process left (read by the entry point for the sweep's exit code).
LAST_SWEEP: dict[str, Any] = {"dir": None, "jobs": 0, "failed": 0}


class MultirunSummary(Callback):
    """Hydra callback: summarise the sweep once every job has finished (jobs write their own metrics)."""

    def on_multirun_end(self, config, **kwargs) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        if not sweep_dir.is_dir():
            return
        table = write_summary(sweep_dir)
        done, failed = collect(sweep_dir)
        LAST_SWEEP.update(dir=str(sweep_dir), jobs=len(done) + len(failed), failed=len(failed))
        if "wandb" in (config.get("logger") or {}):
            _log_wandb_table(config, table, sweep_dir)


def _log_wandb_table(config, table, sweep_dir: Path) -> None:
    import wandb

    from .loggers import wandb_mode

    lcfg = dict(config.logger.wandb or {})
    mode = wandb_mode(lcfg.get("mode"))
    if mode == "disabled":
        return
    run = wandb.init(project=lcfg.get("project") or config.name, entity=lcfg.get("entity"), job_type="summary",
                     name=f"summary {sweep_dir.name}", tags=[f"sweep:{sweep_dir.name}"], dir=str(sweep_dir),
                     mode=mode, reinit="finish_previous")
    cols = ["setting", "n", *[f"{k} mean" for k, _, _ in COLUMNS], *[f"{k} std" for k, _, _ in COLUMNS]]
    data = [[e["group"], e["n"], *[e[k][0] for k, _, _ in COLUMNS], *[e[k][1] for k, _, _ in COLUMNS]] for e in table]
    run.log({"summary": wandb.Table(columns=cols, data=data)})
    run.finish()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1 or argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    try:
        table = write_summary(argv[0])
    except FileNotFoundError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if not table:
        print(f"error: no jobs (folders with .hydra/overrides.yaml or metrics.json) under {argv[0]}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
