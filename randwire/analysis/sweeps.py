"""The jobs of one or several sweep folders: finished, failed, killed and never started.

A Fig. 3 grid spans several sweeps (``graph.p`` is not a BA key), so the summary and every analysis take
several sweep folders or a parent of them. Jobs are found from what Hydra and the runs wrote: job folders
(``.hydra/overrides.yaml``, ``metrics.json``) and the sweep's plan in ``multirun.yaml`` (jobs that never got
a folder). No torch, no Lightning.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from ..training.records import read_metrics, seed_of, setting_of
from ..training.resources import sweep_plan


def shared_overrides(settings: list[str]) -> list[str]:
    """The overrides every setting of a table has (settings as ``a=1,b=2`` strings): said once above it, so
    each row shows what tells it apart (a node-op sweep's rows would otherwise differ only past the width
    of a terminal). None when there is one setting."""
    names = list(dict.fromkeys(settings))
    if len(names) < 2 or "defaults" in names:
        return []
    common = set.intersection(*(set(g.split(",")) for g in names))
    return [part for part in names[0].split(",") if part in common]


def short_setting(setting: str, shared: list[str]) -> str:
    """A setting without the ``shared`` overrides; the whole setting where nothing else is left."""
    return ",".join(part for part in setting.split(",") if part not in shared) or setting


def is_sweep(path: Path) -> bool:
    return (
        (path / "multirun.yaml").is_file()
        or any(path.glob("*/.hydra/overrides.yaml"))
        or any(path.glob("*/metrics.json"))
    )


def find_sweeps(paths: Iterable[str | Path]) -> list[Path]:
    """Sweep folders: each path itself, or every sweep below it (folders with ``multirun.yaml`` or with job
    folders holding ``metrics.json``)."""
    sweeps: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if not path.is_dir():
            raise FileNotFoundError(f"sweep directory {str(raw)!r} does not exist")
        found = (
            [path]
            if is_sweep(path)
            else sorted(
                {m.parent for m in path.rglob("multirun.yaml")} | {m.parent.parent for m in path.rglob("metrics.json")},
                key=str,
            )
        )
        if not found:
            raise FileNotFoundError(f"no jobs (folders with .hydra/overrides.yaml or metrics.json) under {str(raw)!r}")
        sweeps += [s for s in found if s not in sweeps]
    return sweeps


def collect(sweep_dir: str | Path, label: str = "") -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Finished jobs (with ``metrics.json``) and the others: failed (their reason), killed (a folder
    without ``metrics.json``) and never started (planned in ``multirun.yaml``, no folder). Each row has
    ``job`` (``label`` + number), ``group`` (the setting), ``seed``, ``path`` and ``overrides``."""
    sweep_dir = Path(sweep_dir)
    if not sweep_dir.is_dir():
        raise FileNotFoundError(f"sweep directory {str(sweep_dir)!r} does not exist")
    done, failed = [], []
    job_dirs = sorted(
        {p.parent.parent for p in sweep_dir.glob("*/.hydra/overrides.yaml")}
        | {p.parent for p in sweep_dir.glob("*/metrics.json")},
        key=lambda p: (len(p.name), p.name),
    )
    for job in job_dirs:
        ov_file = job / ".hydra" / "overrides.yaml"
        overrides = [str(o) for o in (yaml.safe_load(ov_file.read_text()) or [])] if ov_file.exists() else []
        m = read_metrics(job) or {}
        key = m.get("overrides")
        if key is None:
            key = setting_of(overrides)
        row = {
            "job": label + job.name,
            "group": ",".join(key) or "defaults",
            "seed": m.get("seed", seed_of(overrides)),
            "path": str(job),
            "overrides": overrides,
            "sweep": str(sweep_dir),
        }
        if m.get("status", "ok") == "ok" and m:
            done.append({**m, **row})  # grouped by the overrides, like its failed siblings
        else:  # failed (status and reason recorded by the job), or killed before it wrote anything
            failed.append(
                {
                    **row,
                    "status": m.get("status", "missing"),
                    "error": m.get("error", "no metrics.json: killed, or still running"),
                    **({"slurm_end": m["slurm_end"]} if m.get("slurm_end") else {}),
                }
            )
    seen = {job.name for job in job_dirs}
    for num, overrides in enumerate(job for batch in (sweep_plan(sweep_dir) or []) for job in batch):
        if str(num) not in seen:  # planned by the sweep, never given a folder (the sweep was cut short)
            failed.append(
                {
                    "job": label + str(num),
                    "group": ",".join(setting_of(overrides)) or "defaults",
                    "seed": seed_of(overrides),
                    "path": None,
                    "overrides": list(overrides),
                    "sweep": str(sweep_dir),
                    "status": "never started",
                    "error": "the sweep stopped before this job started: rerun the sweep into this folder",
                }
            )
    return done, failed


def collect_many(paths: Iterable[str | Path]) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[Path]]:
    """:func:`collect` over every sweep at or below the paths; with several sweeps a job is named
    ``<sweep folder>/<number>``. Runs of one setting in different sweeps are one group."""
    sweeps = find_sweeps(paths)
    done, failed = [], []
    for sweep in sweeps:
        d, f = collect(sweep, label=f"{sweep.name}/" if len(sweeps) > 1 else "")
        done += d
        failed += f
    return done, failed, sweeps


def graph_config(job: dict[str, Any]) -> dict[str, Any] | None:
    """The graph config of a job that left no stored graphs (failed early, killed, never started): the
    config its folder saved, else this checkout's config composed with the job's overrides. None if
    neither works (the configs changed since)."""
    for saved in (
        [Path(job["path"]) / "config.yaml", Path(job["path"]) / ".hydra" / "config.yaml"] if job.get("path") else []
    ):
        if saved.is_file():
            graph = (yaml.safe_load(saved.read_text()) or {}).get("graph")
            if isinstance(graph, dict):
                return graph
    try:
        from omegaconf import OmegaConf

        from ..training.config import compose_config

        cfg = compose_config("train", [o for o in job.get("overrides") or [] if not o.startswith("hydra.")])
        return OmegaConf.to_container(cfg.graph, resolve=True)
    except Exception:  # a config that no longer composes: the job stays without a setting
        return None
