"""Sweeps on a real Slurm (issue 16): the one-node cluster of ``scripts/slurm_local.sh``, which ``.ci/run``
starts. Skipped, with the reason, where there is no Slurm (a user's laptop); CI sets RANDWIRE_REQUIRE_SLURM=1,
so there a Slurm that is not up fails instead. Each job is tiny and asks one CPU, so two run at once on a
2-core machine."""

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from helpers import ROOT, TINY_NET

TINY_SLURM = [
    *TINY_NET,
    "data.batch_size=16",
    "extras.print_config=false",
    "-m",
    "hydra/launcher=submitit_slurm",
    "hydra.launcher.cpus_per_task=1",
    "hydra.launcher.timeout_min=20",
]


def _slurm_up() -> str | None:
    """None when sbatch is there and the controller answers, else why not."""
    if shutil.which("sbatch") is None:
        return "no Slurm here (sbatch not on PATH); sudo scripts/slurm_local.sh start sets one up"
    ping = subprocess.run(["scontrol", "ping"], capture_output=True, text=True, timeout=30)
    if "UP" not in ping.stdout:
        return "Slurm's controller is not up (sudo scripts/slurm_local.sh start)"
    return None


@pytest.fixture(scope="module", autouse=True)
def slurm():
    why = _slurm_up()
    if why is not None:
        if os.environ.get("RANDWIRE_REQUIRE_SLURM") == "1":
            pytest.fail(f"RANDWIRE_REQUIRE_SLURM=1 but {why}")
        pytest.skip(why)


pytestmark = [pytest.mark.slow, pytest.mark.slurm]


def _accounting() -> bool:
    """Whether this cluster keeps job accounting (sacct answers)."""
    return subprocess.run(["sacct", "-n", "-X", "-j", "1"], capture_output=True, timeout=30).returncode == 0


@pytest.fixture
def two_nodes():
    """The nodes of a two-node cluster with accounting (scripts/slurm_local.sh start --nodes 2 --accounting),
    which CI starts; elsewhere the test is skipped with the reason, in CI (RANDWIRE_REQUIRE_SLURM=1) it fails."""
    nodes = sorted(
        set(subprocess.run(["sinfo", "-h", "-N", "-o", "%N"], capture_output=True, text=True).stdout.split())
    )
    if len(nodes) < 2 or not _accounting():
        why = f"needs two Slurm nodes with accounting (sudo scripts/slurm_local.sh start --nodes 2 --accounting); here: {nodes}"
        if os.environ.get("RANDWIRE_REQUIRE_SLURM") == "1":
            pytest.fail(why)
        pytest.skip(why)
    return nodes


def _env() -> dict:
    dropped = ("WANDB_SERVICE", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "RANDWIRE_THREADS")
    return {
        **{k: v for k, v in os.environ.items() if k not in dropped},
        "WANDB_MODE": "offline",
        "PYTHONUNBUFFERED": "1",
        "PYTHONPATH": str(ROOT / "tests"),  # the jobs' test-only callbacks (job_callbacks)
    }


def _sweep(sweep: Path, *args: str, timeout: int = 400) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "train.py", *TINY_SLURM, *args, f"hydra.sweep.dir={sweep}"]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout, env=_env())


def _start_sweep(sweep: Path, *args: str) -> subprocess.Popen:
    cmd = [sys.executable, "train.py", *TINY_SLURM, *args, f"hydra.sweep.dir={sweep}"]
    return subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env())


def _slurm_job_of(sweep: Path, job: str, timeout: float = 120) -> str:
    """The Slurm id of sweep job ``job`` once it has started training (its first attempt is recorded)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            attempts = json.loads((sweep / job / "attempts.json").read_text())
            if attempts and attempts[-1].get("slurm_job"):
                return attempts[-1]["slurm_job"]
        except (OSError, ValueError):
            pass
        time.sleep(0.5)
    raise AssertionError(f"job {job} of {sweep} did not start within {timeout} s")


def _metrics(sweep: Path, job: str) -> dict:
    return json.loads((sweep / job / "metrics.json").read_text())


def _weights(sweep: Path, job: str) -> dict:
    return torch.load(sweep / job / "checkpoints" / "last.ckpt", weights_only=True, map_location="cpu")["state_dict"]


def test_the_signature_sweep_with_the_default_logger_survives_a_preemption(tmp_path):
    """Item 1: the README's command shape (graph=ba graph.m=5 -m seed=...) with W&B (offline), and
    ``scontrol requeue`` of job 0 while it trains, as preemption does: SIGTERM reaches every process of the
    job, W&B's service too; the job checkpoints, Slurm starts it again (after cred_expire, 10 s here) and it
    resumes. The sweep exits 0 with a summary of both seeds; both allocations are in the job's attempts
    (was: `status: failed` from W&B's lost connection, exit 1, a stale summary)."""
    sweep = tmp_path / "sweep"
    proc = _start_sweep(sweep, "graph=ba", "graph.m=5", "data.num_samples=2048", "trainer.max_epochs=2", "seed=0,1")
    slurm_job = _slurm_job_of(sweep, "0")
    time.sleep(3)  # into the first epoch
    subprocess.run(["scontrol", "requeue", slurm_job], check=True)
    _, err = proc.communicate(timeout=400)
    assert proc.returncode == 0, err[-3000:]
    for job in ("0", "1"):
        metrics = _metrics(sweep, job)
        assert metrics["status"] == "ok" and metrics["global_step"] == 2 * 2048 // 16
        assert metrics["wandb"]["offline"] is True  # the default logger
        assert [a["how"] for a in metrics["attempts"]] == (["interrupted", "ok"] if job == "0" else ["ok"])
        assert metrics["attempts"][-1]["slurm_job"].endswith(f"_{job}")
    assert len({a["pid"] for a in _metrics(sweep, "0")["attempts"]}) == 2
    summary = (sweep / "summary.md").read_text()
    assert "| 0,1 |" in summary and "Failed jobs" not in summary


def test_a_cancelled_job_is_summarised_and_the_rerun_finishes_it(tmp_path):
    """Item 2: scancel of one of two jobs (no job accounting here: submitit alone waited forever). The
    sweep ends with exit 1 and a summary listing the job as cancelled; the same command finishes it."""
    sweep = tmp_path / "sweep"
    args = ("logger=csv", "data.num_samples=1024", "trainer.max_epochs=3", "seed=0,1")
    proc = _start_sweep(sweep, *args)
    victim = _slurm_job_of(sweep, "1")
    subprocess.run(["scancel", victim], check=True)
    _, err = proc.communicate(timeout=400)
    assert proc.returncode == 1, err[-3000:]
    how = "cancelled (Slurm CANCELLED by 0)" if _accounting() else "cancelled, or its node failed"
    assert f"error: job 1: Slurm job {victim} ended without a result: {how}" in err
    assert f"error: 1 of 2 jobs failed (listed in {sweep}/summary.md)" in err
    cancelled = _metrics(sweep, "1")
    assert cancelled["status"] == "cancelled" and cancelled["seed"] == 1
    assert cancelled["error"].endswith(f"the same command with hydra.sweep.dir={sweep} runs it again")
    summary = (sweep / "summary.md").read_text()
    row = next(
        line for line in summary.splitlines() if f"| cancelled | Slurm job {victim} ended without a result" in line
    )
    assert row.startswith("| 1 | ") and "| 1 | cancelled |" in row  # job 1, seed 1
    assert _metrics(sweep, "0")["status"] == "ok"

    again = _sweep(sweep, *args)
    assert again.returncode == 0, again.stderr[-3000:]
    assert _metrics(sweep, "1")["status"] == "ok" and "cancelled" not in (sweep / "summary.md").read_text()


SAMPLES = 7680  # 480 steps an epoch


def test_time_limits_a_warning_mid_epoch_is_requeued_exactly_and_none_left_is_timeout(tmp_path):
    """Items 1 and 4: Slurm's time-limit warning (SIGUSR2, as ``--signal=USR2@<s>`` sends it to the job's
    step; here ``scancel --signal=USR2`` mid-epoch 1, so this part does not wait for a time limit) stops the
    job at the step with a checkpoint, submitit requeues it, and the job resumes at the next batch: the final
    weights and test metrics equal those of the same job run without a signal (a second sweep, at the same
    time on another CPU). Issue 27, beside them: a sweep at a real time limit (timeout_min=2) with
    hydra.launcher.max_num_timeout=0. Its slow job stops at Slurm's own warning with a checkpoint and is
    recorded ``timeout`` in one line (submitit's UncompletedJobError was a traceback of the whole sweep);
    its quick one finishes; that sweep exits 1."""
    out_of_time = (
        "logger=none",
        "data.num_samples=2048",
        "trainer.max_epochs=1",
        "hydra.launcher.timeout_min=2",
        "hydra.launcher.signal_delay_s=60",  # the warning 30-60 s in (slurmctld checks limits every 30 s)
        "hydra.launcher.max_num_timeout=0",
        "+callbacks.pace._target_=job_callbacks.Pace",
        "+callbacks.pace.min_step_s=0,0.6",  # job 0: a few seconds of steps; job 1: 128 of 0.6 s, past the limit
    )
    timed = _start_sweep(tmp_path / "timed", *out_of_time)
    args = ("logger=csv", f"data.num_samples={SAMPLES}", "data.augment=crop", "trainer.max_epochs=2", "seed=0")
    args = (*args, "+trainer.limit_val_batches=10")  # a signal during validation would wait for an epoch's end
    limited = _start_sweep(tmp_path / "limited", *args)
    free = _start_sweep(tmp_path / "free", *args)
    job = _slurm_job_of(tmp_path / "limited", "0")
    log = next((tmp_path / "limited" / ".submitit").rglob("*_log.out"), None)
    deadline = time.time() + 180
    while log is None or not any(line.startswith("epoch 1/2 ") for line in log.read_text().splitlines()):
        assert time.time() < deadline, "job 0 did not finish its first epoch"  # the line ends an epoch
        time.sleep(0.2)
        log = log or next((tmp_path / "limited" / ".submitit").rglob("*_log.out"), None)
    time.sleep(1)  # into epoch 1
    subprocess.run(["scancel", "--signal=USR2", job], check=True)
    for proc in (limited, free):
        _, err = proc.communicate(timeout=400)
        assert proc.returncode == 0, err[-3000:]
    a, b = _metrics(tmp_path / "limited", "0"), _metrics(tmp_path / "free", "0")
    assert [x["how"] for x in a["attempts"]] == ["interrupted", "ok"] and [x["how"] for x in b["attempts"]] == ["ok"]
    logs = "".join(p.read_text() for p in (tmp_path / "limited" / ".submitit").rglob("*_log.err"))
    stop = next(line for line in logs.splitlines() if line.startswith("interrupted by SIGUSR2 at epoch 1, step "))
    assert 480 < int(stop.split("step ")[1].split(":")[0]) < 960, stop  # mid-epoch 1
    for key in ("test/acc1", "test/loss", "val/acc1_best", "global_step"):
        assert a[key] == b[key], key
    assert Path(a["test_checkpoint"]).name == Path(b["test_checkpoint"]).name == "best.ckpt"
    wa, wb = _weights(tmp_path / "limited", "0"), _weights(tmp_path / "free", "0")
    for name in wa:
        torch.testing.assert_close(wa[name], wb[name], rtol=0, atol=0, msg=name)

    sweep = tmp_path / "timed"
    _, err = timed.communicate(timeout=300)
    assert timed.returncode == 1 and "Traceback" not in err, err[-3000:]
    line = "ran out of time (timeout_min=2) and hydra.launcher.max_num_timeout=0 allows no more requeues"
    assert "error: job 1: Slurm job " in err and line in err, err[-3000:]
    assert _metrics(sweep, "0")["status"] == "ok"
    slow = _metrics(sweep, "1")
    assert slow["status"] == "timeout" and slow["error"].endswith("continues it from its last checkpoint")
    assert (sweep / "1" / "checkpoints" / "last.ckpt").exists()
    assert "| timeout | Slurm job " in (sweep / "summary.md").read_text()
    assert [a["how"] for a in slow["attempts"]] == ["timeout"]  # the rerun resumes it as the requeue above did


def test_a_request_the_partition_can_never_satisfy_is_one_line(tmp_path):
    """Item 3: a job of 3 nodes on a partition of 1 or 2 pends forever (Reason=PartitionNodeLimit or PartitionConfig) (a
    request over every node's CPUs or memory is refused at submission: the second case); the sweep says so
    in one line, cancels its jobs and exits 2."""
    sweep = tmp_path / "sweep"
    nodes = ("trainer=ddp_cpu", "trainer.num_nodes=3", "trainer.devices=1")
    run = _sweep(sweep, "logger=none", *nodes, "seed=0,1", timeout=120)
    assert run.returncode == 2, run.stderr[-3000:]
    lines = [ln for ln in run.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: Slurm will never start job "), lines
    said = r"\(Reason=Partition(NodeLimit|Config)\): the request nodes=3 tasks_per_node=1 cpus_per_task=1"
    assert re.search(said, lines[0]), lines[0]
    assert re.search(r"is more than the partition offers \(debug: \d nodes? of \d+ CPUs", lines[0]), lines[0]
    array = lines[0].split("start job ")[1].split("_")[0]
    assert subprocess.run(["squeue", "-h", "-j", array], capture_output=True, text=True).stdout.strip() == ""
    early = _sweep(tmp_path / "early", "logger=none", "hydra.launcher.timeout_min=1", "seed=0", timeout=120)
    assert early.returncode == 2 and early.stderr.strip().startswith(
        "error: hydra.launcher.signal_delay_s=120 is not allowed with timeout_min=1: Slurm's warning would come"
    )
    assert len(early.stderr.strip().splitlines()) == 1 and not (tmp_path / "early").exists()  # nothing submitted
    refused = _sweep(tmp_path / "refused", "logger=none", "hydra.launcher.mem_gb=100000", "seed=0", timeout=120)
    assert refused.returncode == 2
    assert refused.stderr.strip().splitlines() == [
        "error: Slurm refused the sweep's jobs: Memory specification can not be satisfied; Batch job submission "
        "failed: Requested node configuration is not available (the request: nodes=1 tasks_per_node=1 "
        "cpus_per_task=1 mem_gb=100000 timeout_min=20)"
    ]


def test_two_task_ddp_through_srun_equals_one_process(tmp_path):
    """Slurm starts both ranks (srun, 2 tasks x 1 CPU); Lightning's SLURMEnvironment joins them; the DDP
    test metrics equal a one-process evaluation of the same checkpoint."""
    sweep = tmp_path / "sweep"
    run = _sweep(sweep, "logger=csv", "trainer=ddp_cpu", "data.num_samples=125", "trainer.max_epochs=1", "seed=0")
    assert run.returncode == 0, run.stderr[-3000:]
    metrics = _metrics(sweep, "0")
    assert metrics["world_size"] == 2 and metrics["ranks_with_same_graphs"] == 2
    assert not list((sweep / "0").glob("train_ddp_process_*.log"))  # Slurm started the ranks, not Lightning
    from randwire.training.config import compose_config
    from randwire.training.evaluate import evaluate

    cfg = compose_config("evaluate", [f"ckpt={metrics['test_checkpoint']}", "split=test", f"out={tmp_path / 'e.json'}"])
    one = evaluate(cfg)
    assert one["samples"] == 31
    assert metrics["test/acc1"] == pytest.approx(one["acc1"], abs=1e-7)
    assert metrics["test/loss"] == pytest.approx(one["loss"], abs=1e-5)


def test_a_two_node_ddp_sweep_equals_one_process_and_a_requeue_mid_epoch_changes_nothing(tmp_path, two_nodes):
    """Issue 27 item 3: two seeds, one task per node, gloo across the nodes; the ranks take world, rank and
    master address from Slurm; the graph check runs across nodes; both hosts are recorded; the DDP test
    metrics equal a one-process evaluation of the same checkpoint; the summary carries Slurm's record. Job 0
    is requeued mid-epoch (``scontrol requeue``: SIGTERM to both nodes' ranks): both stop at the same step,
    and the job resumes to final weights bit-equal to the same job run uninterrupted (a second sweep)."""
    ddp = ("logger=csv", "trainer=ddp_cpu", "trainer.num_nodes=2", "trainer.devices=1", "data.num_samples=4096")
    ddp = (*ddp, "trainer.max_epochs=2")
    proc = _start_sweep(tmp_path / "sweep", *ddp, "seed=0,1")
    free = _start_sweep(tmp_path / "free", *ddp, "seed=0")
    slurm_job = _slurm_job_of(tmp_path / "sweep", "0")
    deadline = time.time() + 300
    while not (tmp_path / "sweep" / "0" / "checkpoints" / "last.ckpt").exists():  # epoch 0 (128 steps) done
        assert time.time() < deadline, "job 0 wrote no checkpoint"
        time.sleep(0.2)
    time.sleep(2)  # into epoch 1
    subprocess.run(["scontrol", "requeue", slurm_job], check=True)
    for p in (proc, free):
        _, err = p.communicate(timeout=400)
        assert p.returncode == 0, err[-3000:]
    logs = "".join(p.read_text() for p in (tmp_path / "sweep" / ".submitit").rglob("*_log.err"))
    stops = [line for line in logs.splitlines() if line.startswith("interrupted by SIGTERM at epoch 1, step ")]
    assert len(stops) == 2 and stops[0] == stops[1], stops  # both ranks, at the same step
    assert 128 < int(stops[0].split("step ")[1].split(":")[0]) < 256, stops[0]  # mid-epoch
    for job in ("0", "1"):
        metrics = _metrics(tmp_path / "sweep", job)
        assert metrics["status"] == "ok" and metrics["world_size"] == 2 and metrics["ranks_with_same_graphs"] == 2
        assert metrics["rank_hosts"] == two_nodes[:2] and metrics["provenance"]["num_nodes"] == 2
        end = metrics["slurm_end"]
        assert end["state"] == "COMPLETED" and end["nodes"] == "rwnode[1-2]" and end["max_rss_mb"] > 100
    a, b = _metrics(tmp_path / "sweep", "0"), _metrics(tmp_path / "free", "0")
    assert [x["how"] for x in a["attempts"]] == ["interrupted", "ok"] and [x["how"] for x in b["attempts"]] == ["ok"]
    for key in ("test/acc1", "test/loss", "val/acc1_best", "global_step"):
        assert a[key] == b[key], key
    wa, wb = _weights(tmp_path / "sweep", "0"), _weights(tmp_path / "free", "0")
    for name in wa:
        torch.testing.assert_close(wa[name], wb[name], rtol=0, atol=0, msg=name)
    from randwire.training.config import compose_config
    from randwire.training.evaluate import evaluate

    metrics = _metrics(tmp_path / "sweep", "1")
    out = f"out={tmp_path / 'e.json'}"
    one = evaluate(compose_config("evaluate", [f"ckpt={metrics['test_checkpoint']}", "split=test", out]))
    assert one["samples"] == 1024
    assert metrics["test/acc1"] == pytest.approx(one["acc1"], abs=1e-7)
    assert metrics["test/loss"] == pytest.approx(one["loss"], abs=1e-5)
    summary = (tmp_path / "sweep" / "summary.md").read_text()
    assert "Slurm's record (sacct):" in summary and "| 1 | COMPLETED | rwnode[1-2] |" in summary


def test_a_job_over_its_memory_request_is_out_of_memory_in_slurms_words(tmp_path, two_nodes):
    """Issue 27 item 5: 1500 MB per CPU; job 1 holds 2000 MB more than it needs to run. Slurm kills it (here:
    FAILED with MaxRSS over ReqMem; OUT_OF_MEMORY where cgroups enforce memory); the summary and the sweep's
    error name it, with the memory Slurm saw; job 0 finishes. The same command with more memory per CPU
    finishes job 1."""
    sweep = tmp_path / "sweep"
    hog = ("+callbacks.hog._target_=job_callbacks.Hog", "+callbacks.hog.mb=0,2000")
    run = _sweep(sweep, "logger=none", "data.num_samples=64", "hydra.launcher.mem_per_cpu=1500", *hog)
    assert run.returncode == 1, run.stderr[-3000:]
    assert "error: 1 of 2 jobs failed" in run.stderr
    assert _metrics(sweep, "0")["status"] == "ok"
    killed = _metrics(sweep, "1")
    assert killed["status"] == "out of memory", killed
    said = re.search(
        r"out of memory \(Slurm killed it at (\d+) MB: (FAILED|OUT_OF_MEMORY), ReqMem 1500 MB\)", killed["error"]
    )
    assert said and int(said.group(1)) > 1500, killed["error"]
    summary = (sweep / "summary.md").read_text()
    assert "| out of memory | Slurm job " in summary and "Slurm's record (sacct):" in summary

    again = _sweep(sweep, "logger=none", "data.num_samples=64", "hydra.launcher.mem_per_cpu=4000", *hog)
    assert again.returncode == 0, again.stderr[-3000:]
    assert _metrics(sweep, "1")["status"] == "ok" and "out of memory" not in (sweep / "summary.md").read_text()


def _kill_node(node: str) -> None:
    """A node dies: its slurmd killed (as a crash), the node marked DOWN, and the job processes it ran ended
    (slurmstepd ignores SIGTERM, and a dead machine runs nothing: these would hold the run folder's lock)."""
    run = Path("/run/randwire-slurm")
    os.kill(int((run / f"slurmd-{node}.pid").read_text()), 9)
    subprocess.run(["scontrol", "update", f"nodename={node}", "state=down", "reason=test: node died"], check=True)
    uts = (run / f"{node}.uts").read_text().strip()
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if os.readlink(proc / "ns" / "uts") == uts:
                os.kill(int(proc.name), 9)
        except OSError:
            pass


def test_a_node_that_dies_ends_its_job_as_node_failed_and_the_rerun_resumes_it_elsewhere(tmp_path, two_nodes):
    """Issue 27 item 4: two one-node jobs (5 GB each: one per node); the node of job 1 dies mid-epoch with
    Slurm's requeue off. Job 1 is `node failed (Slurm NODE_FAIL on <node>)`, job 0 finishes on the other
    node, the sweep exits 1. With the node back, the same command with Slurm's requeue on resumes job 1 from
    its last checkpoint, and its node dies again: Slurm requeues it (JobRequeue=1), it takes the folder over
    from its earlier allocation and resumes on the surviving node; its attempts read node failed, node
    failed, ok, from Slurm's record of each allocation."""
    sweep = tmp_path / "sweep"
    args = (
        "logger=csv",
        "data.num_samples=1024",
        "trainer.max_epochs=4",
        "hydra.launcher.mem_gb=5",  # one job a node (9.4 GB each); one thread: 2-thread jobs oversubscribed the cores
        "+hydra.launcher.additional_parameters.no_requeue=true",
        "+callbacks.pace._target_=job_callbacks.Pace",
        "+callbacks.pace.min_step_s=0.05",
        "seed=0,1",
    )
    proc = _start_sweep(sweep, *args)
    victim = _slurm_job_of(sweep, "1")
    node = subprocess.run(["squeue", "-h", "-j", victim, "-o", "%N"], capture_output=True, text=True).stdout.strip()
    assert node in two_nodes
    deadline = time.time() + 120
    while not (sweep / "1" / "checkpoints" / "last.ckpt").exists():  # a checkpoint to resume from
        assert time.time() < deadline, "job 1 wrote no checkpoint"
        time.sleep(0.5)
    try:
        _kill_node(node)
        _, err = proc.communicate(timeout=400)
    finally:
        subprocess.run([str(ROOT / "scripts" / "slurm_local.sh"), "start", "--nodes", "2", "--accounting"], check=True)
    assert proc.returncode == 1, err[-3000:]
    said = f"error: job 1: Slurm job {victim} ended without a result: node failed (Slurm NODE_FAIL on {node})"
    assert said in err, err[-3000:]
    dead = _metrics(sweep, "1")
    assert dead["status"] == "node failed" and dead["slurm_end"]["state"] == "NODE_FAIL"
    assert [a["how"] for a in dead["attempts"]] == ["node failed"]
    assert _metrics(sweep, "0")["status"] == "ok"
    assert f"| node failed | Slurm job {victim} ended without a result" in (sweep / "summary.md").read_text()

    requeue_on = [a for a in args if "no_requeue" not in a]
    resumed_from = (sweep / "1" / "checkpoints" / "last.ckpt").stat().st_mtime
    again = _start_sweep(sweep, *requeue_on)
    deadline = time.time() + 180
    while True:  # the rerun's attempt has written a checkpoint of its own: kill its node
        assert time.time() < deadline, "the rerun of job 1 wrote no checkpoint"
        attempts = json.loads((sweep / "1" / "attempts.json").read_text())
        if len(attempts) == 2 and (sweep / "1" / "checkpoints" / "last.ckpt").stat().st_mtime > resumed_from:
            break
        time.sleep(0.5)
    rerun_job = attempts[1]["slurm_job"]
    second = subprocess.run(["squeue", "-h", "-j", rerun_job, "-o", "%N"], capture_output=True, text=True).stdout
    try:
        _kill_node(second.strip())
        _, err = again.communicate(timeout=400)
    finally:
        subprocess.run([str(ROOT / "scripts" / "slurm_local.sh"), "start", "--nodes", "2", "--accounting"], check=True)
    assert again.returncode == 0, err[-3000:]
    done = _metrics(sweep, "1")
    assert done["status"] == "ok" and done["global_step"] == 4 * 1024 // 16
    hows = [(a["how"], a.get("slurm"), a["slurm_job"]) for a in done["attempts"]]
    assert hows == [
        ("node failed", None, victim),  # closed by the launcher of the first sweep (requeue off)
        ("node failed", f"node failed (Slurm NODE_FAIL on {second.strip()})", rerun_job),  # by its requeued self
        ("ok", None, rerun_job),
    ]
    assert done["attempts"][2]["host"] != second.strip()
    takeover = f"the run that held it ended without releasing it (host {second.strip()}, pid "  # the dead node's
    assert takeover in "".join(p.read_text() for p in (sweep / ".submitit").rglob("*_log.err"))
    assert "node failed" not in (sweep / "summary.md").read_text()


def test_a_two_node_job_that_loses_a_node_is_node_failed_with_no_rank_left(tmp_path, two_nodes):
    """Issue 27 item 4: a 2-node DDP job (one rank per node, requeue off) whose second node dies mid-epoch
    ends as ``node failed`` in Slurm's words, without a hang; the surviving rank does not stay running."""
    sweep = tmp_path / "sweep"
    args = (
        "logger=csv",
        "trainer=ddp_cpu",
        "trainer.num_nodes=2",
        "trainer.devices=1",
        "data.num_samples=2048",
        "trainer.max_epochs=2",
        "+hydra.launcher.additional_parameters.no_requeue=true",
        "+callbacks.pace._target_=job_callbacks.Pace",
        "+callbacks.pace.min_step_s=0.1",
        "seed=0",
    )
    started = time.time()
    proc = _start_sweep(sweep, *args)
    victim = _slurm_job_of(sweep, "0")
    deadline = time.time() + 120
    while not (sweep / "0" / "checkpoints" / "last.ckpt").exists():  # mid-run: epoch 0 done
        assert time.time() < deadline, "job 0 wrote no checkpoint"
        time.sleep(0.5)
    try:
        _kill_node(two_nodes[1])
        _, err = proc.communicate(timeout=300)
    finally:
        subprocess.run([str(ROOT / "scripts" / "slurm_local.sh"), "start", "--nodes", "2", "--accounting"], check=True)
    assert proc.returncode == 1, err[-3000:]
    dead = _metrics(sweep, "0")
    assert dead["status"] == "node failed" and dead["slurm_end"]["state"] == "NODE_FAIL", dead
    assert [a["how"] for a in dead["attempts"]] == ["node failed"]  # what a rank said then is in its log
    assert f"error: job 0: Slurm job {victim} ended without a result: node failed (Slurm NODE_FAIL on " in err
    assert time.time() - started < 240  # no rank waited for its lost peer until a timeout
    left = subprocess.run(["pgrep", "-f", str(sweep)], capture_output=True, text=True)
    assert left.stdout.strip() == "", left.stdout
