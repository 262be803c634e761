"""How a Slurm job ended, in Slurm's own words, where the cluster keeps job accounting (``sacct``).

A job that leaves the queue without a result (cancelled, its node died, killed over its memory, out of time)
wrote nothing itself; the launcher records it from this. Without accounting ``sacct`` fails and the launcher
says what it can see (``cancelled, or its node failed``). Here, without cgroups, a job killed for memory ends
``FAILED`` with its largest step's MaxRSS over the job's ReqMem (``OUT_OF_MEMORY`` where cgroups enforce it):
both are read as out of memory.
"""

from __future__ import annotations

import dataclasses
import re
import subprocess
from collections.abc import Callable
from typing import Any

FIELDS = ("JobID", "State", "ExitCode", "NodeList", "Elapsed", "ReqMem", "MaxRSS")
UNITS = {"K": 1 / 1024, "M": 1.0, "G": 1024.0, "T": 1024.0**2}
NO_RECORD = "cancelled, or its node failed"  # what squeue alone can tell of a job gone without a result


def mem_mb(text: str) -> float | None:
    """sacct's memory figure in MB: ``829948K``, ``200M``, ``6G``, ``2048Mc`` (per CPU, older Slurm); None if empty."""
    match = re.fullmatch(r"([0-9.]+)([KMGT]?)[cn]?", text.strip())
    if not match:
        return None
    return float(match.group(1)) * UNITS.get(match.group(2) or "M", 1.0)


@dataclasses.dataclass(frozen=True)
class SlurmEnd:
    """One job's end as ``sacct`` records it: the allocation's state and exit code, where and how long it ran,
    what it asked and the most any of its steps used."""

    job: str
    state: str  # COMPLETED, CANCELLED, TIMEOUT, NODE_FAIL, OUT_OF_MEMORY, PREEMPTED, FAILED, ...
    exit_code: str
    nodes: str
    elapsed: str
    req_mem_mb: float | None
    max_rss_mb: float | None

    @property
    def word(self) -> str:
        """The state's first word (``CANCELLED by 0`` → ``CANCELLED``)."""
        return self.state.split()[0] if self.state else ""

    @property
    def over_memory(self) -> bool:
        if self.word == "OUT_OF_MEMORY":
            return True
        known = self.req_mem_mb is not None and self.max_rss_mb is not None
        return self.word == "FAILED" and known and self.max_rss_mb > self.req_mem_mb  # type: ignore[operator]

    def status(self) -> str:
        """The run's status in metrics.json and the summary."""
        if self.over_memory:
            return "out of memory"
        return {
            "NODE_FAIL": "node failed",
            "TIMEOUT": "timeout",
            "PREEMPTED": "preempted",
            "FAILED": "failed",
            "REQUEUED": "requeued",
        }.get(self.word, "cancelled")

    def describe(self) -> str:
        """How it ended, in one phrase that names Slurm's own record."""
        if self.over_memory:
            used = f"{self.max_rss_mb:.0f} MB" if self.max_rss_mb is not None else "its limit"
            asked = f", ReqMem {self.req_mem_mb:.0f} MB" if self.req_mem_mb is not None else ""
            return f"out of memory (Slurm killed it at {used}: {self.word}{asked})"
        if self.word == "NODE_FAIL":
            return f"node failed (Slurm NODE_FAIL on {self.nodes})"
        if self.word == "TIMEOUT":
            return f"out of time (Slurm TIMEOUT after {self.elapsed})"
        if self.word == "FAILED":
            return f"failed (Slurm FAILED, exit code {self.exit_code})"
        return f"{self.status()} (Slurm {self.state})"

    def record(self) -> dict[str, Any]:
        """What metrics.json keeps of it (``slurm_end``)."""
        return dataclasses.asdict(self)


def parse_sacct(text: str, job: str) -> SlurmEnd | None:
    """The end of ``job`` (``12_3`` or ``12``) from ``sacct -n -P -o <FIELDS>`` lines: the allocation's own line,
    and the largest MaxRSS of its steps (``12_3.batch``, ``12_3.0``)."""
    rows = [dict(zip(FIELDS, line.split("|"))) for line in text.splitlines() if line.count("|") == len(FIELDS) - 1]
    own = next((r for r in rows if r["JobID"] == job), None)
    if own is None:
        return None
    steps = [mem_mb(r["MaxRSS"]) for r in rows if r["JobID"].startswith(f"{job}.")]
    used = [m for m in steps if m is not None]
    return SlurmEnd(
        job=job,
        state=own["State"].strip(),
        exit_code=own["ExitCode"].strip(),
        nodes=own["NodeList"].strip(),
        elapsed=own["Elapsed"].strip(),
        req_mem_mb=mem_mb(own["ReqMem"]),
        max_rss_mb=max(used) if used else None,
    )


def _sacct(jobs: str, run: Callable[..., Any], duplicates: bool = False) -> str | None:
    """``sacct -n -P -o <FIELDS> -j <jobs>``'s lines (every allocation's with ``duplicates``); None where
    there is no accounting."""
    cmd = ["sacct", *(["--duplicates"] if duplicates else []), "-n", "-P", "-o", ",".join(FIELDS), "-j", jobs]
    try:
        out = run(cmd, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout if out.returncode == 0 else None  # else "Slurm accounting storage is disabled"


def sacct_ends(jobs: list[str], run: Callable[..., Any] = subprocess.run) -> dict[str, SlurmEnd] | None:
    """How each of ``jobs`` ended, from one ``sacct`` call; None where there is no accounting (a job without
    a record yet is left out)."""
    text = _sacct(",".join(str(job) for job in jobs), run)
    if text is None:
        return None
    ends = {str(job): parse_sacct(text, str(job)) for job in jobs}
    return {job: end for job, end in ends.items() if end is not None}


def sacct_end(job: str, run: Callable[..., Any] = subprocess.run) -> SlurmEnd | None:
    """How ``job`` ended from ``sacct``; None where there is no accounting or no record (yet)."""
    return (sacct_ends([job], run) or {}).get(str(job))


def earlier_allocation_end(job: str, run: Callable[..., Any] = subprocess.run) -> SlurmEnd | None:
    """How ``job``'s latest allocation before this running one ended: a job Slurm requeued (its node failed,
    it was preempted or requeued) runs again under the same id, and ``sacct --duplicates`` keeps a record per
    allocation (each followed by its steps). None without accounting or without such a record (yet)."""
    text = _sacct(str(job), run, duplicates=True)
    allocations: list[list[str]] = []
    for line in (text or "").splitlines():
        if line.split("|", 1)[0] == str(job):
            allocations.append([])
        if allocations:
            allocations[-1].append(line)
    ends = [parse_sacct("\n".join(lines), str(job)) for lines in allocations]
    ended = [end for end in ends if end is not None and end.word not in ("RUNNING", "PENDING")]
    return ended[-1] if ended else None
