"""A job's record in its run folder, and the setting it belongs to. No torch, no Lightning.

``metrics.json`` is what every later step reads (the sweep summary, the analyses, a rerun that finds its job
done): written whole by the run, or by :func:`write_failure` for a job that did not finish, and read back by
:func:`read_metrics`, which survives a truncated or hand-edited file. The *setting* of a job is its
command-line overrides minus the seed: runs of one setting are instances of one generator (paper §4) and
are averaged together; W&B groups them under :func:`group_name`.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from ..models.errors import one_line
from ..models.files import atomic_write
from .attempts import end_attempt

METRICS_FILE = "metrics.json"
_WARNED: set[str] = set()  # each unreadable file is named once per process


def read_metrics(job_dir: str | Path) -> dict[str, Any] | None:
    """A job's ``metrics.json``: None where there is none; a file that cannot be parsed (truncated by a full
    disk or a kill mid-write, edited by hand) is one warning line naming it and a record with status
    ``unreadable``, so it counts like a job without a result and every healthy job is still summarised."""
    path = Path(job_dir) / METRICS_FILE
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text())
        if not isinstance(record, dict):
            raise ValueError(f"a JSON {type(record).__name__}, not an object")
        return record
    except (OSError, ValueError) as err:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        reason = one_line(err)
        if str(path) not in _WARNED:
            _WARNED.add(str(path))
            print(
                f"warning: {path} is unreadable ({reason}): its job is counted as one without a result", file=sys.stderr
            )
        return {"status": "unreadable", "error": f"{METRICS_FILE} is unreadable ({reason})"}


def seed_of(overrides: Iterable[str]) -> int | None:
    for o in overrides:
        if o.lstrip("+~").startswith("seed="):
            try:
                return int(o.split("=", 1)[1])
            except ValueError:
                return None
    return None


def setting_of(overrides: Iterable[str]) -> list[str]:
    """What makes runs of one setting comparable: the overrides minus the seed, sorted."""
    return sorted(o for o in overrides if seed_of([o]) is None)


def _hydra_config():
    try:
        from hydra.core.hydra_config import HydraConfig

        return HydraConfig.get()
    except Exception:  # not launched by Hydra (tests, notebooks)
        return None


def group_overrides(cfg: DictConfig | None = None) -> list[str]:
    """The run's command-line overrides minus the seed: what makes runs of one setting comparable."""
    hc = _hydra_config()
    task = list(hc.overrides.task) if hc is not None else list((cfg or {}).get("overrides", []) or [])
    return setting_of(task)


def group_name(cfg: DictConfig | None = None, limit: int = 100) -> str:
    """Readable setting name: the overrides minus the seed. A long list keeps its meaning: keys are cut to
    their last part where that stays unambiguous (``optimizer.lr=0.1`` -> ``lr=0.1``), and what is still over
    ``limit`` characters ends in ``…`` and a hash of the whole list, so two settings never share a name
    (W&B groups are at most 128 characters; ``metrics.json`` keeps the full list as ``overrides``)."""
    overrides = group_overrides(cfg)
    text = ",".join(overrides) if overrides else "defaults"
    if len(text) <= limit:
        return text
    keys = [o.split("=", 1)[0] for o in overrides]
    short = [k.lstrip("+~").rsplit(".", 1)[-1] for k in keys]
    parts = [f"{s}={o.split('=', 1)[1]}" if "=" in o and short.count(s) == 1 else o for s, o in zip(short, overrides)]
    shorter = ",".join(parts)
    if len(shorter) <= limit:
        return shorter
    digest = hashlib.sha1(text.encode()).hexdigest()[:8]
    return shorter[: limit - len(digest) - 2] + "…#" + digest


def sweep_name() -> str | None:
    """The sweep folder's name (its start time) inside a ``-m`` run; None for a single run."""
    hc = _hydra_config()
    if hc is None or str(hc.mode) != "RunMode.MULTIRUN":
        return None
    return Path(hc.sweep.dir).name


def write_failure(
    run_dir: Path, cfg: DictConfig, reason: str, status: str = "failed", gone: bool = False, **extra: Any
) -> bool:
    """``metrics.json`` of a job that did not finish: valid JSON with the status and the one-line reason,
    keyed like a finished job (seed, setting), so the sweep summary lists it next to its setting. Best
    effort: on a full disk it may not be writable either (False; the job then counts as killed)."""
    seed = cfg.get("seed") if isinstance(cfg.get("seed"), int) else None
    record = {
        "status": status,
        "error": one_line(reason),
        "seed": seed,
        "group": group_name(cfg),
        "overrides": group_overrides(cfg),
        **extra,
    }
    try:
        record.update(end_attempt(run_dir, status, gone=gone))
        atomic_write(run_dir / METRICS_FILE, json.dumps(record, indent=1) + "\n")
    except OSError:
        return False
    return True
