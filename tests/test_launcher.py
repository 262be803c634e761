"""The Slurm launcher's wait (randwire/launcher.py) against a scripted queue: what a user without Slurm can
check; tests/test_slurm.py runs the same on a real one."""

from pathlib import Path
from types import SimpleNamespace

import pytest

from randwire.training import launcher
from randwire.training.errors import SlurmRefused


class FakeJob:
    def __init__(self, job_id: str, folder: Path) -> None:
        self.job_id = job_id
        self.paths = SimpleNamespace(result_pickle=folder / f"{job_id}_result.pkl")

    def results(self):
        return [f"return of {self.job_id}"]


def _queue(*frames):
    """squeue's answers, one per poll; the last one repeats."""
    frames = list(frames)

    def read(arrays):
        return frames.pop(0) if len(frames) > 1 else frames[0]

    return read


@pytest.fixture(autouse=True)
def quick(monkeypatch):
    monkeypatch.setattr(launcher, "GONE_GRACE_S", 0.0)
    monkeypatch.setattr(launcher, "sacct_end", lambda job: None)  # no job accounting (tests below add it)
    cancelled = []
    monkeypatch.setattr(launcher, "_cancel", lambda arrays: cancelled.append(sorted(arrays)))
    return cancelled


def test_a_job_that_left_the_queue_without_a_result_is_recorded_and_the_rest_returned(tmp_path, capsys):
    jobs = [FakeJob("7_0", tmp_path), FakeJob("7_1", tmp_path)]
    jobs[0].paths.result_pickle.write_bytes(b"done")
    lost = []
    returns = launcher.wait_for_jobs(
        jobs,
        {},
        lambda i, job, line, end, status: lost.append((i, line)),
        sweep_dir="/s",
        poll_s=0,
        read_queue=_queue({"7_1": ("RUNNING", "None")}, {}),
    )
    assert returns[0] == "return of 7_0" and returns[1].return_value is None
    assert lost == [
        (
            1,
            "Slurm job 7_1 ended without a result: cancelled, or its node failed; the same command "
            "with hydra.sweep.dir=/s runs it again",
        )
    ]
    assert "error: job 1: Slurm job 7_1 ended without a result" in capsys.readouterr().err


def test_a_requeued_job_is_waited_for_and_squeue_trouble_concludes_nothing(tmp_path):
    """A preempted job may leave a result from the allocation Slurm ended (its run stopped, submitit
    returned) and be pending again: the result counts once the job is out of the queue."""
    job = FakeJob("8_0", tmp_path)
    job.paths.result_pickle.write_bytes(b"from the first allocation")
    polls = [None, {"8_0": ("COMPLETING", "None")}, {"8_0": ("PENDING", "BeginTime")}, {"8_0": ("RUNNING", "None")}, {}]
    seen = []

    def read(arrays):
        seen.append(len(seen))
        return polls[len(seen) - 1]

    returns = launcher.wait_for_jobs([job], {}, lambda *a: pytest.fail("not lost"), poll_s=0, read_queue=read)
    assert returns == ["return of 8_0"] and len(seen) == 5  # not before the job left the queue
    # where squeue cannot be read at all, a result is all there is to go on, after a while
    failed = []
    assert launcher.wait_for_jobs([job], {}, lambda *a: None, poll_s=0, read_queue=lambda a: failed.append(1)) == [
        "return of 8_0"
    ]
    assert len(failed) == launcher.UNREAD_POLLS


def test_a_request_that_can_never_start_is_one_line_and_the_jobs_are_cancelled(tmp_path, quick, monkeypatch):
    monkeypatch.setattr(
        launcher, "partition_line", lambda partition: "gpu: 4 nodes of 64 CPUs, 500000 MB, time limit 2-00:00:00"
    )
    jobs = [FakeJob("9_0", tmp_path), FakeJob("9_1", tmp_path)]
    params = {
        "nodes": 1,
        "tasks_per_node": 8,
        "cpus_per_task": 10,
        "gpus_per_node": 8,
        "timeout_min": 1440,
        "partition": "gpu",
    }
    with pytest.raises(SlurmRefused) as info:
        launcher.wait_for_jobs(
            jobs,
            params,
            lambda *a: None,
            poll_s=0,
            read_queue=_queue({"9_0": ("PENDING", "PartitionConfig"), "9_1": ("PENDING", "PartitionConfig")}),
        )
    assert str(info.value) == (
        "Slurm will never start job 9_0 (Reason=PartitionConfig): the request nodes=1 tasks_per_node=8 "
        "cpus_per_task=10 gpus_per_node=8 timeout_min=1440 partition=gpu is more than the partition offers "
        "(gpu: 4 nodes of 64 CPUs, 500000 MB, time limit 2-00:00:00); change hydra.launcher.* (the sweep's jobs "
        "were cancelled)"
    )
    assert quick == [["9"]]


def test_a_busy_cluster_is_waited_for_with_a_line_now_and_then(tmp_path, capsys):
    job = FakeJob("10_0", tmp_path)
    frames = [{"10_0": ("PENDING", "Resources")}] * 3

    def read(arrays):
        if not frames:
            job.paths.result_pickle.write_bytes(b"done")
            return {}  # finished, out of the queue
        return frames.pop()

    assert launcher.wait_for_jobs([job], {}, lambda *a: None, poll_s=0, say_every_s=0, read_queue=read) == [
        "return of 10_0"
    ]
    assert "waiting for Slurm: 1 pending (Resources)" in capsys.readouterr().err


def test_squeue_lines_are_read_per_array_task(monkeypatch):
    out = SimpleNamespace(returncode=0, stdout="12_0|RUNNING|None\n12_1|PENDING|Resources\n", stderr="")
    seen = {}

    def run(cmd, **kwargs):
        seen["cmd"] = cmd
        return out

    monkeypatch.setattr(launcher.subprocess, "run", run)
    assert launcher.queue_states({"12"}) == {"12_0": ("RUNNING", "None"), "12_1": ("PENDING", "Resources")}
    assert seen["cmd"][:4] == ["squeue", "-h", "-r", "-o"] and seen["cmd"][-2:] == ["-j", "12"]
    gone = SimpleNamespace(returncode=1, stdout="", stderr="slurm_load_jobs error: Invalid job id specified")
    monkeypatch.setattr(launcher.subprocess, "run", lambda cmd, **kw: gone)
    assert launcher.queue_states({"12"}) == {}


# sacct -n -P -o JobID,State,ExitCode,NodeList,Elapsed,ReqMem,MaxRSS, as Slurm 22.05 answered on this machine's
# two-node cluster (scripts/slurm_local.sh start --nodes 2 --accounting)
SACCT = {
    "COMPLETED": "2_0|COMPLETED|0:0|rwnode[1-2]|00:00:19|6G|\n2_0.batch|COMPLETED|0:0|rwnode1|00:00:19|6G|12428K\n"
    "2_0.0|COMPLETED|0:0|rwnode[1-2]|00:00:19|6G|880164K\n",
    "NODE_FAIL": "5_1|NODE_FAIL|0:0|rwnode2|00:00:41|3G|\n5_1.batch|CANCELLED|0:15|rwnode2|00:00:41|3G|402112K\n",
    "MEMORY": "9_0|FAILED|0:9|rwnode1|00:00:06|200M|\n9_0.batch|CANCELLED by 0|0:9|rwnode1|00:00:06|200M|829948K\n",
    "OUT_OF_MEMORY": "9_1|OUT_OF_MEMORY|0:125|node7|00:00:06|200M|\n9_1.batch|OUT_OF_MEMORY|0:125|node7|00:00:06||210000K\n",
    "TIMEOUT": "11_0|TIMEOUT|0:0|rwnode1|00:01:02|3G|\n11_0.batch|CANCELLED|0:15|rwnode1|00:01:03|3G|501234K\n",
    "CANCELLED": "12_1|CANCELLED by 0|0:0|rwnode2|00:00:08|3G|\n12_1.batch|CANCELLED|0:15|rwnode2|00:00:09|3G|1.5G\n",
    "FAILED": "13_0|FAILED|1:0|rwnode1|00:00:03|3G|\n13_0.batch|FAILED|1:0|rwnode1|00:00:03|3G|350M\n",
}


@pytest.mark.parametrize(
    "case,job,status,said",
    [
        ("NODE_FAIL", "5_1", "node failed", "node failed (Slurm NODE_FAIL on rwnode2)"),
        ("MEMORY", "9_0", "out of memory", "out of memory (Slurm killed it at 810 MB: FAILED, ReqMem 200 MB)"),
        (
            "OUT_OF_MEMORY",
            "9_1",
            "out of memory",
            "out of memory (Slurm killed it at 205 MB: OUT_OF_MEMORY, ReqMem 200 MB)",
        ),
        ("TIMEOUT", "11_0", "timeout", "out of time (Slurm TIMEOUT after 00:01:02)"),
        ("CANCELLED", "12_1", "cancelled", "cancelled (Slurm CANCELLED by 0)"),
        ("FAILED", "13_0", "failed", "failed (Slurm FAILED, exit code 1:0)"),
    ],
)
def test_slurms_record_names_how_a_job_ended(case, job, status, said):
    from randwire.training.slurm_end import parse_sacct

    end = parse_sacct(SACCT[case], job)
    assert (end.status(), end.describe()) == (status, said)


def test_sacct_figures_and_a_cluster_without_accounting():
    from randwire.training.slurm_end import mem_mb, parse_sacct, sacct_end

    end = parse_sacct(SACCT["COMPLETED"], "2_0")
    assert (end.state, end.nodes, end.elapsed, end.req_mem_mb) == ("COMPLETED", "rwnode[1-2]", "00:00:19", 6144.0)
    assert end.max_rss_mb == pytest.approx(880164 / 1024)  # the largest step's, not the batch script's
    assert parse_sacct(SACCT["COMPLETED"], "2_1") is None  # no line of its own: no record
    assert [mem_mb(x) for x in ("829948K", "200M", "6G", "2048Mc", "1.5G", "", "?")] == [
        829948 / 1024,
        200.0,
        6144.0,
        2048.0,
        1536.0,
        None,
        None,
    ]

    def disabled(cmd, **kw):
        assert cmd[:2] == ["sacct", "-n"]
        return SimpleNamespace(returncode=1, stdout="", stderr="Slurm accounting storage is disabled")

    assert sacct_end("3_0", run=disabled) is None

    from randwire.training.slurm_end import sacct_ends

    def both(cmd, **kw):  # one call answers for every job of the sweep
        assert cmd[-2:] == ["-j", "2_0,5_1,7_0"]
        return SimpleNamespace(returncode=0, stdout=SACCT["COMPLETED"] + SACCT["NODE_FAIL"], stderr="")

    ends = sacct_ends(["2_0", "5_1", "7_0"], run=both)
    assert {job: end.word for job, end in ends.items()} == {"2_0": "COMPLETED", "5_1": "NODE_FAIL"}  # 7_0: no record
    assert sacct_ends(["2_0"], run=disabled) is None


def test_a_lost_job_is_recorded_in_slurms_words_where_it_keeps_accounting(tmp_path, capsys):
    from randwire.training.slurm_end import parse_sacct

    job = FakeJob("5_1", tmp_path)
    lost = []
    launcher.wait_for_jobs(
        [job],
        {},
        lambda i, job, line, end, status: lost.append((line, status, end.record()["nodes"])),
        sweep_dir="/s",
        poll_s=0,
        read_queue=_queue({}),
        read_end=lambda job_id: parse_sacct(SACCT["NODE_FAIL"], job_id),
    )
    assert lost == [
        (
            "Slurm job 5_1 ended without a result: node failed (Slurm NODE_FAIL on rwnode2); the same command with "
            "hydra.sweep.dir=/s runs it again",
            "node failed",
            "rwnode2",
        )
    ]


def test_a_job_out_of_time_with_no_requeue_left_is_one_line_and_recorded_timeout(tmp_path, capsys):
    """max_num_timeout=0: submitit ends the job with UncompletedJobError as its return, which the sweep used
    to raise as a traceback (exit 1, no summary). It is one line, the job is recorded ``timeout``, and the
    sweep goes on."""
    from hydra.core.utils import JobReturn, JobStatus
    from submitit.core.utils import UncompletedJobError

    class OutOfTime(FakeJob):
        def results(self):
            ret = JobReturn()
            ret.status, ret._return_value = (
                JobStatus.FAILED,
                UncompletedJobError("Job not requeued because: timed-out too many times."),
            )
            return [ret]

    job = OutOfTime("46_0", tmp_path)
    job.paths.result_pickle.write_bytes(b"done")
    lost = []
    returns = launcher.wait_for_jobs(
        [job],
        {"timeout_min": 1, "max_num_timeout": 0},
        lambda i, job, line, end, status: lost.append((status, line)),
        sweep_dir="/s",
        poll_s=0,
        read_queue=_queue({}),
    )
    assert returns[0].status == JobStatus.COMPLETED and returns[0].return_value is None
    line = (
        "Slurm job 46_0 ran out of time (timeout_min=1) and hydra.launcher.max_num_timeout=0 allows no more "
        "requeues; the same command with hydra.sweep.dir=/s continues it from its last checkpoint"
    )
    assert lost == [("timeout", line)]
    assert capsys.readouterr().err.strip() == f"error: job 0: {line}"


def test_a_job_whose_rank_failed_when_slurm_lost_its_node_is_node_failed(tmp_path, capsys):
    """A 2-node job loses a node: the surviving rank fails (gloo: connection reset by peer) and leaves a
    result. Slurm's record (NODE_FAIL) says what happened, so the job is ``node failed``, not ``failed``; a
    job that failed on its own (Slurm: FAILED) stays the rank's error."""
    from hydra.core.utils import JobReturn, JobStatus

    from randwire.training.slurm_end import parse_sacct

    class RankFailed(FakeJob):
        def results(self):
            ret = JobReturn()
            ret.status, ret._return_value = JobStatus.FAILED, RuntimeError("Read error: Connection reset by peer")
            return [ret]

    ends = {"5_1": parse_sacct(SACCT["NODE_FAIL"], "5_1"), "13_0": parse_sacct(SACCT["FAILED"], "13_0")}
    jobs = [RankFailed("5_1", tmp_path), RankFailed("13_0", tmp_path)]
    for job in jobs:
        job.paths.result_pickle.write_bytes(b"done")
    lost = []
    launcher.wait_for_jobs(
        jobs,
        {},
        lambda i, job, line, end, status: lost.append((i, status)),
        sweep_dir="/s",
        poll_s=0,
        read_queue=_queue({}),
        read_end=ends.get,
    )
    assert lost == [(0, "node failed")]
    err = capsys.readouterr().err
    assert "error: job 0: Slurm job 5_1 ended without a result: node failed (Slurm NODE_FAIL on rwnode2)" in err
    assert "error: Slurm job 13_0: Read error: Connection reset by peer" in err


def test_a_time_limit_warning_before_the_job_can_start_is_one_line():
    """timeout_min=1 with the default signal_delay_s=120: SIGUSR2 at the job's start killed it before its
    handlers were up (srun: 'User defined signal 2', FAILED) -- found on the two-node cluster."""
    with pytest.raises(SlurmRefused) as refused:
        launcher.check_signal_delay({"timeout_min": 1, "signal_delay_s": 120})
    assert str(refused.value) == (
        "hydra.launcher.signal_delay_s=120 is not allowed with timeout_min=1: Slurm's warning would come within "
        "15 s of the job's start, before it can checkpoint; allowed: signal_delay_s < 45 (60 * timeout_min - 15), "
        "or a longer timeout_min"
    )
    launcher.check_signal_delay({"timeout_min": 2, "signal_delay_s": 60})  # the requeue tests' setting
    launcher.check_signal_delay({"timeout_min": None, "signal_delay_s": 120})


# sacct --duplicates of job 203 while Slurm ran it again after its node died (a record per allocation)
REQUEUED_AFTER_NODE_FAIL = (
    "203|NODE_FAIL|0:0|rwnode1|00:00:02|6G|\n203.batch|CANCELLED||rwnode1|00:00:02||\n"
    "203|RUNNING|0:0|rwnode2|00:00:03|6G|\n203.batch|RUNNING|0:0|rwnode2|00:00:03||\n"
)


def test_an_attempt_slurm_requeued_after_its_node_failed_says_so(tmp_path, monkeypatch):
    """Issue 27: a job requeued by Slurm (JobRequeue=1) after NODE_FAIL runs again under its id; its earlier
    attempt never closed. The new attempt names how it ended from Slurm's record of that allocation; without
    one (no accounting) it stays ``killed (no end recorded)``."""
    from randwire.training import attempts, slurm_end

    def sacct(cmd, **kw):
        assert cmd[:2] == ["sacct", "--duplicates"] and cmd[-2:] == ["-j", "203"]
        return SimpleNamespace(returncode=0, stdout=REQUEUED_AFTER_NODE_FAIL, stderr="")

    end = slurm_end.earlier_allocation_end("203", run=sacct)
    assert (end.status(), end.describe()) == ("node failed", "node failed (Slurm NODE_FAIL on rwnode1)")
    running_only = "203|RUNNING|0:0|rwnode2|00:00:03|6G|\n"
    assert (
        slurm_end.earlier_allocation_end(
            "203", run=lambda cmd, **kw: SimpleNamespace(returncode=0, stdout=running_only)
        )
        is None
    )

    monkeypatch.setenv("SLURM_JOB_ID", "203")
    monkeypatch.delenv("SLURM_ARRAY_JOB_ID", raising=False)
    attempts.start_attempt(tmp_path, 1.0)  # the first allocation: killed with its node, never closed
    read = slurm_end.earlier_allocation_end
    monkeypatch.setattr(slurm_end, "earlier_allocation_end", lambda job: read(job, run=sacct))
    attempts.start_attempt(tmp_path, 2.0)
    first, second = attempts.end_attempt(tmp_path, "ok")["attempts"]
    assert (first["how"], first["slurm"], first["end"]) == (
        "node failed",
        "node failed (Slurm NODE_FAIL on rwnode1)",
        None,
    )
    assert second["how"] == "ok" and second["slurm_job"] == "203"
    monkeypatch.setattr(slurm_end, "earlier_allocation_end", lambda job: None)  # no accounting
    (tmp_path / "attempts.json").unlink()
    attempts.start_attempt(tmp_path, 1.0)
    attempts.start_attempt(tmp_path, 2.0)
    assert [a["how"] for a in attempts.end_attempt(tmp_path, "ok")["attempts"]] == ["killed (no end recorded)", "ok"]
