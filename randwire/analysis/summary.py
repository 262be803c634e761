"""Population results: mean ± std over seeds, grouped by every override except the seed (paper §4).

Runs after every ``-m`` sweep (Hydra callback) and as a command over one or several sweep folders (or a
parent of several), so a Slurm sweep whose launching shell died can still be summarised, and a grid that
spans several sweeps is one table:

    python -m randwire.analysis.summary multirun/randwire/2026-11-26_10-00-00-123456
    python -m randwire.analysis.summary grid/er grid/ba grid/ws --out grid      # or: python -m randwire.analysis.summary grid

Writes ``summary.md`` and ``summary.csv`` (one row per setting: n, mean ± std, failed seeds) and
``runs.csv`` (one row per job, finished or not: setting, seed, status, reason, metrics and the graph
statistics of its stages; pandas or a spreadsheet reads it as is) into the sweep folder, or ``--out``.
"""

from __future__ import annotations

import csv
import io
import math
import sys
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback

from ..training.detection.labels import AP_LABELS
from .sweeps import collect_many, shared_overrides, short_setting

COLUMNS = [
    ("test/acc1", "top-1 (%)", 100.0),
    ("test/acc5", "top-5 (%)", 100.0),
    *((f"test/{key}", f"{AP_LABELS[key]} (%)", 100.0) for key in ("map", "map_50", "map_75")),
    ("params", "params (M)", 1e-6),
    ("flops", "FLOPs (M)", 1e-6),
    ("peak_train_memory_mb", "train step MB", 1.0),
]


def provenance_lines(done: list[dict[str, Any]]) -> list[str]:
    """What the finished jobs ran on: each distinct code version, package set and hardware, with its jobs,
    so a grid assembled from runs of different code is visible at a glance."""

    def describe(p: dict[str, Any]) -> tuple[str, str, str]:
        code = _code(p, dirty=" (uncommitted changes)", missing="no git checkout")
        packages = ", ".join(
            f"{k} {v}"
            for k, v in (p.get("packages") or {}).items()
            if v and k in ("randwire", "torch", "pytorch-lightning")
        )
        hw = p.get("hardware") or {}
        machine = f"{', '.join(hw.get('gpus') or []) or hw.get('cpu', '?')} x{p.get('world_size', 1)}"
        return code, packages, machine

    rows: dict[tuple[str, str, str], list[str]] = {}
    for r in done:
        if isinstance(r.get("provenance"), dict):
            rows.setdefault(describe(r["provenance"]), []).append(r["job"])
    if not rows:
        return []
    lines = [
        "",
        "Provenance" + (" (differs between jobs!)" if len(rows) > 1 else "") + ":",
        "",
        "| code | packages | hardware x world size | jobs |",
        "|---|---|---|---|",
    ]
    lines += [f"| {c} | {p} | {h} | {','.join(jobs)} |" for (c, p, h), jobs in rows.items()]
    return lines


def _code(origin: dict[str, Any], dirty: str = "+dirty", missing: str = "unknown") -> str:
    """A run's code version from its provenance record: the short commit, marked when the tree was dirty."""
    commit = origin.get("commit")
    return f"{commit[:10]}{dirty if origin.get('dirty') else ''}" if commit else missing


TASK_METRICS = {"test/acc1", "test/acc5", "test/map", "test/map_50", "test/map_75"}


def columns_of(done: list[dict[str, Any]]) -> list[tuple[str, str, float]]:
    """COLUMNS less the task metrics no finished job has: top-1/top-5 for classifiers, AP for detectors
    (a sweep with none finished shows the classifier's)."""
    has = {key for row in done for key in TASK_METRICS if row.get(key) is not None} or {"test/acc1", "test/acc5"}
    return [column for column in COLUMNS if column[0] not in TASK_METRICS or column[0] in has]


def _table_columns(table: list[dict[str, Any]]) -> list[tuple[str, str, float]]:
    return [column for column in COLUMNS if not table or column[0] in table[0]]


def summarize(done: list[dict[str, Any]], failed: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One entry per setting: its finished seeds, failed seeds, code versions, and mean ± std of the
    columns its jobs have (:func:`columns_of`)."""
    import pandas as pd

    from .compare import mean_ci
    from .tables import mean_std

    nan = float("nan")
    columns = columns_of(done)
    keys = [key for key, _, _ in columns]
    frame = pd.DataFrame(
        [
            {"group": r["group"], **{k: float(r[k]) if r.get(k) is not None else float("nan") for k in keys}}
            for r in done
        ],
        columns=["group", *keys],
    )
    stats = mean_std(frame, ["group"], keys)
    groups: dict[str, list[dict[str, Any]]] = {}
    for row in done:
        groups.setdefault(row["group"], []).append(row)
    for row in failed:
        groups.setdefault(row["group"], [])
    out = []
    for group, rows in groups.items():
        entry: dict[str, Any] = {
            "group": group,
            "n": len(rows),
            "seeds": sorted(r["seed"] for r in rows),
            "failed_seeds": sorted((r["seed"] for r in failed if r["group"] == group), key=lambda s: (s is None, s)),
        }
        entry["code"] = sorted({_code(r.get("provenance") or {}) for r in rows})
        main = next((k for k in ("test/acc1", "test/map") if k in keys), None)  # the CI's metric: the first
        entry["ci95"] = mean_ci([float(r[main]) for r in rows if r.get(main) is not None]) if main else (nan, nan)
        for key, _, _ in columns:
            has = group in stats.index
            entry[key] = (
                (float(stats.loc[group, (key, "mean")]), float(stats.loc[group, (key, "std")]))
                if has
                else (float("nan"), float("nan"))
            )
        out.append(entry)
    return out


CI_HEAD = "95% CI (t, %)"  # of the mean of the first metric (top-1, or AP), over the setting's instances


def _fmt_ci(ci: tuple[float, float]) -> str:
    return "–" if math.isnan(ci[0]) else f"{100 * ci[0]:.2f} – {100 * ci[1]:.2f}"


def _fmt(mean: float, std: float, scale: float) -> str:
    if math.isnan(mean):
        return "–"
    digits = {100.0: 2, 1.0: 1}.get(scale, 3)
    return (
        f"{mean * scale:.{digits}f} ± {std * scale:.{digits}f}" if not math.isnan(std) else f"{mean * scale:.{digits}f}"
    )


def to_markdown(table: list[dict[str, Any]], failed: list[dict[str, Any]] = (), done: list[dict[str, Any]] = ()) -> str:
    shared = shared_overrides([e["group"] for e in table])
    columns = _table_columns(table)
    head = ["setting", "n", *[c[1] for c in columns], CI_HEAD, "seeds", "failed"]
    lines = [f"Every setting below also has: {','.join(shared)}", ""] if shared else []
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for e in table:
        cells = [
            short_setting(e["group"], shared),
            str(e["n"]),
            *[_fmt(*e[k], s) for k, _, s in columns],
            _fmt_ci(e["ci95"]),
            ",".join(map(str, e["seeds"])),
            ",".join(map(str, e["failed_seeds"])) or "–",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    if failed:
        lines += [
            "",
            "Failed jobs (not averaged):",
            "",
            "| job | setting | seed | status | reason |",
            "|---|---|---|---|---|",
        ]
        lines += [
            f"| {r['job']} | {short_setting(r['group'], shared)} | {r['seed']} | {r['status']} | {r['error'].replace('|', '/')} |"
            for r in failed
        ]
    lines += slurm_lines([*done, *failed])
    lines += provenance_lines(list(done))
    return "\n".join(lines) + "\n"


def slurm_lines(rows: list[dict[str, Any]]) -> list[str]:
    """Slurm's own record of each job (``slurm_end``, where the cluster keeps accounting): how it ended,
    where, for how long, and its memory: the most any step used against what it asked."""
    ends = sorted(((r["job"], r["slurm_end"]) for r in rows if r.get("slurm_end")), key=lambda x: (len(x[0]), x[0]))
    if not ends:
        return []

    def mb(value: Any) -> str:
        return "–" if value is None else f"{value:.0f}"

    lines = [
        "",
        "Slurm's record (sacct):",
        "",
        "| job | state | nodes | elapsed | MaxRSS MB | ReqMem MB |",
        "|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {job} | {e['state']} | {e['nodes']} | {e['elapsed']} | {mb(e.get('max_rss_mb'))} | {mb(e.get('req_mem_mb'))} |"
        for job, e in ends
    ]
    return lines


def to_csv(table: list[dict[str, Any]]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf)
    columns = _table_columns(table)
    w.writerow(
        ["setting", "n", *[f"{k}_{s}" for k, _, _ in columns for s in ("mean", "std")], "ci95_low", "ci95_high"]
        + ["seeds", "failed_seeds", "code"]
    )
    for e in table:
        w.writerow(
            [
                e["group"],
                e["n"],
                *[v for k, _, _ in columns for v in e[k]],
                *e["ci95"],
                " ".join(map(str, e["seeds"])),
                " ".join(map(str, e["failed_seeds"])),
                " ".join(e.get("code", [])),
            ]
        )
    return buf.getvalue()


def write_summary(
    paths: str | Path | list[str | Path], quiet: bool = False, out: str | Path | None = None
) -> list[dict[str, Any]]:
    """Collect the jobs of every sweep at or below ``paths``, summarise, write ``summary.md``,
    ``summary.csv`` and ``runs.csv`` into ``out`` (default: the sweep folder, or the one path given, or
    the first path's parent), print the table."""
    paths = [paths] if isinstance(paths, (str, Path)) else list(paths)
    done, failed, _ = collect_many(paths)
    out = Path(out) if out is not None else (Path(paths[0]) if len(paths) == 1 else Path(paths[0]).parent)
    out.mkdir(parents=True, exist_ok=True)
    table = summarize(done, failed)
    (out / "summary.md").write_text(to_markdown(table, failed, done))
    (out / "summary.csv").write_text(to_csv(table))
    if done or failed:
        from .tables import job_table

        job_table(done, failed).to_csv(out / "runs.csv", index=False)
    if not quiet:
        _print(table, failed, out)
    return table


def _print(table, failed, sweep_dir: Path) -> None:
    from rich.markup import escape
    from rich.table import Table

    from ..training.cli import wide_console

    shared = shared_overrides([e["group"] for e in table])
    t = Table(  # settings are escaped: rich reads graph.paths=[a.txt] as markup and drops it
        title=escape(f"mean ± std over seeds · {sweep_dir}"),
        caption=escape(f"every setting also has: {','.join(shared)}") if shared else None,
    )
    columns = _table_columns(table)
    for col in ["setting", "n", *[c[1] for c in columns], CI_HEAD]:
        t.add_column(
            col, justify="left" if col == "setting" else "right", overflow="fold" if col == "setting" else "ellipsis"
        )  # a setting wraps, never cut
    for e in table:
        cells = [_fmt(*e[k], s) for k, _, s in columns]
        t.add_row(escape(short_setting(e["group"], shared)), str(e["n"]), *cells, _fmt_ci(e["ci95"]))
    console = wide_console()
    console.print(t)
    for row in failed:
        console.print(
            f"[red]{row['status']}:[/red] job {row['job']} (seed={row['seed']}, "
            f"{escape(short_setting(row['group'], shared))}): {escape(str(row['error']))} — not averaged",
            highlight=False,
        )
    console.print(f"written: {sweep_dir / 'summary.md'}, {sweep_dir / 'summary.csv'}, {sweep_dir / 'runs.csv'}")


class MultirunSummary(Callback):
    """Hydra callback: summarise the sweep once every job has finished (jobs write their own metrics)."""

    def on_multirun_end(self, config, **kwargs) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        if not sweep_dir.is_dir():
            return
        table = write_summary(sweep_dir)
        failed = sum(len(e["failed_seeds"]) for e in table)  # every job is in its setting's row: n or failed
        if "wandb" in (config.get("logger") or {}):
            _log_wandb_table(config, table, sweep_dir)
        if failed:  # the sweep ran to its end; its exit code says what its folder's summary found
            jobs = sum(e["n"] for e in table) + failed
            print(f"error: {failed} of {jobs} jobs failed (listed in {sweep_dir}/summary.md)", file=sys.stderr)
            raise SystemExit(1)  # not an Exception: Hydra's callback runner turns those into a warning


def _log_wandb_table(config, table, sweep_dir: Path) -> None:
    import wandb
    from omegaconf import OmegaConf

    from ..training.loggers import wandb_mode

    # Only the plain keys: the rest (save_dir, seed) interpolate the job's runtime config, which is gone
    # after the sweep (resolving them raised InterpolationResolutionError and the summary run was lost).
    lcfg = {key: OmegaConf.select(config, f"logger.wandb.{key}", default=None) for key in ("project", "entity", "mode")}
    mode = wandb_mode(lcfg.get("mode"))
    if mode == "disabled":
        return
    run = wandb.init(
        project=lcfg.get("project") or config.name,
        entity=lcfg.get("entity"),
        job_type="summary",
        name=f"summary {sweep_dir.name}",
        tags=[f"sweep:{sweep_dir.name}"],
        dir=str(sweep_dir),
        mode=mode,
        reinit="finish_previous",
    )
    keys = [k for k, _, _ in _table_columns(table)]
    cols = ["setting", "n", *[f"{k} mean" for k in keys], *[f"{k} std" for k in keys], "ci95 low", "ci95 high"]
    data = [[e["group"], e["n"], *[e[k][0] for k in keys], *[e[k][1] for k in keys], *e["ci95"]] for e in table]
    run.log({"summary": wandb.Table(columns=cols, data=data)})
    run.finish()


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m randwire.analysis.summary",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("paths", nargs="+", metavar="PATH", help="sweep folders, or a parent of several sweeps")
    parser.add_argument("--out", default=None, help="where to write (default: the sweep folder; several: their parent)")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    try:
        write_summary(args.paths, out=args.out)
    except FileNotFoundError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except OSError as err:
        print(f"error: --out {args.out!r} is not writable ({err.strerror})", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
