"""Faults a user meets on a real machine: a full disk, Ctrl-C, two processes in one run folder."""

import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from conftest import ROOT, TINY
from randwire.errors import WriteError
from randwire.run import train

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


FIT = [*TINY, "callbacks=default", "~callbacks.progress_bar", "~callbacks.model_summary",
       "+trainer.limit_train_batches=2", "+trainer.limit_val_batches=2"]


def _tiny_fit(compose_cfg, run_dir, *extra):
    cfg = compose_cfg(*FIT, *extra, run_dir=run_dir)
    return cfg, train(cfg)


def test_a_full_disk_mid_run_is_one_line_a_failed_status_and_the_last_checkpoint_kept(compose_cfg, tmp_path,
                                                                                        monkeypatch):
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


def test_a_full_disk_is_one_line_and_exit_2_from_the_command_line(tmp_path):
    run = tmp_path / "run"
    code = FULL_DISK_AFTER.format(n=1) + (
        "import runpy, sys\n"
        f"sys.argv = ['train.py', *{FIT!r}, 'hydra.run.dir={run}']\n"
        "runpy.run_path('train.py', run_name='__main__')\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "WANDB_MODE": "offline"})
    assert proc.returncode == 2, proc.stderr[-2000:]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith(f"error: no space left on device while writing {run}/checkpoints/")
    assert errors[0].endswith(".ckpt"), proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    assert json.loads((run / "metrics.json").read_text())["status"] == "failed"
