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


def scheduler_context(make_scheduler: Any, **context: Any) -> dict[str, Any]:
    """The run facts (``total_steps``, ``max_epochs``, ``steps_per_epoch``) that a scheduler constructor
    takes by name: torch's own schedulers take none of them, :class:`~randwire.training.schedules.WarmupCosine` two."""
    try:
        names = inspect.signature(make_scheduler).parameters
    except (TypeError, ValueError):
        return {}
    return {k: v for k, v in context.items() if k in names}
