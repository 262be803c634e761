"""The callbacks that carry the framework's guarantees, always on (``callbacks=none`` leaves them; the run
prints their names at start): a diverged run stops at its step (:class:`DivergenceGuard`), a signal writes a
checkpoint at the end of the step (:mod:`randwire.training.signals`), a resume draws the
same random numbers (:class:`ResumableRNG`; the data order: :class:`randwire.training.data_order.ResumeOrder`), a
log without a progress bar gets a line per epoch (:class:`EpochLine`), a step's peak memory is measured
(:class:`StepMemory`)."""

from __future__ import annotations

import time
from typing import Any

import pytorch_lightning as pl
import torch

from .errors import TrainingDiverged
from .memory import PeakMemory, cpu_heap_available

STEP_MEMORY_METRIC = "train/step_peak_memory_mb"


class DivergenceGuard(pl.Callback):
    """Stop at the first non-finite training loss, naming the step. A diverged run must not go on for
    hours at NaN, nor save a "best" checkpoint from a diverged state (the checkpoint callbacks do not save
    on an exception). One device-to-host sync per step: small next to a RandWire step.

    The loss can stay finite while the state is not: a huge step can leave BN's running variance at inf
    after the epoch's last loss was computed. So before each validation (where checkpoints are chosen) and
    at each epoch's end, every weight and buffer is checked too."""

    @staticmethod
    def _check_state(trainer, pl_module, when: str) -> None:
        if trainer.sanity_checking:
            return
        for name, tensor in pl_module.state_dict().items():
            if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
                raise TrainingDiverged(
                    f"training diverged: {name} is not finite {when} (step {trainer.global_step}, "
                    f"epoch {trainer.current_epoch}); lower optimizer.lr or check the data"
                )

    def on_validation_start(self, trainer, pl_module) -> None:
        if trainer.state.fn == "fit":
            self._check_state(trainer, pl_module, "before validation")

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self._check_state(trainer, pl_module, "at the end of the epoch")

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        if loss is not None and not bool(torch.isfinite(loss.detach()).all()):
            raise TrainingDiverged(
                f"training diverged: loss={float(loss.detach().float().mean())} at step "
                f"{trainer.global_step} (epoch {trainer.current_epoch}, batch {batch_idx}); "
                f"lower optimizer.lr or check the data"
            )


class ResumableRNG(pl.Callback):
    """Random states in every checkpoint (torch, CUDA, numpy, Python), put back when the checkpoint is
    restored, so a killed-and-resumed run draws the same as an uninterrupted one (``seed_everything`` at
    start only reproduces epoch 0); and torch's generator seeded from (seed, step, rank) at every training
    step, so what a step draws (dropout, edge removal, a detector's RoI sampling) does not depend on the
    draws before it: each DataLoader iterator takes one draw when it is made, and a resumed run makes
    them at other times than an uninterrupted one (a mid-epoch resume was off by one, bit-exact only where
    no step drew). The data order and augmentations are seeded per sample already (``data_order``)."""

    def __init__(self, seed: int = 0) -> None:
        self.seed = int(seed)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        import numpy as np

        key = np.random.SeedSequence([self.seed, trainer.global_step, trainer.global_rank]).generate_state(1)[0]
        torch.manual_seed(int(key))

    def state_dict(self) -> dict[str, Any]:
        import random

        import numpy as np

        kind, keys, pos, has_gauss, gauss = np.random.get_state()
        return {
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "numpy": [kind, torch.from_numpy(keys.astype("int64")), int(pos), int(has_gauss), float(gauss)],
            "python": random.getstate(),
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        import random

        import numpy as np

        torch.set_rng_state(state_dict["torch"])
        if state_dict["cuda"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state_dict["cuda"])
        kind, keys, pos, has_gauss, gauss = state_dict["numpy"]
        np.random.set_state((kind, keys.numpy().astype("uint32"), pos, has_gauss, gauss))
        random.setstate(state_dict["python"])


class EpochLine(pl.Callback):
    """One line per epoch where no progress bar is drawn (Slurm, nohup, a log file): epoch, losses, val
    top-1, learning rate, training images/s and the time left, so a log shows a run's progress. Printed
    once the epoch's checkpoints are written (Lightning runs checkpoint callbacks last): a line in the log
    means that epoch is safe."""

    def __init__(self) -> None:
        self._line: str | None = None
        self._validated_epoch: int | None = None  # the epoch whose validation the metrics hold

    def _flush(self) -> None:
        if self._line is not None:
            print(self._line, flush=True)
            self._line = None

    def on_train_start(self, trainer, pl_module) -> None:  # a resume mid-epoch starts no epoch
        self._start, self._train_time, self._images = time.time(), 0.0, 0
        self._batch_start, self._first_step = time.time(), trainer.global_step

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self._flush()
        self.on_train_start(trainer, pl_module)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self._batch_start = time.time()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self._train_time += time.time() - self._batch_start
        self._images += len(batch[1])

    def on_validation_epoch_end(self, trainer, pl_module) -> None:
        if not trainer.sanity_checking:
            self._validated_epoch = trainer.current_epoch

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        if not trainer.is_global_zero:
            return
        m = trainer.callback_metrics
        if self._validated_epoch != trainer.current_epoch:  # a last partial epoch (max_steps): no validation ran
            m = {k: v for k, v in m.items() if not k.startswith("val/")}
        epoch, total = trainer.current_epoch + 1, trainer.max_epochs or 0
        took = time.time() - self._start
        by_steps = trainer.max_steps is not None and trainer.max_steps > 0  # max_steps ends the run, not epochs
        parts = [f"epoch {epoch}" + (f"  step {trainer.global_step}/{trainer.max_steps}" if by_steps else f"/{total}")]
        for key, name, scale, fmt in (
            ("train/loss_epoch", "train/loss", 1, ".4f"),
            ("val/loss", "val/loss", 1, ".4f"),
            ("val/acc1", "val/acc1", 100, ".2f"),
            ("val/map", "val AP", 100, ".2f"),
            ("val/map_50", "AP50", 100, ".2f"),
        ):
            if key in m:
                parts.append(f"{name} {float(m[key]) * scale:{fmt}}{'%' if scale == 100 else ''}")
        if trainer.optimizers:
            parts.append(f"lr {trainer.optimizers[0].param_groups[0]['lr']:.4g}")
        if self._images:  # none where a resume came back after the epoch's last batch (to finish validation)
            parts.append(f"{self._images / max(self._train_time, 1e-9):.0f} img/s")
        if by_steps:
            done = max(1, trainer.global_step - self._first_step)
            left = max(0, trainer.max_steps - trainer.global_step) * took / done
        else:
            left = max(0, total - epoch) * took
        hours, minutes = divmod(int(left // 60), 60)
        parts.append(f"ETA {f'{hours}h' if hours else ''}{minutes}m{int(left % 60):02d}s")
        self._line = "  ".join(parts)

    def on_fit_end(self, trainer, pl_module) -> None:
        self._flush()


class StepMemory(pl.Callback):
    """Peak memory of a training step (forward, backward, optimiser step) above the memory in use before it:
    activations, gradients and temporaries of this network, comparable across networks and devices.

    Measured on the first two training batches of the run, the second one reported (the first also
    creates the optimiser state; a one-batch run reports it). CUDA: the allocator's peak; CPU: glibc's
    heap (randwire.training.memory), except under torch.compile, where the probe would force a recompile: then
    ``kind`` says it was not measured. CPU bf16 autocast undercounts (part of oneDNN's bf16 work memory
    seems to bypass malloc; see benchmarks/README.md).
    """

    def __init__(self) -> None:
        self.peak_mb: float | None = None
        self.kind = "not measured"
        self._measured = 0
        self._probe: PeakMemory | None = None

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if self._measured >= 2:
            return
        device = pl_module.device.type
        if device == "cuda" or (cpu_heap_available() and not pl_module.execution.get("compile")):
            self._probe = PeakMemory(device).__enter__()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if self._probe is None:
            return
        probe, self._probe = self._probe, None
        probe.__exit__(None, None, None)
        self.peak_mb, self.kind = probe.peak_mb, f"{probe.kind}_step_peak"
        self._measured += 1

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        # also a logged metric (the largest over the ranks), for the loggers
        if self.peak_mb is not None:
            pl_module.log(STEP_MEMORY_METRIC, float(self.peak_mb), sync_dist=True, reduce_fx="max")

    def on_exception(self, trainer, pl_module, exception) -> None:
        if self._probe is not None:  # never leave the CPU dispatch mode on after a failed step
            self._probe.__exit__(None, None, None)
            self._probe = None

    def result(self) -> tuple[float | None, str]:
        """(peak MiB, kind) after ``fit`` (None when no step was measured)."""
        return self.peak_mb, self.kind
