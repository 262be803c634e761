"""Several processes per run (DDP on CPU with gloo), signals as Slurm sends them, and the Slurm launcher's
resources derived from the trainer. Subprocess tests: DDP and signals need real processes."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import ROOT, TINY_NET, model_yaml, run_script

TINY_CLI = [
    *TINY_NET,
    "data.batch_size=16",
    "extras.print_config=false",
]


def _env() -> dict:
    # no WANDB_SERVICE: children must not share this test process's W&B service
    # nor the thread counts in-process runs of this test session exported (a user's shell has none)
    dropped = ("WANDB_SERVICE", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "RANDWIRE_THREADS")
    return {
        **{k: v for k, v in os.environ.items() if k not in dropped},
        "WANDB_MODE": "disabled",
        "PYTHONUNBUFFERED": "1",
    }


@pytest.mark.slow
def test_a_ddp_sweep_on_two_cpu_processes_is_exact_launched_once_and_a_failing_job_costs_it_nothing(tmp_path):
    """Issue 10: a multirun with the ddp strategy (2 gloo processes per job) gives exactly its job folders and
    a summary; the child ranks ran each job, not the sweep again; both ranks built the same graphs. Issue 9
    item 11: 125 samples -> a 31-image test split (not a multiple of 2): the DDP test metrics equal a
    one-process evaluation of the tested checkpoint, and epochs/steps are counted. Lightning SIGKILLs the
    launching process when a child rank dies, which in a sweep was every later job: here job 0 fails on both
    ranks (torch's SyncBatchNorm needs GPUs), job 1 still runs, the summary lists job 0 with its reason, the
    sweep exits 1, and no rank process is left behind."""
    sweep = tmp_path / "sweep"
    cmd = [
        sys.executable,
        "train.py",
        *TINY_CLI,
        "data.num_samples=125",
        "logger=csv",
        "trainer=ddp_cpu",
        "trainer.max_epochs=2",
        f"hydra.sweep.dir={sweep}",
        "-m",
        "trainer.sync_batchnorm=true,false",
    ]
    run = run_script(cmd, timeout=300, env=_env(), expect=1)
    assert run.stdout.count("Launching 2 jobs") + run.stderr.count("Launching 2 jobs") == 1
    assert "error: 1 of 2 jobs failed" in run.stderr
    assert sorted(p.name for p in sweep.iterdir() if p.is_dir()) == ["0", "1"]
    failed, done = (json.loads((sweep / job / "metrics.json").read_text()) for job in ("0", "1"))
    assert failed["status"] == "failed" and "SyncBatchNorm layers only work with GPU modules" in failed["error"]
    assert (sweep / "1" / "train_ddp_process_1.log").exists()  # rank 1 ran inside this job's folder
    assert done["status"] == "ok" and done["world_size"] == 2 and done["ranks_with_same_graphs"] == 2
    # 94 train images, batch 16 per rank, 2 ranks: 3 steps per epoch (DistributedSampler, drop_last)
    assert done["epochs"] == 2 and done["global_step"] == 6
    assert "| 1 |" in (sweep / "summary.md").read_text()
    left = run_script(["pgrep", "-f", f"hydra.run.dir={sweep}"], expect=None)
    assert left.stdout.strip() == ""

    from randwire.training.config import compose_config
    from randwire.training.evaluate import evaluate

    cfg = compose_config("evaluate", [f"ckpt={done['test_checkpoint']}", "split=test", f"out={tmp_path / 'e.json'}"])
    one_process = evaluate(cfg)
    assert one_process["samples"] == 31
    assert done["test/acc1"] == pytest.approx(one_process["acc1"], abs=1e-7)
    assert done["test/acc5"] == pytest.approx(one_process["acc5"], abs=1e-7)
    assert done["test/loss"] == pytest.approx(one_process["loss"], abs=1e-5)


def _graph_check_rank(rank: int, port: int, queue) -> None:
    import torch
    import torch.distributed as dist

    from randwire.models.architecture import sample_stage_graphs
    from randwire.models.errors import ConfigError
    from randwire.models.network import network_from_graphs
    from randwire.training.module import RandWireModule

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=2)
    graphs = sample_stage_graphs("lowres", "ws", 8, rank, k=4, p=0.75)  # rank 1 samples another seed
    net = network_from_graphs("lowres", graphs, 8, head_channels=32)
    module = RandWireModule(
        net,
        optimizer=lambda params, **kw: torch.optim.SGD(params, lr=0.1),
        **model_yaml(),
        image_size=32,
        batch_size=16,
    )
    module.trainer = type("T", (), {"world_size": 2})()
    try:
        module.setup("fit")
        queue.put((rank, "no error"))
    except ConfigError as err:
        queue.put((rank, str(err)))
    finally:
        dist.destroy_process_group()


def test_ranks_with_different_graphs_are_refused_on_every_rank():
    import socket

    import torch.multiprocessing as mp

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_graph_check_rank, args=(rank, port, queue)) for rank in (0, 1)]
    for p in procs:
        p.start()
    results = dict(queue.get(timeout=120) for _ in procs)
    for p in procs:
        p.join(timeout=60)
    assert sorted(results) == [0, 1]
    for message in results.values():
        assert message.startswith("ranks [1] built other stage graphs than rank 0")


def _wait_for(proc, prefix: str) -> list[str]:
    seen = []
    for line in proc.stdout:
        seen.append(line)
        if line.startswith(prefix):
            return seen
    raise AssertionError("".join(seen[-20:]))


@pytest.mark.slow
@pytest.mark.parametrize(
    "signum", [signal.SIGUSR2]
)  # SIGUSR1 takes its path; SIGTERM: tests/test_slurm.py, test_faults.py
def test_a_signal_checkpoints_mid_epoch_and_the_rerun_continues_there(tmp_path, signum):
    """Issue 10 item 2 / issue 9 item 3: Slurm's timeout warning (SIGUSR2 under submitit, SIGUSR1 in
    Lightning's convention) or preemption (SIGTERM) during a
    sweep: the job stops at the end of the current step, writes last.ckpt there, records why, and exits with
    the signal's code (the sweep stops: the next job never starts). Rerunning the sweep into its folder (what
    a requeue does) continues job 0 from that step and then runs job 1."""
    sweep = tmp_path / "sweep"
    cmd = [
        sys.executable,
        "train.py",
        *TINY_CLI,
        "data.num_samples=1280",
        "logger=csv",
        "trainer.max_epochs=2",
        f"hydra.sweep.dir={sweep}",
        "-m",
        "seed=0,1",
    ]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env())
    _wait_for(proc, "epoch 1/2")  # printed as epoch 1 starts, once epoch 0 is checkpointed
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signum, err[-2000:]
    name = signal.Signals(signum).name
    line = next(x for x in err.splitlines() if x.startswith("interrupted by"))
    assert line.startswith(f"interrupted by {name} at epoch 1, step ") and line.endswith(
        "the same command continues from it (a Slurm requeue does)"
    )
    step = int(line.split("step ")[1].split(":")[0])
    record = json.loads((sweep / "0" / "metrics.json").read_text())
    assert record["status"] == "interrupted" and record["global_step"] == step and 80 < step < 160
    import torch

    ckpt = torch.load(sweep / "0" / "checkpoints" / "last.ckpt", weights_only=True, map_location="cpu")
    assert ckpt["global_step"] == step and ckpt["epoch"] == 1  # written on the signal, mid-epoch 1
    assert not (sweep / "1").exists()  # the sweep stopped with the interrupted job
    from randwire.analysis.sweeps import collect

    _, failed = collect(sweep)  # issue 9 item 1: the job that never started is listed too
    assert [(r["job"], r["status"], r["seed"]) for r in failed] == [("0", "interrupted", 0), ("1", "never started", 1)]

    again = run_script(cmd, env=_env(), expect=0)
    assert f"resuming from the checkpoint written on a signal at epoch 1, step {step}" in again.stdout
    for job in ("0", "1"):
        metrics = json.loads((sweep / job / "metrics.json").read_text())
        assert metrics["status"] == "ok" and metrics["epochs"] == 2 and metrics["global_step"] == 160
        # each allocation of the job is an attempt; the total spans them (was the last one's only)
        assert [a["how"] for a in metrics["attempts"]] == (["interrupted", "ok"] if job == "0" else ["ok"])
        assert metrics["wall_time_total_s"] >= metrics["wall_time_s"]
    assert "| 2 |" in (sweep / "summary.md").read_text()


def _rank_process(parent: int, rank: int) -> int:
    """The pid of the child rank Lightning started for ``rank`` below ``parent``."""
    for child in (Path(f"/proc/{parent}/task/{parent}/children").read_text()).split():
        if f"train_ddp_process_{rank}" in Path(f"/proc/{child}/cmdline").read_text():
            return int(child)
    raise AssertionError(f"no rank {rank} process below {parent}")


@pytest.mark.slow
def test_a_signal_to_one_rank_stops_every_rank_at_the_same_step(tmp_path):
    """Issue 27 item 3: a signal reaches each rank at its own moment, some reach one rank only (on two nodes
    seconds apart). The ranks agree at the end of each step, so a SIGTERM to rank 1 alone stops both
    at the same step with one checkpoint (Lightning's handler broadcast from inside the signal handler, and
    a rank that stopped alone left the other in a mismatched collective)."""
    run = tmp_path / "run"
    cmd = [sys.executable, "train.py", *TINY_CLI, "data.num_samples=3400", "logger=csv", "trainer=ddp_cpu"]
    cmd = [*cmd, "trainer.max_epochs=2", f"hydra.run.dir={run}"]
    proc = subprocess.Popen(
        cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(), start_new_session=True
    )
    try:
        _wait_for(proc, "epoch 1/2")
        os.kill(_rank_process(proc.pid, 1), signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
    finally:  # ranks that disagreed wait on each other for good: leave none behind
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 128 + signal.SIGTERM, err[-3000:]
    stops = [line for line in err.splitlines() if line.startswith("interrupted by SIGTERM at epoch 1, step ")]
    assert len(stops) == 2 and stops[0] == stops[1], err[-3000:]  # rank 0 and rank 1, the same step
    step = int(stops[0].split("step ")[1].split(":")[0])
    import torch

    ckpt = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True, map_location="cpu")
    assert ckpt["global_step"] == step and ckpt["epoch"] == 1 and 106 < step < 212, step  # 106 steps an epoch
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["status"] == "interrupted" and metrics["global_step"] == step
    # the rerun of a DDP job stopped mid-epoch resumes exactly: tests/test_slurm.py (2-node requeue)


def test_an_interrupt_is_handed_to_submitit_for_the_requeue(monkeypatch):
    """One owner of the requeue: with submitit's SIGUSR1 handler installed, the interrupted job hands over
    to it (it requeues and exits); without one, the exit code is the signal's."""
    from submitit.core.job_environment import JobEnvironment

    from randwire.training.cli import hand_over_interrupt
    from randwire.training.errors import RunInterrupted

    usr = JobEnvironment._usr_sig()  # the signal submitit asks Slurm for and handles
    calls = []
    previous = signal.signal(usr, lambda signum, frame: calls.append(signum) or sys.exit(-1))
    try:
        with pytest.raises(SystemExit) as exit_info:
            hand_over_interrupt(RunInterrupted("interrupted by SIGUSR2", usr))
        assert calls == [usr] and exit_info.value.code == -1
        signal.signal(usr, signal.SIG_DFL)
        with pytest.raises(SystemExit) as exit_info:
            hand_over_interrupt(RunInterrupted("interrupted by SIGUSR2", usr))
        assert exit_info.value.code == 128 + usr
    finally:
        signal.signal(usr, previous)


def test_spawning_strategies_are_refused_in_one_line(compose_cfg, tmp_path):
    from randwire.models.errors import ConfigError
    from randwire.training.run import train

    cfg = compose_cfg("+trainer.strategy=ddp_spawn", "trainer.devices=2", run_dir=tmp_path / "run")
    with pytest.raises(ConfigError, match=r"^trainer.strategy='ddp_spawn' is not supported: use trainer.strategy=ddp"):
        train(cfg)
    assert not (tmp_path / "run").exists()


def _slurm_resources(*overrides: str) -> dict:
    from helpers import CONF
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    import randwire.training.schema  # noqa: F401  (schemas and resolvers)

    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        cfg = compose("train", overrides=["hydra/launcher=submitit_slurm", *overrides], return_hydra_config=True)
    return cfg, OmegaConf.to_container(cfg.hydra.launcher, resolve=True)


@pytest.mark.parametrize(
    "overrides, nodes, tasks, gpus",
    [
        (["trainer=gpu"], 1, 1, 1),
        (["trainer=ddp", "trainer.devices=8"], 1, 8, 8),
        (["trainer=ddp", "trainer.devices=8", "trainer.num_nodes=2"], 2, 8, 8),
        (["trainer=cpu"], 1, 1, None),
    ],
)
def test_slurm_launcher_resources_follow_the_trainer(overrides, nodes, tasks, gpus, tmp_path, monkeypatch):
    """Issue 10 item 1: the sbatch script submitit writes asks for what Lightning will expect: nodes =
    trainer.num_nodes, one task per device, GPUs per node = devices on a GPU trainer, a CPU per loader worker
    plus two, USR1 signal_delay_s before the limit; submitit requeues (max_num_timeout > 0)."""
    import submitit
    from omegaconf import OmegaConf
    from submitit.slurm import slurm

    from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf

    cfg, launcher = _slurm_resources(*overrides, "data.num_workers=8", "hydra.launcher.partition=gpu")
    assert (launcher["nodes"], launcher["tasks_per_node"], launcher["gpus_per_node"]) == (nodes, tasks, gpus)
    assert launcher["nodes"] == cfg.trainer.get("num_nodes", 1) and launcher["tasks_per_node"] == cfg.trainer.devices
    assert launcher["cpus_per_task"] == 10 and launcher["max_num_timeout"] > 0
    # what hydra-submitit-launcher hands to submitit (its launch(): base keys as they are, the rest slurm_*)
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "srun").write_text("#!/bin/sh\n")
    (tmp_path / "bin" / "srun").chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:{os.environ['PATH']}")
    base = set(OmegaConf.structured(BaseQueueConf).keys())
    params = {
        k if k in base else f"slurm_{k}": v
        for k, v in launcher.items()
        if k not in ("_target_", "submitit_folder", "max_num_timeout")
    }
    executor = submitit.AutoExecutor(
        folder=tmp_path / "s", cluster="slurm", slurm_max_num_timeout=launcher["max_num_timeout"]
    )
    executor.update_parameters(**params)
    script = slurm._make_sbatch_string(
        command="python -m submitit.core._submit", folder=tmp_path / "s", **executor._executor.parameters
    )
    assert f"#SBATCH --nodes={nodes}\n" in script and f"#SBATCH --ntasks-per-node={tasks}\n" in script
    assert (f"#SBATCH --gpus-per-node={gpus}\n" in script) == (gpus is not None)
    assert "#SBATCH --cpus-per-task=10\n" in script and "#SBATCH --partition=gpu\n" in script
    assert "#SBATCH --signal=USR2@120\n" in script and "#SBATCH --time=1440\n" in script


def test_slurm_launcher_refuses_devices_it_cannot_request():
    from omegaconf.errors import InterpolationResolutionError

    with pytest.raises(
        InterpolationResolutionError, match=r"trainer.devices='auto' is not allowed on Slurm: an integer >= 1"
    ):
        _slurm_resources("trainer.devices=auto")


@pytest.mark.slow
def test_submitit_local_sweep_runs_jobs_side_by_side_on_their_share_of_cores(tmp_path):
    """Issue 10 item 4: hydra/launcher=submitit_local starts both jobs at once; each sets its threads to
    its share of the cores (cores / 2) and says so; 2 result folders and a summary with provenance."""
    sweep = tmp_path / "sweep"
    cmd = [
        sys.executable,
        "train.py",
        *TINY_CLI,
        "data.num_samples=64",
        "logger=csv",
        f"hydra.sweep.dir={sweep}",
        "-m",
        "hydra/launcher=submitit_local",
        "seed=0,1",
    ]
    run = run_script(cmd, env=_env(), expect=0)
    assert "deprecated" not in run.stderr  # the schema-extension warning is the framework's choice, not news
    cores = len(os.sched_getaffinity(0))
    logs = "".join(p.read_text() for p in sweep.glob(".submitit/*/*_log.out"))
    expected = max(1, cores // 2)
    assert logs.count(f"CPU: {expected} torch/OpenMP/MKL thread") == 2
    assert logs.count(f"{cores} cores shared by 2 jobs at once under submitit_local") == 2
    for job in ("0", "1"):
        metrics = json.loads((sweep / job / "metrics.json").read_text())
        assert metrics["status"] == "ok" and metrics["provenance"]["cpu_threads"]["threads"] == expected
        assert metrics["provenance"]["packages"]["torch"] == __import__("importlib.metadata").metadata.version("torch")
    summary = (sweep / "summary.md").read_text()
    assert "| 2 |" in summary and "Provenance:" in summary


@pytest.mark.parametrize("world_size, accumulate", [(1, 1), (8, 1), (16, 2)])
def test_lr_scales_with_the_global_batch_of_any_world(world_size, accumulate):
    """§5: lr 0.1 per 256 images, scaled to the global batch = per-device batch x devices x nodes x
    accumulation (world_size = devices x nodes)."""
    from types import SimpleNamespace

    import torch

    from randwire.models.architecture import sample_stage_graphs
    from randwire.models.network import network_from_graphs
    from randwire.training.module import RandWireModule

    net = network_from_graphs("lowres", sample_stage_graphs("lowres", "ws", 8, 0, k=4, p=0.75), 8, head_channels=32)
    make = __import__("functools").partial(torch.optim.SGD, lr=0.1, momentum=0.9)
    module = RandWireModule(net, optimizer=make, **model_yaml(), batch_size=64, image_size=32)
    module._trainer = SimpleNamespace(world_size=world_size, accumulate_grad_batches=accumulate)
    assert module.global_batch_size() == 64 * world_size * accumulate
    optimizer = module.configure_optimizers()
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.1 * 64 * world_size * accumulate / 256)


def test_site_slurm_values_come_from_the_local_override(tmp_path):
    """Issue 10 item 1: partition and account live in the git-ignored conf/local/default.yaml, which may also
    make Slurm the site's launcher for every -m sweep."""
    from helpers import CONF
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    site = tmp_path / "site"
    (site / "local").mkdir(parents=True)
    (site / "local" / "default.yaml").write_text(
        "# @package _global_\ndefaults:\n  - override /hydra/launcher: submitit_slurm\n"
        "hydra:\n  launcher:\n    partition: gpu\n    account: mylab\n"
    )
    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        cfg = compose(
            "train",
            overrides=[f"hydra.searchpath=[file://{site}]", "trainer=ddp", "trainer.devices=8"],
            return_hydra_config=True,
        )
    launcher = OmegaConf.to_container(cfg.hydra.launcher, resolve=True)
    assert (launcher["partition"], launcher["account"], launcher["tasks_per_node"]) == ("gpu", "mylab", 8)


@pytest.mark.slow
def test_local_ddp_inside_a_submitit_job(tmp_path):
    """Under submitit, sys.argv is submitit's entry point: Lightning would start the child rank as another
    submitit job process; it runs this job's train.py in the job folder instead."""
    sweep = tmp_path / "sweep"
    cmd = [
        sys.executable,
        "train.py",
        *TINY_CLI,
        "data.num_samples=64",
        "logger=none",
        "trainer=ddp_cpu",
        f"hydra.sweep.dir={sweep}",
        "-m",
        "hydra/launcher=submitit_local",
        "seed=0",
    ]
    run_script(cmd, timeout=300, env=_env(), expect=0)
    metrics = json.loads((sweep / "0" / "metrics.json").read_text())
    assert metrics["status"] == "ok" and metrics["world_size"] == 2 and metrics["ranks_with_same_graphs"] == 2
    assert (sweep / "0" / "train_ddp_process_1.log").exists()


def test_submitits_sacct_trouble_is_said_once(caplog, capsys):
    import logging

    from randwire.training.cli import _SaidOnce, _say_sacct_trouble_once

    _SaidOnce.said = False
    _say_sacct_trouble_once()
    _say_sacct_trouble_once()  # idempotent: one filter
    logger = logging.getLogger("submitit")
    with caplog.at_level(logging.WARNING, logger="submitit"):
        for call in range(3):
            logger.warning(
                f"Call #{call} - Bypassing sacct error Command 'sacct' returned 1, status may be inaccurate."
            )
        logger.warning("Job 12 was requeued")
    assert [r.getMessage() for r in caplog.records if r.name == "submitit"] == ["Job 12 was requeued"]
    # reading: only our lines (a handler left by an earlier in-process run may print logging errors here)
    said = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning:") and "sacct" in line]
    assert said == [
        "warning: sacct fails here (no Slurm job accounting?): the sweep learns that a job ended from "
        "the job's own result file (said once)"
    ]


def test_a_machine_with_slurm_installed_does_not_nag_about_srun(compose_cfg, tmp_path, monkeypatch, recwarn):
    """Lightning warns on every run where `srun` is on PATH and not used; a run outside an allocation (and one
    that the launcher started with srun) has nothing to act on."""
    from helpers import TINY

    from randwire.training.run import train

    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "srun").write_text("#!/bin/sh\nexit 0\n")
    (fake / "srun").chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake}:{os.environ['PATH']}")
    from lightning_fabric.plugins.environments import SLURMEnvironment

    with pytest.warns(Warning, match="The `srun` command is available"):
        SLURMEnvironment.detect()  # what Lightning says without the project's filter
    recwarn.clear()
    train(compose_cfg(*TINY, run_dir=tmp_path / "run"))
    assert not [w for w in recwarn if "srun" in str(w.message)]
