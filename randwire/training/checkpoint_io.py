"""How Lightning writes checkpoints here: whole or not at all (a Trainer plugin)."""

from __future__ import annotations

from typing import Any

import torch
from lightning_fabric.plugins.io.torch_io import TorchCheckpointIO

from ..models.files import atomic_write


class AtomicCheckpointIO(TorchCheckpointIO):
    """Checkpoints written to a temporary file in the destination folder, flushed, then renamed over the
    old one: a kill mid-write leaves the previous checkpoint whole (Lightning writes the destination file
    in place, so a kill mid-copy left a truncated ``last.ckpt`` that every resume then failed on)."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None) -> None:
        if "://" in str(path):  # remote filesystems (fsspec): Lightning's own writer
            return super().save_checkpoint(checkpoint, path, storage_options)
        atomic_write(path, lambda f: torch.save(checkpoint, f), fsync=True)
