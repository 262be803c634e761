"""The training framework's errors a user sees as one line (``error: ...``; :mod:`randwire.training.cli`
chooses the exit code). No dependencies."""

from __future__ import annotations


class DataError(ValueError):
    """Data that exists but cannot be read as the dataset it claims to be."""


class CheckpointError(ValueError):
    """A checkpoint that is missing, corrupt, foreign, or does not match the run."""


class TrainingDiverged(RuntimeError):
    """The training loss became NaN or infinite: the run stops at that step (one line for the user)."""


class WriteError(RuntimeError):
    """A file of the run could not be written: the disk is full, over quota or read-only (one line)."""


class FolderInUse(RuntimeError):
    """Another live process holds the run folder (randwire.training.folder_lock.FolderLock): one line naming it."""


class SlurmRefused(RuntimeError):
    """Slurm refused a sweep's jobs, or will never start one (its request is over the partition): one line."""


class RunInterrupted(Exception):
    """The run stopped on a scheduler's signal after writing its checkpoint; ``signum`` says which."""

    def __init__(self, message: str, signum: int) -> None:
        super().__init__(message)
        self.signum = signum
