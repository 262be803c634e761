"""The training order and per-sample augmentation as functions of (seed, epoch, index), so a run resumed
mid-epoch (a Slurm requeue, a kill) trains on exactly the batches an uninterrupted run would, in order."""

from __future__ import annotations

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import Dataset, DistributedSampler

from .private_apis import restart_fit_iterator

ORDER_STREAM = 0x5EED0  # reading: the stream of the training order and augmentation seeds, apart from the splits'


class EpochOrder(DistributedSampler):
    """The training order of an epoch and each sample's augmentation seed, a function of (run seed, epoch,
    sample index) alone: the same on 0 or 8 loader workers, and a run resumed mid-epoch (a Slurm time-limit
    requeue) continues with the very batches an uninterrupted run draws next.

    Yields ``(index, seed)`` pairs that :class:`SeededSamples` reads. A ``DistributedSampler`` so that
    Lightning leaves it in place under DDP: it splits each epoch's order over the ranks itself (the
    order padded to a multiple of the world size, as torch's sampler does). The first samples of the
    ``resume_at`` epoch are passed over: those a resumed run had trained on before it was interrupted."""

    def __init__(self, dataset: Dataset, seed: int, num_replicas: int = 1, rank: int = 0) -> None:
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=True, seed=seed, drop_last=False)
        self.resume_at: tuple[int, int] | None = None  # (epoch, samples of it this rank had trained on)
        self.drawn: tuple[int, int] | None = None  # (epoch, skipped samples) of the newest iterator

    def order(self, epoch: int) -> list[tuple[int, int]]:
        """This rank's ``(index, augmentation seed)`` pairs of ``epoch``, in order."""
        n = len(self.dataset)  # type: ignore[arg-type]
        rng = np.random.Generator(np.random.PCG64([ORDER_STREAM, self.seed, epoch]))
        perm = rng.permutation(n)
        seeds = rng.integers(0, 2**62, size=n)  # by sample index: independent of where a sample falls
        if self.total_size > n:  # pad (DDP) with the order's head, as torch's DistributedSampler does
            perm = np.concatenate([perm, np.resize(perm, self.total_size - n)])
        mine = perm[self.rank : self.total_size : self.num_replicas]
        return [(int(i), int(seeds[i])) for i in mine]

    def __iter__(self):
        skip = self.resume_at[1] if self.resume_at is not None and self.resume_at[0] == self.epoch else 0
        self.drawn = (self.epoch, skip)
        return iter(self.order(self.epoch)[skip:])


class SeededSamples(Dataset):
    """Reads ``(index, seed)`` keys (:class:`EpochOrder`) with torch's generator seeded for that one sample
    and put back after, so a sample's random crop or flip does not depend on which worker reads it, nor
    on what was drawn before (dropout, other samples). Plain integer keys (evaluation) read as they are.
    Reading: torch's generator only: torchvision's transforms draw from it."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, key):
        if not isinstance(key, tuple):
            return self.dataset[key]
        index, seed = key
        generator = torch.default_generator  # the CPU one: CUDA's generators are left alone
        state = generator.get_state()
        generator.manual_seed(seed)
        try:
            return self.dataset[index]
        finally:
            generator.set_state(state)


def resume_position(trainer) -> tuple[int, int]:
    """(epoch, training batches of it already done) where a fit goes on: the interrupted epoch and its
    completed steps after a mid-epoch checkpoint, else (the epoch to run, 0). Read from Lightning's
    restored loop progress once ``on_train_start`` is reached (the epoch is what it passes to ``set_epoch``)."""
    loop = trainer.fit_loop
    done = loop.epoch_loop.batch_progress.current.processed if loop.restarting else 0
    return int(loop.epoch_progress.current.processed), int(done)


class ResumeOrder(pl.Callback):
    """Puts the training order where a resumed fit goes on: epoch and skipped batches of :class:`EpochOrder`.

    Lightning makes the first training iterator before it restores a checkpoint (the scheduler asks for
    the number of steps), and loader workers draw their first indices at once, so the order is set here,
    after the restore, and that iterator made again where it had already drawn."""

    def on_train_start(self, trainer, pl_module) -> None:
        loader = trainer.train_dataloader
        sampler = getattr(loader, "sampler", None)
        if not isinstance(sampler, EpochOrder):
            return
        epoch, done = resume_position(trainer)
        sampler.set_epoch(epoch)
        sampler.resume_at = (epoch, done * loader.batch_size)
        if sampler.drawn is not None and sampler.drawn != sampler.resume_at:
            restart_fit_iterator(trainer)


def world_size() -> int:
    """The number of DDP processes (1 outside a process group)."""
    return (
        torch.distributed.get_world_size()
        if torch.distributed.is_available() and torch.distributed.is_initialized()
        else 1
    )


def sampled(data: Dataset, seed: int, shuffle: bool) -> tuple[Dataset, torch.utils.data.Sampler | None]:
    """A split's dataset and sampler for its DataLoader, for every task: training (``shuffle``) in the
    order and with the augmentation draws of (seed, epoch, index), each rank its share (EpochOrder over
    SeededSamples); evaluation in order, and under DDP each sample exactly once across the ranks
    (Lightning's DistributedSampler pads the split with duplicates to a multiple of the world size: 126
    images scored for 125, a COCO image's detections counted twice). Ranks may then run one batch apart,
    which evaluation allows (no gradient sync)."""
    world = world_size()
    if shuffle:
        rank = torch.distributed.get_rank() if world > 1 else 0
        data = SeededSamples(data)
        return data, EpochOrder(data, seed, num_replicas=world, rank=rank)
    if world > 1:
        from pytorch_lightning.overrides.distributed import UnrepeatedDistributedSampler

        return data, UnrepeatedDistributedSampler(data, shuffle=False)
    return data, None
