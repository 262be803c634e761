"""Faults a user meets on a real machine: a full disk, Ctrl-C, two processes in one run folder."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from helpers import ROOT, TINY, TINY_WITH_CHECKPOINTS, run_script

from randwire.training.errors import WriteError
from randwire.training.run import train

# torch.save on a full disk: the OSError surfaces as torch's own RuntimeError, with the OSError as context.
FULL_DISK_AFTER = """
import errno, io, torch
_save, _calls = torch.save, [0]
def save(obj, f, *a, **k):
    _calls[0] += 1
    if _calls[0] < {n}:
        return _save(obj, f, *a, **k)
    buf = io.BytesIO(); _save(obj, buf); f.write(buf.getvalue()[:1000])
    try:
        raise OSError(errno.ENOSPC, "No space left on device")
    except OSError:
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 704 vs 598")
torch.save = save
"""


FIT = [
    *TINY_WITH_CHECKPOINTS,
    "+trainer.limit_train_batches=2",
    "+trainer.limit_val_batches=2",
]


def _tiny_fit(compose_cfg, run_dir, *extra):
    cfg = compose_cfg(*FIT, *extra, run_dir=run_dir)
    return cfg, train(cfg)


def test_a_full_disk_mid_run_is_one_line_a_failed_status_and_the_last_checkpoint_kept(
    compose_cfg, tmp_path, monkeypatch
):
    run = tmp_path / "run"
    _, whole = _tiny_fit(compose_cfg, tmp_path / "whole", "trainer.max_epochs=2")
    namespace: dict = {}
    save = torch.save
    exec(FULL_DISK_AFTER.format(n=3), namespace)  # epoch 1 writes last + best; epoch 2's first save fails
    torch.save = save
    monkeypatch.setattr(torch, "save", namespace["save"])
    with pytest.raises(WriteError) as failure:
        _tiny_fit(compose_cfg, run, "trainer.max_epochs=2")
    line = str(failure.value)
    assert line.startswith("no space left on device while writing ") and line.endswith(".ckpt"), line
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["status"] == "failed" and metrics["error"] == line
    assert torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["epoch"] == 0  # whole, from epoch 1
    assert not [p.name for p in (run / "checkpoints").iterdir() if p.name.endswith(".tmp")]
    monkeypatch.undo()  # space again: the same command resumes and ends where an uninterrupted run ends
    _, resumed = _tiny_fit(compose_cfg, run, "trainer.max_epochs=2")
    assert resumed["status"] == "ok" and resumed["global_step"] == whole["global_step"] == 4
    assert resumed["test/acc1"] == whole["test/acc1"]
    # issue 16 item 5: each attempt is recorded, and the total wall time counts both
    assert [a["how"] for a in resumed["attempts"]] == ["failed", "ok"]
    assert resumed["wall_time_total_s"] == pytest.approx(
        sum(a["end"] - a["start"] for a in resumed["attempts"]), abs=0.05
    )
    assert resumed["wall_time_total_s"] > resumed["wall_time_s"]


def test_a_full_disk_is_one_line_and_exit_2_from_the_command_line(tmp_path):
    run = tmp_path / "run"
    code = FULL_DISK_AFTER.format(n=1) + (
        "import runpy, sys\n"
        f"sys.argv = ['train.py', *{FIT!r}, 'hydra.run.dir={run}']\n"
        "runpy.run_path('train.py', run_name='__main__')\n"
    )
    proc = run_script([sys.executable, "-c", code], timeout=300, expect=2)
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith(f"error: no space left on device while writing {run}/checkpoints/")
    assert errors[0].endswith(".ckpt"), proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    assert json.loads((run / "metrics.json").read_text())["status"] == "failed"


def _start(run: Path, *extra: str, samples: int = 2560) -> subprocess.Popen:
    """train.py in the background: TINY for 2 epochs of ``samples`` / 16 steps (2560: 160 steps, time for a
    second command to start while it runs)."""
    cmd = [
        sys.executable,
        "train.py",
        *TINY,
        f"data.num_samples={samples}",
        "trainer.max_epochs=2",
        *extra,
        f"hydra.run.dir={run}",
    ]
    # WANDB_SERVICE: an in-process test's W&B service, which the run would join instead of starting its own
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "WANDB_SERVICE")}
    return subprocess.Popen(
        cmd,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**env, "WANDB_MODE": "offline", "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(ROOT / "tests")},
    )


def _wait_for(proc: subprocess.Popen, prefix: str) -> None:
    seen = []
    for line in proc.stdout:
        seen.append(line)
        if line.startswith(prefix):
            return
    raise AssertionError("".join(seen[-20:]) + proc.stderr.read()[-2000:])


@pytest.mark.slow
def test_ctrl_c_checkpoints_at_the_step_like_sigterm_and_a_second_one_quits_at_once(tmp_path):
    run = tmp_path / "run"
    proc = _start(run, "callbacks=default", "~callbacks.progress_bar", "~callbacks.model_summary", samples=1280)
    _wait_for(proc, "epoch 1/2")  # epoch 0 is checkpointed; epoch 1 is under way
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-2000:]
    assert "Ctrl-C: stopping at the end of this step to write a checkpoint" in err and "Traceback" not in err
    line = next(x for x in err.splitlines() if x.startswith("interrupted by"))
    assert line.startswith("interrupted by SIGINT at epoch 1, step ")
    step = int(line.split("step ")[1].split(":")[0])
    record = json.loads((run / "metrics.json").read_text())
    assert record["status"] == "interrupted" and record["global_step"] == step and 80 < step < 160
    assert torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == step

    # steps of ~0.2 s, and the logger's shutdown after them: the second Ctrl-C lands before the process ends
    again = _start(tmp_path / "again", "data.image_size=96", "data.batch_size=128", "logger=wandb")
    _wait_for(again, "epoch 1/2")
    again.send_signal(signal.SIGINT)
    for line in again.stderr:  # W&B's notes come first
        if line.startswith("Ctrl-C: stopping at the end of this step"):
            break
    again.send_signal(signal.SIGINT)
    start = time.time()
    _, err = again.communicate(timeout=60)
    assert again.returncode == 130 and time.time() - start < 10, err[-2000:]
    assert "second Ctrl-C: quitting now" in err and "Traceback" not in err


def test_a_second_process_in_a_run_folder_is_one_line_and_exit_2_and_touches_nothing(tmp_path):
    """The same command twice at once: the second gets one line naming the folder and the holder, exit 2; the
    first runs on and finishes as if alone."""
    run = tmp_path / "run"
    first = _start(run, "logger=wandb")
    _wait_for(first, "epoch 1/2")
    second = run_script(
        [
            sys.executable,
            "train.py",
            *TINY,
            "data.num_samples=2560",
            "trainer.max_epochs=2",
            "logger=wandb",
            f"hydra.run.dir={run}",
        ],
        timeout=300,
        expect=2,
    )
    errors = [line for line in second.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith(f"error: {run} is in use by another run (host ")
    assert f"pid {first.pid}" in errors[0], errors[0]
    out, err = first.communicate(timeout=300)
    assert first.returncode == 0, err[-2000:]
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["status"] == "ok" and metrics["global_step"] == 2 * 160
    assert len(list((run / "wandb").glob("offline-run-*"))) == 1  # one W&B run: the second never started one
    assert (run / ".lock").read_text() == ""  # released


# A lock left by a killed run is taken over by the rerun, which resumes:
# tests/test_summary.py::test_killed_and_resumed_run_equals_the_uninterrupted_one


def test_the_lock_is_held_for_the_life_of_the_run_and_names_its_holder(tmp_path):
    from randwire.training.errors import FolderInUse
    from randwire.training.folder_lock import FolderLock, is_locked

    with FolderLock(tmp_path) as lock:
        assert is_locked(tmp_path) and json.loads((tmp_path / ".lock").read_text())["pid"] == os.getpid()
        with pytest.raises(FolderInUse, match=rf"^{tmp_path} is in use by another run \(host .*, pid {os.getpid()}, "):
            FolderLock(tmp_path).acquire()  # a second open file description: flock refuses it as another process
    assert not is_locked(tmp_path) and lock.fd is None


def _descendants(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        for task in Path(f"/proc/{todo.pop()}/task").glob("*"):
            try:
                children = [int(c) for c in (task / "children").read_text().split()]
            except OSError:
                continue
            found += children
            todo += children
    return found


@pytest.mark.slow
@pytest.mark.parametrize("during", ["training", "validation"])
def test_slurms_sigterm_to_every_process_of_the_job_with_the_default_wandb_logger_is_an_interrupt(tmp_path, during):
    """Issue 16 item 1: Slurm signals every process of a job step on preemption or scancel, W&B's service
    too; finishing the W&B run then failed with ConnectionResetError and the job was recorded as failed.
    During a validation the run stops when it ends (at the epoch boundary, 160 steps an epoch), and the W&B
    logs of that validation must not fail the run either (they did, once validation finished first)."""
    run = tmp_path / "run"
    extra = ["logger=wandb", "callbacks=default", "~callbacks.progress_bar", "~callbacks.model_summary"]
    if during == "validation":
        proc = _start(run, *extra, "+callbacks.preempt._target_=job_callbacks.PreemptInValidation")
    else:
        proc = _start(run, *extra)
        _wait_for(proc, "epoch 1/2")
        service = _descendants(proc.pid)
        assert service, "W&B runs a service process beside the run"
        for pid in [proc.pid, *service]:
            os.kill(pid, signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM, err[-2000:]
    record = json.loads((run / "metrics.json").read_text())
    assert record["status"] == "interrupted", record
    stop = "at epoch 1, step 160: " if during == "validation" else "at epoch 1, step "
    assert f"interrupted by SIGTERM {stop}" in err and "Traceback" not in err


def test_a_full_disk_at_start_up_names_the_run_folder_and_leaves_none(tmp_path):
    """Hydra writes the run folder's .hydra/ before the job starts: a full disk there is the same one line."""
    run = tmp_path / "run"
    code = (
        "import errno, runpy, sys\n"
        "import hydra.core.utils as utils\n"
        "def full(*args, **kwargs):\n"
        "    raise OSError(errno.ENOSPC, 'No space left on device')\n"
        "utils._save_config = full\n"
        f"sys.argv = ['train.py', 'hydra.run.dir={run}']\n"
        "runpy.run_path('train.py', run_name='__main__')\n"
    )
    proc = run_script([sys.executable, "-c", code], timeout=120, expect=2)
    assert proc.stderr.strip() == (
        f"error: no space left on device while writing {run} (free some space, or set "
        "hydra.run.dir / hydra.sweep.dir to another place)"
    )
    assert not run.exists()


class SignalAt(pl.Callback if (pl := __import__("pytorch_lightning")) else object):
    """Sends this process SIGUSR2 (Slurm's time-limit warning under submitit) after training step ``step``,
    or, with ``step=-1``, during the first validation of the fit (not the sanity check)."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_end(self, trainer, *args) -> None:
        if trainer.global_step == self.step:
            os.kill(os.getpid(), signal.SIGUSR2)

    def on_validation_batch_end(self, trainer, *args) -> None:
        if self.step == -1 and not trainer.sanity_checking:
            self.step = None
            os.kill(os.getpid(), signal.SIGUSR2)


class ValidationLog(pl.Callback if (pl := __import__("pytorch_lightning")) else object):
    """Appends the epoch of each finished validation of the fit (not the sanity check) to ``path``."""

    def __init__(self, path: str) -> None:
        self.path = Path(path)

    def on_validation_end(self, trainer, *args) -> None:
        if not trainer.sanity_checking:
            with self.path.open("a") as log:
                log.write(f"{trainer.current_epoch}\n")


def _final_weights(run_dir: Path) -> dict:
    return torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True, map_location="cpu")["state_dict"]


@pytest.mark.parametrize("workers", [0, 2])
def test_a_mid_epoch_requeue_gives_the_uninterrupted_result(compose_cfg, tmp_path, workers):
    """Issue 16 item 4: on a cluster every time-limit requeue is mid-epoch. SIGUSR2 in the middle of epoch
    1, and again in the middle of the resumed run's validation of epoch 1 (2 batches), each followed by the
    same command: every epoch validated once, the same best checkpoint, weights and test metrics as a run
    never interrupted (random crops on, 0 and 2 workers). Was: the signal cut that validation short and the
    resume skipped the rest of it, so epoch 1 never counted for the best checkpoint (found by the Slurm test)."""
    from randwire.training.errors import RunInterrupted

    def run(name: str, *extra: str):
        args = [
            *TINY_WITH_CHECKPOINTS,
            "~callbacks.lr_monitor",
            "data.num_samples=128",
            "data.augment=crop",
            "regime.dropout=0.2",  # steps that draw random numbers: exact only if each step draws the same
            "regime.edge_drop=0.1",
            f"data.num_workers={workers}",
            "trainer.max_epochs=3",
            f"+callbacks.validations._target_={__name__}.ValidationLog",
            f"+callbacks.validations.path={tmp_path / name}.validations",
        ]
        return train(compose_cfg(*args, *extra, run_dir=tmp_path / name))

    straight = run("straight")
    at = f"+callbacks.signal._target_={__name__}.SignalAt"
    with pytest.raises(RunInterrupted, match=r"^interrupted by SIGUSR2 at epoch 1, step 11: "):
        run("requeued", at, "+callbacks.signal.step=11")  # 8 steps an epoch: 3 batches into epoch 1
    with pytest.raises(RunInterrupted, match=r"^interrupted by SIGUSR2 at epoch 2, step 16: "):
        run("requeued", at, "+callbacks.signal.step=-1")  # stops once epoch 1's validation is done
    requeued = run("requeued")
    assert requeued["global_step"] == straight["global_step"] == 24
    assert [a["how"] for a in requeued["attempts"]] == ["interrupted", "interrupted", "ok"]
    validated = [(tmp_path / f"{name}.validations").read_text().split() for name in ("straight", "requeued")]
    assert validated[0] == validated[1] == ["0", "1", "2"]
    assert Path(requeued["test_checkpoint"]).name == Path(straight["test_checkpoint"]).name
    for key in ("test/acc1", "test/loss", "val/acc1_best"):
        assert requeued[key] == straight[key], key
    a, b = _final_weights(tmp_path / "straight"), _final_weights(tmp_path / "requeued")
    assert a.keys() == b.keys()
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=0, atol=0, msg=name)


def test_a_preemption_while_setting_up_is_an_interruption_not_a_failure(compose_cfg, tmp_path, monkeypatch):
    """Slurm signals every process of a job: a SIGTERM during setup killed W&B's service and the job was
    recorded failed (submitit's own SIGTERM handler only logs). Now: interrupted, nothing to checkpoint,
    the handlers in place before are back, and the same command then trains."""
    import randwire.training.run as run_module
    from randwire.training.errors import RunInterrupted

    def preempted_while_starting_wandb(loggers, run_dir):
        os.kill(os.getpid(), signal.SIGTERM)
        raise ConnectionResetError("Connection lost")  # what W&B's killed service left the run with

    before = signal.getsignal(signal.SIGTERM)
    monkeypatch.setattr(run_module, "wandb_record", preempted_while_starting_wandb)
    cfg = compose_cfg(*TINY, run_dir=tmp_path / "run")
    with pytest.raises(
        RunInterrupted,
        match=r"^interrupted by SIGTERM before training started \(nothing to "
        r"checkpoint yet\): the same command starts it again",
    ):
        train(cfg)
    assert signal.getsignal(signal.SIGTERM) is before
    record = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert record["status"] == "interrupted" and record["attempts"][0]["how"] == "interrupted"
    monkeypatch.undo()
    assert train(compose_cfg(*TINY, run_dir=tmp_path / "run"))["status"] == "ok"


class SigtermAtFitStart(pl.Callback if (pl := __import__("pytorch_lightning")) else object):
    """SIGTERM after setup, inside fit, before the first step (Lightning's own setup): the window where
    submitit's handler used to be the only one."""

    def on_fit_start(self, trainer, pl_module) -> None:
        os.kill(os.getpid(), signal.SIGTERM)


def test_a_preemption_between_setup_and_the_first_step_stops_at_that_step(compose_cfg, tmp_path):
    from randwire.training.errors import RunInterrupted

    before = signal.getsignal(signal.SIGTERM)
    cfg = compose_cfg(
        *TINY,
        "callbacks=last_checkpoint",
        f"+callbacks.kill._target_={__name__}.SigtermAtFitStart",
        run_dir=tmp_path / "run",
    )
    with pytest.raises(RunInterrupted, match=r"^interrupted by SIGTERM at epoch 0, step 1: checkpoint written to "):
        train(cfg)
    assert signal.getsignal(signal.SIGTERM) is before
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["status"] == "interrupted"
    assert (tmp_path / "run" / "checkpoints" / "last.ckpt").exists()
