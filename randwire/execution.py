"""How a network is executed: the plain per-node loop, or the fast plan (same parameters, same outputs)."""

from __future__ import annotations

from typing import Any

import torch

from .network import RandWireNet


def configure_execution(net: RandWireNet, cfg: dict[str, Any]) -> RandWireNet:
    """Apply the ``execution`` config group to a network in place and return it."""
    mode = cfg.get("mode", "reference")
    if mode not in ("reference", "fast"):
        raise ValueError(f"execution.mode={mode!r} is not allowed: one of ['reference', 'fast']")
    if cfg.get("channels_last"):
        net = net.to(memory_format=torch.channels_last)
    return net
