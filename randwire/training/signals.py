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


def agree_on_signal(trainer: Any, noted: int | None) -> int | None:
    """The signal any rank noted (the largest number where ranks differ), the same on every rank; one
    all-reduce where several ranks train, so every rank must call it at the same point."""
    import torch
    import torch.distributed as dist

    if trainer.world_size == 1 or not (dist.is_available() and dist.is_initialized()):
        return noted
    flag = torch.tensor([noted or 0], device=trainer.strategy.root_device)
    dist.all_reduce(flag, op=dist.ReduceOp.MAX)
    return int(flag.item()) or None


class SignalCheckpoint(pl.Callback):
    """Slurm warns a job before its time limit (``--signal=USR2@<s>`` under submitit, USR1 in Lightning's
    convention) and preempts with SIGTERM; a user presses Ctrl-C (SIGINT). Each stops the run at the end of
    the current training step on every rank, or at the end of the current validation, and writes
    ``last.ckpt`` there. A requeued job (submitit requeues: ``randwire.training.distributed``) or a rerun
    continues from that step with the next batch of that epoch's order (``data_order.EpochOrder``), so a
    run resumed mid-epoch equals an uninterrupted one.

    Several ranks: a signal reaches each rank's process at its own moment (on two nodes, up to seconds
    apart), and some reach one rank only. A handler therefore only notes the signal; the ranks agree on it at
    the end of each step and of each validation (one all-reduce, max over the ranks' notes), and only then is
    Lightning's stop flag raised, on every rank at the same step. Lightning's own SIGTERM handler is not
    called: it broadcasts from inside the handler, a collective at whatever point each rank is (gloo's
    "collective mismatch", or ranks waiting on each other until Slurm's KillWait SIGKILLs them)."""

    def __init__(self, path: str | os.PathLike, before_fit: SignalsBeforeFit | None = None) -> None:
        self.path = Path(path)
        self.before_fit = before_fit  # a signal that came while the run set up: stop at the first step
        self.noted: int | None = None  # the signal this rank's process received (not yet agreed on)
        self.signum: int | None = None  # the signal all ranks agreed to stop on
        self._saving = False  # True while this callback writes the signal checkpoint
        self._previous_int = None  # the SIGINT handler before fit
        self._validating = False  # inside a validation of the fit (sanity check included)
        self._installed = False

    def on_fit_start(self, trainer, pl_module) -> None:
        self.signum = self.noted = None
        self._validating = self._installed = False

    def on_sanity_check_start(self, trainer, pl_module) -> None:
        self._install(trainer)  # a SIGTERM in the sanity check must not cut it short either

    def on_train_start(self, trainer, pl_module) -> None:
        self._install(trainer)
        if self.before_fit is not None:
            self.before_fit.training_started = True
            self.noted = self.noted or self.before_fit.signum
        self._agree_and_stop(trainer)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self._agree_and_stop(trainer)  # Lightning stops at the end of this step where the flag is up

    def _install(self, trainer) -> None:
        """This callback's handlers, after Lightning registered its own (Lightning puts the previous ones
        back at teardown); once per fit."""
        import threading

        if self._installed or threading.current_thread() is not threading.main_thread():
            return
        self._installed = True
        # SIGUSR2 is submitit's timeout/preemption signal (``#SBATCH --signal=USR2@...``), SIGUSR1 Lightning's.
        for signum in (signal.SIGUSR1, signal.SIGUSR2, signal.SIGTERM):
            signal.signal(signum, lambda signum, frame: self._note(trainer, signum))
        # Ctrl-C: like SIGTERM (a checkpoint at the end of this step, exit 130); a second one quits at once.
        # Lightning does not own SIGINT (it would stop without a checkpoint): put back in teardown.
        self._previous_int = signal.signal(signal.SIGINT, lambda signum, frame: self._on_ctrl_c(trainer))

    def _note(self, trainer, signum: int) -> None:
        self.noted = self.noted or signum  # no collective and no flag here: see the class docstring
        if signum == signal.SIGTERM:
            # Slurm's SIGTERM reaches every process of the job, W&B's service too: any W&B call from here
            # on (the step's or the validation's log) would fail the run with "Connection lost"; the other
            # loggers go on. The W&B run is closed at the end as far as it can be (loggers.finish_wandb).
            from pytorch_lightning.loggers import WandbLogger

            trainer.loggers = [logger for logger in trainer.loggers if not isinstance(logger, WandbLogger)]

    def _on_ctrl_c(self, trainer) -> None:
        import sys

        if self.noted == signal.SIGINT:
            print(
                "second Ctrl-C: quitting now, without a checkpoint of this step (the last one written is kept)",
                file=sys.stderr,
                flush=True,
            )
            os._exit(128 + signal.SIGINT)
        self.noted = self.noted or signal.SIGINT  # first: a second Ctrl-C may interrupt this handler's print
        if trainer.is_global_zero:
            where = "this validation" if self._validating else "this step"
            print(
                f"Ctrl-C: stopping at the end of {where} to write a checkpoint (Ctrl-C again to quit at once)",
                file=sys.stderr,
                flush=True,
            )

    def teardown(self, trainer, pl_module, stage: str) -> None:
        # After a first Ctrl-C the quit-at-once handler stays for the rest of the shutdown (test, W&B).
        if self._previous_int is not None and self.noted != signal.SIGINT:
            signal.signal(signal.SIGINT, self._previous_int)
            self._previous_int = None

    def _agree_and_stop(self, trainer) -> None:
        """At a point every rank passes together: stop here if any rank noted a signal."""
        if self.signum is None:
            agreed = agree_on_signal(trainer, self.noted)
            if agreed is not None:
                self._stop(trainer, agreed)

    def _stop(self, trainer, signum: int) -> None:
        self.signum = signum
        # Reading: a validation is finished before the run stops. Lightning would stop it at its next batch,
        # and a resume from there skips the rest of it: that epoch's validation never happens, so the best
        # checkpoint (and the test metrics on it) differ from an uninterrupted run's.
        set_stop_flag(trainer, not self._validating)  # up: Lightning stops at the end of this step

    def on_validation_start(self, trainer, pl_module) -> None:
        self._validating = trainer.state.fn == "fit"
        if self._validating and self.signum is not None:
            set_stop_flag(trainer, False)  # agreed at the step before: held down until the validation ends

    def on_validation_end(self, trainer, pl_module) -> None:
        if not self._validating:
            return
        self._validating = False
        if self.signum is not None:
            set_stop_flag(trainer, True)
        else:
            self._agree_and_stop(trainer)  # a signal during the validation: stop now, on every rank

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
