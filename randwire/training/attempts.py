"""Every attempt at a run (a first start, each resume after a kill, a Slurm requeue or a rerun), kept in
``<run>/attempts.json``, so a run trained over several allocations says how long it took in all. No torch.

An attempt is recorded when it starts (start, host, pid, Slurm job) and closed when the run writes its
``metrics.json`` (end, how it ended). One that never closed was killed (SIGKILL, a lost node): its end is
unknown and it does not count towards the total.
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path
from typing import Any

from ..models.files import atomic_write
from .folder_lock import slurm_job_id

ATTEMPTS_FILE = "attempts.json"


def _read(run_dir: Path) -> list[dict[str, Any]]:
    try:
        records = json.loads((run_dir / ATTEMPTS_FILE).read_text())
    except (OSError, ValueError):
        return []
    return records if isinstance(records, list) else []


def start_attempt(run_dir: str | os.PathLike, start: float) -> None:
    """Record that this process started an attempt at ``start`` (the clock of the run's ``wall_time_s``);
    an earlier attempt still open was killed."""
    run_dir = Path(run_dir)
    records = _read(run_dir)
    unclosed = [record for record in records if record.get("end") is None]
    for record in unclosed:
        record["how"] = "killed (no end recorded)"
    me = slurm_job_id()
    if unclosed and me is not None and unclosed[-1].get("slurm_job") == me:
        # This Slurm job in an earlier allocation, requeued by Slurm (its node failed, preemption): Slurm's
        # record of that allocation says how it ended, where the cluster keeps accounting.
        from .slurm_end import earlier_allocation_end

        earlier = earlier_allocation_end(me)
        if earlier is not None:
            unclosed[-1].update(how=earlier.status(), slurm=earlier.describe())
    records.append(
        {
            "start": start,
            "end": None,
            "how": "running",
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "slurm_job": me,
        }
    )
    atomic_write(run_dir / ATTEMPTS_FILE, json.dumps(records, indent=1) + "\n")


def end_attempt(run_dir: str | os.PathLike, how: str, gone: bool = False) -> dict[str, Any]:
    """Close this process's open attempt with ``how`` (ok, failed, diverged, interrupted) and return what
    ``metrics.json`` records: every attempt and the total wall time of those that ended. ``gone``: the
    launcher closes the job's last open attempt, whoever ran it (Slurm says the job ended: node failed, out
    of memory), at the time it learnt of it; one a rank closed already (it failed when its peer's node
    died) gets Slurm's word for how it ended."""
    run_dir = Path(run_dir)
    records = _read(run_dir)
    mine = [r for r in records if r.get("end") is None and (gone or r.get("pid") == os.getpid())]
    if mine:
        mine[-1].update(end=time.time(), how=how)
    elif gone and records:
        records[-1]["how"] = how
    if mine or (gone and records):
        atomic_write(run_dir / ATTEMPTS_FILE, json.dumps(records, indent=1) + "\n")
    ended = [r["end"] - r["start"] for r in records if r.get("end") is not None]
    return {"attempts": records, "wall_time_total_s": round(sum(ended), 2) if ended else None}
