"""Signals as a cluster and a user send them: Slurm's time-limit warning (SIGUSR1/2) and preemption
(SIGTERM), Ctrl-C. Each stops training at the end of the current step (or validation) with a checkpoint
there, so the same command, or Slurm's requeue, continues exactly; one that comes while the run still sets
up ends it as an interruption, not a failure. The framework's built-in callbacks, always on."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import pytorch_lightning as pl

from .checkpoints import MID_EPOCH_KEY
from .errors import RunInterrupted
from .private_apis import set_stop_flag


class SignalCheckpoint(pl.Callback):
    """Slurm warns a job before its time limit (``--signal=USR2@<s>`` under submitit, USR1 in Lightning's
    convention) and preempts with SIGTERM; a user presses Ctrl-C (SIGINT). Each stops the run at the end of
    the current training step on every rank (Lightning's own SIGTERM stop, which it syncs over ranks;
    SIGUSR1/2 are routed into it), or at the end of the current validation, and writes ``last.ckpt`` there.
    A requeued job (submitit requeues: ``randwire.training.distributed``) or a rerun continues from that
    step with the next batch of that epoch's order (``randwire.training.data_order.EpochOrder``), so a run
    resumed mid-epoch equals an uninterrupted one."""

    def __init__(self, path: str | os.PathLike, before_fit: SignalsBeforeFit | None = None) -> None:
        self.path = Path(path)
        self.before_fit = before_fit  # a signal that came while the run set up: stop at the first step
        self.signum: int | None = None
        self._saving = False  # True while this callback writes the signal checkpoint
        self._previous_int = None  # the SIGINT handler before fit
        self._validating = False  # inside a validation of the fit (sanity check included)
        self._installed = False

    def on_fit_start(self, trainer, pl_module) -> None:
        self.signum = None
        self._validating = self._installed = False

    def on_sanity_check_start(self, trainer, pl_module) -> None:
        self._install(trainer)  # a SIGTERM in the sanity check must not cut it short either

    def on_train_start(self, trainer, pl_module) -> None:
        self._install(trainer)
        if self.before_fit is not None:
            self.before_fit.training_started = True
            if self.before_fit.signum is not None:
                self._stop(trainer, self.before_fit.signum)

    def _install(self, trainer) -> None:
        """This callback's handlers, after Lightning registered its own (Lightning puts the previous ones
        back at teardown); once per fit."""
        import threading

        if self._installed or threading.current_thread() is not threading.main_thread():
            return
        self._installed = True
        # SIGUSR2 is submitit's timeout/preemption signal (``#SBATCH --signal=USR2@...``), SIGUSR1 Lightning's.
        for signum in (signal.SIGUSR1, signal.SIGUSR2):
            signal.signal(signum, lambda signum, frame: self._stop(trainer, signum))
        previous_term = signal.getsignal(signal.SIGTERM)

        def on_term(signum, frame):
            if callable(previous_term):
                previous_term(signum, frame)  # Lightning's: forwards to child ranks, raises its stop flag
            self._stop(trainer, signum)

        signal.signal(signal.SIGTERM, on_term)
        # Ctrl-C: like SIGTERM (a checkpoint at the end of this step, exit 130); a second one quits at once.
        # Lightning does not own SIGINT (it would stop without a checkpoint): put back in teardown.
        self._previous_int = signal.signal(signal.SIGINT, lambda signum, frame: self._on_ctrl_c(trainer))

    def _on_ctrl_c(self, trainer) -> None:
        import sys

        if self.signum == signal.SIGINT:
            print(
                "second Ctrl-C: quitting now, without a checkpoint of this step (the last one written is kept)",
                file=sys.stderr,
                flush=True,
            )
            os._exit(128 + signal.SIGINT)
        self._stop(trainer, signal.SIGINT)  # first: a second Ctrl-C may interrupt this handler's print
        if trainer.is_global_zero:
            where = "this validation" if self._validating else "this step"
            print(
                f"Ctrl-C: stopping at the end of {where} to write a checkpoint (Ctrl-C again to quit at once)",
                file=sys.stderr,
                flush=True,
            )

    def teardown(self, trainer, pl_module, stage: str) -> None:
        # After a first Ctrl-C the quit-at-once handler stays for the rest of the shutdown (test, W&B).
        if self._previous_int is not None and self.signum != signal.SIGINT:
            signal.signal(signal.SIGINT, self._previous_int)
            self._previous_int = None

    def _stop(self, trainer, signum: int) -> None:
        self.signum = signum
        # Reading: a validation is finished before the run stops. Lightning would stop it at its next batch,
        # and a resume from there skips the rest of it: that epoch's validation never happens, so the best
        # checkpoint (and the test metrics on it) differ from an uninterrupted run's.
        self._raise_stop_flag(trainer, not self._validating)  # held down until the validation ends
        if signum == signal.SIGTERM:
            # Slurm's SIGTERM reaches every process of the job, W&B's service too: any W&B call from here
            # on (the step's or the validation's log) would fail the run with "Connection lost"; the other
            # loggers go on. The W&B run is closed at the end as far as it can be (loggers.finish_wandb).
            from pytorch_lightning.loggers import WandbLogger

            trainer.loggers = [logger for logger in trainer.loggers if not isinstance(logger, WandbLogger)]

    @staticmethod
    def _raise_stop_flag(trainer, up: bool) -> None:
        set_stop_flag(trainer, up)  # up: Lightning stops at the end of this step

    def on_validation_start(self, trainer, pl_module) -> None:
        self._validating = trainer.state.fn == "fit"

    def on_validation_end(self, trainer, pl_module) -> None:
        self._validating = False
        if self.signum is not None:  # a signal came during it (or before: the flag is up already)
            self._raise_stop_flag(trainer, True)

    def on_exception(self, trainer, pl_module, exception: BaseException) -> None:
        from pytorch_lightning.utilities.exceptions import SIGTERMException

        if not isinstance(exception, SIGTERMException) or trainer.state.fn != "fit":
            return

        self._saving = True
        try:
            trainer.save_checkpoint(self.path)
        finally:
            self._saving = False
        self.signum = self.signum or signal.SIGTERM

    def on_save_checkpoint(self, trainer, pl_module, checkpoint: dict[str, Any]) -> None:
        if self._saving:  # read at resume (run.py) to say what a mid-epoch resume means
            checkpoint[MID_EPOCH_KEY] = {"epoch": trainer.current_epoch, "global_step": trainer.global_step}


class SignalsBeforeFit:
    """Slurm's SIGTERM (preemption, ``scancel``) or time-limit SIGUSR1/2 while a run is still setting up,
    before :class:`SignalCheckpoint` takes over at the first step. submitit's SIGTERM handler only logs it,
    but Slurm signals every process of the job, W&B's service too, so setup then failed on a lost
    connection and the job was recorded ``failed``. Here the signal is noted: where setup fails after it,
    the run ends as :class:`RunInterrupted` (nothing to checkpoint yet), handed to submitit like any
    interruption; where it gets through, training stops at its first step with a checkpoint
    (SignalCheckpoint reads ``signum``). The handlers in place before are put back on the way out."""

    SIGNALS = ("SIGTERM", "SIGUSR1", "SIGUSR2")

    def __init__(self) -> None:
        self.signum: int | None = None
        self.run_dir: Path | None = None  # set once this process holds the run folder
        self.training_started = False  # set by SignalCheckpoint: from then on it answers signals
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> SignalsBeforeFit:
        import threading

        if threading.current_thread() is threading.main_thread():
            for name in self.SIGNALS:
                signum = getattr(signal, name)
                self._previous[signum] = signal.signal(signum, self._note)
        return self

    def _note(self, signum, frame) -> None:
        self.signum = self.signum or signum

    def __exit__(self, exc_type, exc, tb) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous = {}
        if self.signum is not None and not self.training_started and not isinstance(exc, RunInterrupted):
            name = signal.Signals(self.signum).name
            raise RunInterrupted(
                f"interrupted by {name} before training started (nothing to checkpoint yet): the "
                f"same command starts it again (a Slurm requeue does)",
                self.signum,
            ) from None
