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
    monkeypatch.setattr(launcher, "_ended_as", lambda job: "cancelled, or its node failed")
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
        lambda i, job, line: lost.append((i, line)),
        sweep_dir="/s",
        poll_s=0,
        read_queue=_queue({"7_1": ("RUNNING", "None")}, {}),
    )
    assert returns[0] == "return of 7_0" and returns[1].return_value is None
    assert lost == [
        (
            1,
            "Slurm job 7_1 ended without a result (cancelled, or its node failed); the same command "
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
