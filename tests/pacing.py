"""A callback for the tests that need a run to last a while, whatever the machine's speed: each training
step takes at least ``min_step_s`` (it sleeps the rest), so a Slurm time limit falls inside training on a
fast machine as on a slow one. Sleeping changes no result. Jobs find it with ``tests/`` on PYTHONPATH."""

import time

import pytorch_lightning as pl


class Pace(pl.Callback):
    def __init__(self, min_step_s: float) -> None:
        self.min_step_s = min_step_s
        self._started = 0.0

    def on_train_batch_start(self, *args) -> None:
        self._started = time.perf_counter()

    def on_train_batch_end(self, *args) -> None:
        rest = self.min_step_s - (time.perf_counter() - self._started)
        if rest > 0:
            time.sleep(rest)
