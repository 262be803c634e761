"""Learning-rate schedules with the paper's semantics, instantiable from ``conf/scheduler/*.yaml``.

The LightningModule calls a scheduler partial with ``optimizer=`` and, where the constructor takes them,
``total_steps`` / ``max_epochs`` / ``steps_per_epoch`` of the run. A schedule class with ``interval =
"step"`` is stepped every iteration; any other (torch's own, for example) once per epoch.
"""

from __future__ import annotations

import inspect
import math
from typing import Any

import torch

from ..models.errors import is_int, is_number, require


class WarmupCosine(torch.optim.lr_scheduler.LambdaLR):
    """§5: half-period cosine decay from the base lr to ``final_lr_fraction`` of it, stepped per iteration,
    after an optional linear warm-up of ``warmup_epochs`` (not in the paper; large-batch runs)."""

    interval = "step"

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        total_steps: int,
        max_epochs: int,
        warmup_epochs: float = 0.0,
        final_lr_fraction: float = 0.0,
    ) -> None:
        require(is_int(max_epochs) and max_epochs >= 1, "trainer.max_epochs", max_epochs, "an integer >= 1")
        require(
            is_number(warmup_epochs) and 0 <= warmup_epochs < max_epochs,
            "warmup_epochs",
            warmup_epochs,
            f"a number in [0, trainer.max_epochs={max_epochs})",
        )
        require(
            is_number(final_lr_fraction) and 0 <= final_lr_fraction <= 1,
            "final_lr_fraction",
            final_lr_fraction,
            "a fraction in [0, 1]",
        )
        total = max(1, int(total_steps))
        warmup = int(round(warmup_epochs * total / max(1, max_epochs)))
        final = float(final_lr_fraction)

        def factor(step: int) -> float:
            if step < warmup:
                return (step + 1) / warmup
            t = min(1.0, (step - warmup) / max(1, total - warmup))
            return final + (1 - final) * 0.5 * (1 + math.cos(math.pi * t))

        super().__init__(optimizer, factor)


class WarmupMultiStep(torch.optim.lr_scheduler.LambdaLR):
    """Detectron's 1x schedule for detection: a linear warm-up from ``warmup_factor`` of the lr over the
    first ``warmup_fraction`` of the steps, then the lr times ``gamma`` at each milestone. Milestones and
    warm-up are fractions of the run's steps (1x: 60k and 80k of 90k iterations, 500 of warm-up), so the
    schedule keeps its shape at any global batch (§5's scaling changes the step count, not the shape)."""

    interval = "step"

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        total_steps: int,
        milestones: tuple[float, ...] = (2 / 3, 8 / 9),
        gamma: float = 0.1,
        warmup_fraction: float = 1 / 180,
        warmup_factor: float = 1 / 3,
    ) -> None:
        milestones = tuple(milestones)
        require(
            all(is_number(m) and 0 < m < 1 for m in milestones) and list(milestones) == sorted(milestones),
            "milestones",
            list(milestones),
            "increasing fractions of the run's steps in (0, 1)",
        )
        require(is_number(gamma) and 0 < gamma <= 1, "gamma", gamma, "a factor in (0, 1]")
        require(
            is_number(warmup_fraction) and 0 <= warmup_fraction < 1,
            "warmup_fraction",
            warmup_fraction,
            "a fraction in [0, 1)",
        )
        require(is_number(warmup_factor) and 0 < warmup_factor <= 1, "warmup_factor", warmup_factor, "in (0, 1]")
        total = max(1, int(total_steps))
        steps = [int(round(m * total)) for m in milestones]
        warmup = int(round(warmup_fraction * total))

        def factor(step: int) -> float:
            decay = gamma ** sum(step >= s for s in steps)
            if step < warmup:
                return decay * (warmup_factor + (1 - warmup_factor) * step / warmup)
            return decay

        super().__init__(optimizer, factor)


def scheduler_context(make_scheduler: Any, **context: Any) -> dict[str, Any]:
    """The run facts (``total_steps``, ``max_epochs``, ``steps_per_epoch``) that a scheduler constructor
    takes by name: torch's own schedulers take none of them, :class:`~randwire.training.schedules.WarmupCosine` two."""
    try:
        names = inspect.signature(make_scheduler).parameters
    except (TypeError, ValueError):
        return {}
    return {k: v for k, v in context.items() if k in names}


def global_batch(batch_size: int, trainer: Any) -> int:
    """Images per optimizer step over every process: the batch per device x processes x accumulation (what
    §5's lr scaling and the steps of a reference batch are scaled by)."""
    return int(batch_size) * trainer.world_size * trainer.accumulate_grad_batches


def scales_steps(cfg: Any) -> bool:
    """Whether ``trainer.max_steps`` is given in steps of a reference batch (:func:`steps_for_global_batch`)."""
    steps = cfg.trainer.get("max_steps")
    return (cfg.get("detection") or {}).get("steps_reference_batch") is not None and steps is not None and steps >= 0


def steps_for_global_batch(cfg: Any, trainer: Any) -> int | None:
    """``trainer.max_steps`` in steps of this run's global batch, where the config gives it in steps of
    another (``detection.steps_reference_batch``: the 1x schedule's 90k steps are of 16 images): scaled so
    the run sees as many images, its lr milestones (fractions of the steps) with it; one line says so.
    None where nothing is to scale (no max_steps, no reference, or the reference is the global batch)."""
    if not scales_steps(cfg):
        return None
    reference, steps = cfg.detection.steps_reference_batch, cfg.trainer.max_steps
    require(is_int(reference) and reference >= 1, "detection.steps_reference_batch", reference, "an integer >= 1")
    batch = global_batch(cfg.data.batch_size, trainer)
    scaled = max(1, int(round(steps * reference / batch)))
    if batch != reference:
        print(
            f"trainer.max_steps={steps} counts steps of {reference} images (detection.steps_reference_batch); "
            f"this run's global batch is {batch} images (data.batch_size={cfg.data.batch_size} x "
            f"{trainer.world_size} processes x {trainer.accumulate_grad_batches} accumulated): {scaled} steps, "
            f"the same {steps * reference:,} images, the lr schedule's steps scaled with them",
            flush=True,
        )
    return scaled if scaled != steps else None
