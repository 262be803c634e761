"""Callbacks for tests whose jobs run in their own processes (found with ``tests/`` on PYTHONPATH)."""

import os
import signal
import time

import pytorch_lightning as pl


class Pace(pl.Callback):
    """Each training step takes at least ``min_step_s`` (it sleeps the rest), so a Slurm time limit falls
    inside training on a fast machine as on a slow one. Sleeping changes no result."""

    def __init__(self, min_step_s: float) -> None:
        self.min_step_s = min_step_s
        self._started = 0.0

    def on_train_batch_start(self, *args) -> None:
        self._started = time.perf_counter()

    def on_train_batch_end(self, *args) -> None:
        rest = self.min_step_s - (time.perf_counter() - self._started)
        if rest > 0:
            time.sleep(rest)


class PreemptInValidation(pl.Callback):
    """Slurm's preemption in the middle of the fit's first validation: SIGTERM to this process and to every
    process below it (W&B's service), as Slurm signals every process of the job."""

    def __init__(self) -> None:
        self.done = False

    def on_validation_batch_end(self, trainer, *args) -> None:
        if trainer.sanity_checking or self.done:
            return
        self.done = True
        for pid in [*_descendants(os.getpid()), os.getpid()]:
            os.kill(pid, signal.SIGTERM)


def _descendants(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        for task in os.scandir(f"/proc/{todo.pop()}/task"):
            try:
                with open(f"{task.path}/children") as f:
                    children = [int(c) for c in f.read().split()]
            except OSError:
                continue
            found += children
            todo += children
    return found


class Hog(pl.Callback):
    """Holds ``mb`` MB of written memory from the start of training (0: nothing), so that a job goes over
    its Slurm memory request and Slurm kills it."""

    def __init__(self, mb: int) -> None:
        self.mb = mb
        self.held = b""

    def on_train_start(self, *args) -> None:
        self.held = b"\x01" * (self.mb * 2**20)  # written, so resident (bytes(n) would not be)
        time.sleep(5 if self.mb else 0)  # long enough for Slurm's accounting to sample it (every second here)
