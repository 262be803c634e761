"""Top-k accuracy counted exactly (integers), for loops outside Lightning: evaluate.py and graph damage."""

from __future__ import annotations

from collections.abc import Sequence

import torch


def topk_correct(logits: torch.Tensor, target: torch.Tensor, ks: Sequence[int] = (1, 5)) -> list[int]:
    """For each k: how many samples have their label among their k highest scores (k capped at the number of
    classes). Divided by the samples this is top-1/top-5 as ImageNet counts them, and as the training's
    metrics count them (torchmetrics' micro-averaged MulticlassAccuracy, randwire.training.module), here
    without float32 rounding of the fraction."""
    top = logits.topk(min(max(ks), logits.shape[1]), dim=1).indices
    hit = top == target[:, None]
    return [int(hit[:, : min(k, logits.shape[1])].any(1).sum()) for k in ks]
