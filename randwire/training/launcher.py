"""The Slurm launcher: hydra-submitit-launcher's, with a wait that always ends.

The plugin submits the sweep as a job array and then waits on each job's result file through ``sacct``.
On a real cluster that wait fails three ways: a job cancelled (``scancel``, a node failure) writes no result,
so without job accounting the sweep waits forever and with it the launcher dies (``UncompletedJobError``) with
no summary; and a request the partition can never satisfy pends forever in silence. Here the queue is read
with ``squeue`` (no accounting needed): a job that left it without a result is recorded in its ``metrics.json``
in Slurm's own words where the cluster keeps accounting (``node failed``, ``out of memory``, ``timeout``,
``cancelled``: randwire/training/slurm_end.py), else ``cancelled``, and the sweep goes on to its summary
(exit 1; the same command with ``hydra.sweep.dir=`` finishes it); a job pending for a reason that cannot clear is one line, the sweep's jobs are cancelled and
it stops (exit 2); a busy cluster is waited for, with a line now and then.
"""

from __future__ import annotations

import contextlib
import io
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from hydra.core.utils import JobReturn, JobStatus

from hydra_plugins.hydra_submitit_launcher.submitit_launcher import SlurmLauncher as SubmititSlurmLauncher

from ..models.errors import one_line
from .errors import SlurmRefused
from .private_apis import hydra_config_as
from .slurm_end import NO_RECORD, SlurmEnd, sacct_end, sacct_ends

# squeue's pending reasons that no amount of waiting clears: the request exceeds what the partition has.
NEVER_STARTS = {
    "PartitionConfig",
    "ReqNodeNotAvail",
    "BadConstraints",
    "PartitionNodeLimit",
    "PartitionTimeLimit",
    "InvalidQOS",
    "InvalidAccount",
    "QOSMaxCpuPerJobLimit",
    "QOSMaxGRESPerJob",
    "QOSMaxNodePerJobLimit",
    "QOSMaxMemoryPerJob",
    "QOSMaxWallDurationPerJobLimit",
    "AssocMaxWallDurationPerJobLimit",
    "AssocMaxCpuPerJobLimit",
    "AssocMaxNodePerJobLimit",
    "AssocMaxGRESPerJob",
    "MaxMemPerLimit",
}
# Ended for good. Not COMPLETING: a job Slurm requeues passes through it on its way back to PENDING.
ENDING = {"COMPLETED", "CANCELLED", "FAILED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "PREEMPTED"}
GONE_GRACE_S = 10.0  # a job out of the queue with no result yet: its result file may still be on its way (NFS)
UNREAD_POLLS = 30  # squeue failing this many polls in a row: trust result files alone
POLL_S = 2.0
SAY_EVERY_S = 300.0


def queue_states(array_ids: set[str]) -> dict[str, tuple[str, str]] | None:
    """``{job id: (state, reason)}`` of every task of these arrays still in Slurm's queue (``12_3``), from
    squeue; None when squeue itself failed (then nothing can be concluded)."""
    cmd = ["squeue", "-h", "-r", "-o", "%i|%T|%r", "-j", ",".join(sorted(array_ids))]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0:  # an array that left the queue entirely: "Invalid job id specified"
        return {} if "Invalid job id" in out.stderr else None
    states = {}
    for line in out.stdout.splitlines():
        job, state, reason = (line.split("|") + ["", ""])[:3]
        states[job.strip()] = (state.strip(), reason.strip())
    return states


def partition_line(partition: str | None) -> str:
    """What a partition's nodes offer, for the line that says a request is over it."""
    cmd = ["sinfo", "-h", "-o", "%P|%c|%m|%G|%l|%D", *(["-p", partition] if partition else [])]
    try:
        rows = subprocess.run(cmd, capture_output=True, text=True, timeout=30).stdout.split()
    except (OSError, subprocess.TimeoutExpired):
        return ""
    default = next((r for r in rows if r.split("|")[0].endswith("*")), rows[0] if rows else None)
    if default is None:
        return ""
    name, cpus, mem, gres, limit, count = default.split("|")
    gpus = "" if gres in ("(null)", "") else f", {gres}"
    return (
        f"{name.rstrip('*')}: {count} node{'s' if count != '1' else ''} of {cpus} CPUs, {mem} MB{gpus}, "
        f"time limit {limit}"
    )


def request_line(params: dict[str, Any]) -> str:
    """The launcher's request in the words of its keys (hydra.launcher.*)."""
    parts = [
        f"nodes={params.get('nodes', 1)}",
        f"tasks_per_node={params.get('tasks_per_node', 1)}",
        f"cpus_per_task={params.get('cpus_per_task')}",
    ]
    for key in ("gpus_per_node", "mem_gb", "timeout_min", "partition", "constraint", "qos", "account"):
        if params.get(key) not in (None, 0, ""):
            parts.append(f"{key}={params[key]}")
    return " ".join(parts)


class SlurmLauncher(SubmititSlurmLauncher):
    """``hydra/launcher=submitit_slurm``: the plugin's submission, this module's wait."""

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        import submitit

        try:
            check_signal_delay(self.params)
        except SlurmRefused:  # refused before anything ran: no sweep folder left holding only Hydra's plan
            sweep = Path(str(self.config.hydra.sweep.dir))
            if sweep.is_dir() and {p.name for p in sweep.iterdir()} <= {"multirun.yaml"}:
                (sweep / "multirun.yaml").unlink(missing_ok=True)
                sweep.rmdir()
            raise

        # The plugin's launch builds the executor from hydra.launcher.* and submits the array, then waits on
        # each job's results(): kept as it is, with map_array swapped for this call only so that its wait
        # returns at once and the jobs come here.
        jobs: list = []
        original = submitit.AutoExecutor.map_array

        def submit_only(executor, fn, *iterables):  # the plugin's launch submits, then waits on results()
            jobs.extend(original(executor, fn, *iterables))
            return [_Submitted()] * len(jobs)

        submitit.AutoExecutor.map_array = submit_only
        said = io.StringIO()  # submitit prints sbatch's refusal itself: said once, in the line below
        try:
            with contextlib.redirect_stderr(said):
                super().launch(job_overrides, initial_job_idx)
        except (submitit.core.utils.FailedSubmissionError, submitit.core.utils.FailedJobError) as err:  # sbatch's no
            raise SlurmRefused(
                f"Slurm refused the sweep's jobs: {_sbatch_said(err)} (the request: {request_line(self.params)})"
            ) from None
        finally:
            submitit.AutoExecutor.map_array = original
        sys.stderr.write(said.getvalue())
        returns = wait_for_jobs(
            jobs,
            self.params,
            lambda i, job, line, end, status: self._record_lost(
                job_overrides[i], initial_job_idx + i, line, end, status
            ),
            sweep_dir=str(self.config.hydra.sweep.dir),
        )
        self._record_ends(job_overrides, initial_job_idx, jobs)
        return returns

    def _job_config(self, overrides: Sequence[str], num: int) -> tuple[Any, Path]:
        """Job ``num``'s config, as the job composed it, and its run folder."""
        from omegaconf import open_dict

        assert self.hydra_context is not None and self.config is not None
        config = self.hydra_context.config_loader.load_sweep_config(self.config, list(overrides))
        with open_dict(config.hydra.job):
            config.hydra.job.num = num
        return config, Path(str(config.hydra.sweep.dir)) / str(config.hydra.sweep.subdir)

    def _record_ends(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int, jobs: list) -> None:
        """Where the cluster keeps accounting, each finished job's ``metrics.json`` gets Slurm's record of it
        (``slurm_end``: state, nodes, elapsed, ReqMem, MaxRSS), which the summary shows."""
        import json

        from ..models.files import atomic_write
        from .records import METRICS_FILE, read_metrics

        ends = sacct_ends([str(job.job_id) for job in jobs])  # one sacct call for the whole sweep
        for i, job in enumerate(jobs):
            end = (ends or {}).get(str(job.job_id))
            if end is None:  # no accounting, or no record of this job
                continue
            run_dir = self._job_config(job_overrides[i], initial_job_idx + i)[1]
            metrics = read_metrics(run_dir)
            if metrics is not None and "slurm_end" not in metrics:
                atomic_write(
                    run_dir / METRICS_FILE, json.dumps({**metrics, "slurm_end": end.record()}, indent=1) + "\n"
                )

    def _record_lost(self, overrides: Sequence[str], num: int, line: str, end: SlurmEnd | None, status: str) -> None:
        """The job's ``metrics.json`` says how it ended (Slurm's record where there is one: ``slurm_end``,
        else ``cancelled``) and why; what it had recorded (progress, attempts) stays."""
        from .records import read_metrics, write_failure

        config, run_dir = self._job_config(overrides, num)
        before = read_metrics(run_dir) or {}
        kept = {k: before[k] for k in ("epochs", "global_step", "wall_time_s") if k in before}
        with hydra_config_as(config):  # the job's overrides name its setting, as in the job
            slurm = {"slurm_end": end.record()} if end else {}
            write_failure(run_dir, config, line, status=status, gone=True, **kept, **slurm)


def check_signal_delay(params: dict[str, Any]) -> None:
    """Slurm's time-limit warning (SIGUSR2, ``signal_delay_s`` before the limit) must come after the job has
    started: one at or before the start kills it before it can checkpoint (``srun: error: ... User defined
    signal 2``, the job FAILED), so such a request is one line before anything is submitted."""
    timeout_min, delay = params.get("timeout_min"), params.get("signal_delay_s")
    if isinstance(timeout_min, (int, float)) and isinstance(delay, (int, float)) and delay >= 60 * timeout_min - 15:
        raise SlurmRefused(
            f"hydra.launcher.signal_delay_s={delay} is not allowed with timeout_min={timeout_min}: Slurm's warning "
            f"would come within 15 s of the job's start, before it can checkpoint; allowed: signal_delay_s < "
            f"{60 * timeout_min - 15:g} (60 * timeout_min - 15), or a longer timeout_min"
        )


class _Submitted:
    """Stands for a job in the plugin's own wait, which is skipped (its results() returns at once)."""

    def results(self) -> list[None]:
        return [None]


def _sbatch_said(err: BaseException) -> str:
    lines = [ln.strip() for ln in str(err).splitlines() if "error:" in ln]
    said = "; ".join(ln.split("error:", 1)[1].strip() for ln in lines) if lines else one_line(err)
    return said[:300]


def wait_for_jobs(
    jobs: list,
    params: dict[str, Any],
    record_lost: Callable[[int, Any, str, SlurmEnd | None, str], None],
    sweep_dir: str = "<this sweep>",
    poll_s: float = POLL_S,
    say_every_s: float = SAY_EVERY_S,
    read_queue: Callable[[set[str]], dict[str, tuple[str, str]] | None] = queue_states,
    read_end: Callable[[str], SlurmEnd | None] | None = None,
) -> list[JobReturn]:
    """Each job's result, once it has one, or its end without one (``record_lost``, with Slurm's record of it
    where the cluster keeps accounting, else None); raises
    :class:`SlurmRefused` (after cancelling every job) when one pends for a reason that cannot clear."""
    returns: list[JobReturn | None] = [None] * len(jobs)
    gone_since: dict[int, float] = {}
    last_said = time.time()
    arrays = {str(job.job_id).split("_")[0] for job in jobs}
    unread = 0  # polls in a row that squeue failed
    while any(r is None for r in returns):
        queue = read_queue(arrays)
        unread = unread + 1 if queue is None else 0
        now = time.time()
        waiting: dict[str, int] = {}
        for i, job in enumerate(jobs):
            if returns[i] is not None:
                continue
            state = queue.get(str(job.job_id)) if queue is not None else None
            # A result counts once the job is out of the queue: one that Slurm requeued (preemption) may have
            # left one from the allocation it ended, and is pending or running again. Where squeue keeps
            # failing, the result file is all there is to go on.
            out = state is None or state[0] in ENDING
            if job.paths.result_pickle.exists() and (out if queue is not None else unread >= UNREAD_POLLS):
                returns[i] = _outcome(i, job, sweep_dir, record_lost, params, read_end or sacct_end)
                continue
            if queue is None:
                continue
            if state is None:  # out of the queue without a result: cancelled, its node failed, out of memory
                gone_since.setdefault(i, now)
                if now - gone_since[i] >= GONE_GRACE_S:
                    _lost(i, job, sweep_dir, record_lost, (read_end or sacct_end)(str(job.job_id)))
                    returns[i] = _returned(None)
                continue
            gone_since.pop(i, None)
            _refuse_if_it_never_starts(job, state, arrays, params)
            kind, reason = state
            label = kind.lower() if kind != "PENDING" else f"pending ({reason})"
            waiting[label] = waiting.get(label, 0) + 1
        if waiting and now - last_said >= say_every_s:
            last_said = now
            print(
                "waiting for Slurm: " + ", ".join(f"{n} {label}" for label, n in sorted(waiting.items())),
                file=sys.stderr,
                flush=True,
            )
        if any(r is None for r in returns):
            time.sleep(poll_s)
    return returns  # type: ignore[return-value]


def _lost(i: int, job, sweep_dir: str, record_lost: Callable, end: SlurmEnd | None) -> None:
    """A job out of the queue without a result: one line, in Slurm's words where it keeps accounting."""
    line = f"Slurm job {job.job_id} ended without a result: {end.describe() if end else NO_RECORD}; "
    line += f"the same command with hydra.sweep.dir={sweep_dir} runs it again"
    print(f"error: job {i}: {line}", file=sys.stderr, flush=True)
    record_lost(i, job, line, end, end.status() if end else "cancelled")


def _refuse_if_it_never_starts(job, state: tuple[str, str], arrays: set[str], params: dict[str, Any]) -> None:
    """A job pending for a reason that cannot clear (a request over the partition): cancel the sweep, one line."""
    kind, reason = state
    if kind == "PENDING" and reason.split(",")[0].strip("()") in NEVER_STARTS:
        _cancel(arrays)
        where = partition_line(params.get("partition"))
        raise SlurmRefused(
            f"Slurm will never start job {job.job_id} (Reason={reason}): the request {request_line(params)} "
            f"is more than the partition offers ({where or 'see sinfo'}); change hydra.launcher.* (the "
            f"sweep's jobs were cancelled)"
        )


def _outcome(
    i: int, job, sweep_dir: str, record_lost: Callable, params: dict[str, Any], read_end: Callable
) -> JobReturn:
    """The job's own return (Hydra's JobReturn). One that failed outside the task function (submitit's own
    error: out of time with no requeue left) is one line and a return the summary reads from the job's
    folder, never a traceback of the whole sweep; out of time, it is recorded ``timeout``. A job whose rank
    failed because Slurm lost one of its nodes (a 2-node job: the other rank's gloo reads "Connection
    reset by peer", or submitit finds no result of the lost rank) is recorded as Slurm ended it, ``node failed``."""
    try:
        ret = job.results()[0]
        problem = _failure_of(ret)
    except Exception as err:  # the task function records its own failures: this escaped it (its log has more)
        problem = err
    if problem is None:
        return ret
    said = " ".join(str(problem).split())[:300]
    if "timed-out" in said:  # submitit: "Job not requeued because: timed-out too many times."
        line = (
            f"Slurm job {job.job_id} ran out of time (timeout_min={params.get('timeout_min')}) and "
            f"hydra.launcher.max_num_timeout={params.get('max_num_timeout')} allows no more requeues; the same "
            f"command with hydra.sweep.dir={sweep_dir} continues it from its last checkpoint"
        )
        print(f"error: job {i}: {line}", file=sys.stderr, flush=True)
        record_lost(i, job, line, None, "timeout")
    elif (end := read_end(str(job.job_id))) is not None and end.word == "NODE_FAIL":
        _lost(i, job, sweep_dir, record_lost, end)  # what the ranks said then is in their logs
    else:
        print(f"error: Slurm job {job.job_id}: {said}", file=sys.stderr, flush=True)
    return _returned(None)


def _failure_of(ret: Any) -> BaseException | None:
    """The error a failed JobReturn carries (Hydra's ``return_value`` raises it, after a line of its own on
    stderr that would repeat ours: kept out)."""
    if getattr(ret, "status", None) != JobStatus.FAILED:
        return None
    try:
        with contextlib.redirect_stderr(io.StringIO()):
            _ = ret.return_value
    except BaseException as err:  # whatever the job raised, as it raised it
        return err
    return None


def _returned(value: Any) -> JobReturn:
    ret = JobReturn()
    ret.status, ret.return_value = JobStatus.COMPLETED, value
    return ret


def _cancel(arrays: set[str]) -> None:
    subprocess.run(["scancel", *sorted(arrays)], capture_output=True, timeout=60, check=False)
