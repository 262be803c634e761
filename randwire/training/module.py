"""The LightningModule: loss, metrics, optimiser and schedule around a :class:`RandWireNet`.

Every checkpoint carries the network's spec (config + stored graphs, plain data) and the run's resolved
config under ``checkpoint["randwire"]``, so evaluation rebuilds the network from its graphs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytorch_lightning as pl
import torch
from torch import nn
from torchmetrics import MaxMetric, MeanMetric
from torchmetrics.classification import MulticlassAccuracy

from ..models.complexity import complexity
from ..models.errors import is_int, is_number, require
from ..models.network import RandWireNet
from .private_apis import attached_trainer
from .schedules import global_batch, scheduler_context

CHECKPOINT_FORMAT = 2  # what checkpoint["randwire"] holds; read_checkpoint refuses any other


def accuracy_metrics(num_classes: int) -> tuple[MulticlassAccuracy, MulticlassAccuracy]:
    """Top-1 and top-5 accuracy as ImageNet reports them: the fraction of samples (micro averaging;
    torchmetrics defaults to macro), top-5 as top-min(5, classes); synced over DDP ranks by torchmetrics.
    Outside Lightning (evaluate, damage) the same counts come from randwire.models.metrics.topk_correct."""
    return (
        MulticlassAccuracy(num_classes, top_k=1, average="micro"),
        MulticlassAccuracy(num_classes, top_k=min(5, num_classes), average="micro"),
    )


class RandWireTask(pl.LightningModule):
    """What every task on a RandWire network shares: the rank check of its graphs, the checkpoint record
    that carries them, and the optimiser with §5's linear lr scaling and the schedule of ``conf/scheduler``.
    A subclass sets ``net`` (its RandWireNet), ``cx``, ``run_config``, ``make_optimizer``/``make_scheduler`` and
    the ``batch_size``/``lr_reference_batch`` hyperparameters."""

    task = "classification"
    val_metric = "val/acc1"  # what best.ckpt keeps; "<val_metric>_best" is logged too
    test_metrics: tuple[str, ...] = ("test/acc1", "test/acc5", "test/loss")  # into metrics.json

    def setup(self, stage: str) -> None:
        """Every rank must hold the same stage graphs (they are sampled from the seed on each rank): compared
        across ranks before any step, one line on every rank if they differ. Each rank's host comes with its
        hashes: ``rank_hosts`` (metrics.json) says where a multi-node job ran."""
        import socket

        self.ranks_with_same_graphs, self.rank_hosts = 1, [socket.gethostname()]
        if self.trainer.world_size <= 1 or not torch.distributed.is_initialized():
            return
        mine = ([g.hash for g in self.net.graphs], socket.gethostname())
        gathered: list[Any] = [None] * self.trainer.world_size
        torch.distributed.all_gather_object(gathered, mine)
        every = [hashes for hashes, _ in gathered]
        self.rank_hosts = [host for _, host in gathered]
        differ = [rank for rank, hashes in enumerate(every) if hashes != every[0]]
        if differ:
            from ..models.errors import ConfigError

            raise ConfigError(
                f"ranks {differ} built other stage graphs than rank 0 ({every[differ[0]]} vs {every[0]}): "
                f"every rank must run the same code and config"
            )
        self.ranks_with_same_graphs = len(every)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["randwire"] = {
            "format": CHECKPOINT_FORMAT,
            "net_spec": self.net.record(),
            "complexity": self.cx,
            "run_config": self.run_config,
            **({"task": self.task} if self.task != "classification" else {}),
        }

    def test_lines(self, results: dict[str, Any], title: str) -> list[str]:
        """The final test result as the console shows it: percentages, as the epoch lines."""
        return [
            f"{title} top-1 {100 * results['test/acc1']:.2f}%  top-5 {100 * results['test/acc5']:.2f}%  "
            f"loss {results['test/loss']:.4f}"
        ]

    def pictures(self, run_dir, datamodule) -> dict[str, str]:
        """Pictures a task draws at the end of its run (key → PNG path, for W&B too); none by default."""
        return {}

    # -- optimisation ---------------------------------------------------------------------------------
    def global_batch_size(self) -> int:
        trainer = attached_trainer(self)
        return int(self.hparams.batch_size) if trainer is None else global_batch(self.hparams.batch_size, trainer)

    def parameter_groups(self, lr: float | None) -> list:
        """What the optimizer trains: every parameter that requires a gradient (a task may return groups with
        their own lr and weight decay instead; ``lr``: the run's scaled lr)."""
        return [p for p in self.parameters() if p.requires_grad]

    def configure_optimizers(self):
        kwargs: dict[str, Any] = {}
        reference = self.hparams.lr_reference_batch
        base_lr = getattr(self.make_optimizer, "keywords", {}).get("lr")
        if reference and base_lr is not None:
            # §5: lr 0.1 per 256 images, scaled linearly with the actual global batch.
            kwargs["lr"] = base_lr * self.global_batch_size() / reference
        opt = self.make_optimizer(params=self.parameter_groups(kwargs.get("lr", base_lr)), **kwargs)
        if self.make_scheduler is None:
            return opt
        total = max(1, int(self.trainer.estimated_stepping_batches))
        epochs = max(1, int(self.trainer.max_epochs or 1))
        context = scheduler_context(
            self.make_scheduler, total_steps=total, max_epochs=epochs, steps_per_epoch=max(1, total // epochs)
        )
        sched = self.make_scheduler(optimizer=opt, **context)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": getattr(sched, "interval", "epoch")}}


class RandWireModule(RandWireTask):
    """Loss, metrics, optimiser and schedule around a network; the optimizer and scheduler arrive as
    partials built by Hydra (``conf/optimizer``, ``conf/scheduler``), in the lightning-hydra-template way."""

    def __init__(
        self,
        net: RandWireNet,
        optimizer: Callable[..., torch.optim.Optimizer],
        scheduler: Callable[..., Any] | None = None,
        *,  # the values conf/ gives (train.yaml's model node, the data group): no second default here
        label_smoothing: float,
        lr_reference_batch: int | None,
        image_size: int,
        batch_size: int,
        execution: dict[str, Any] | None = None,
        run_config: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        require(
            is_number(label_smoothing) and 0 <= label_smoothing < 1,
            "label_smoothing",
            label_smoothing,
            "a number in [0, 1)",
        )
        require(
            lr_reference_batch is None or (is_int(lr_reference_batch) and lr_reference_batch >= 1),
            "lr_reference_batch",
            lr_reference_batch,
            "an integer >= 1, or null for no lr scaling",
        )
        # Plain data only in the checkpoint (it loads with weights_only=True) and nothing for the loggers:
        # the run's resolved config is logged once by run.py; the graphs travel in checkpoint["randwire"].
        self.save_hyperparameters(logger=False, ignore=["net", "optimizer", "scheduler", "run_config"])
        self.net = net
        self.make_optimizer, self.make_scheduler = optimizer, scheduler
        self.run_config = run_config
        self.execution = dict(execution or {})
        self.criterion = nn.CrossEntropyLoss(label_smoothing=label_smoothing)
        for split in ("train", "val", "test"):
            acc1, acc5 = accuracy_metrics(self.net.spec.num_classes)
            setattr(self, f"{split}_acc1", acc1)
            setattr(self, f"{split}_acc5", acc5)
        # Evaluation loss as a sample-weighted mean synced over ranks: exact when the ranks hold different
        # numbers of samples (a mean of per-rank means would not be).
        self.train_loss, self.val_loss, self.test_loss = MeanMetric(), MeanMetric(), MeanMetric()
        # Best validation top-1 so far, logged as a metric: unlike the checkpoint callback's best score it
        # exists without a checkpoint callback.
        self.val_acc1_best = MaxMetric()
        self.cx = complexity(self.net, image_size)
        if not self.execution.get("compile"):
            # Lightning's model summary counts FLOPs on this input (torch's count: 2 per multiply-add).
            self.example_input_array = torch.zeros(1, self.net.spec.in_channels, image_size, image_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def _step(self, batch, split: str) -> torch.Tensor:
        x, y = batch
        if self.execution.get("channels_last"):
            x = x.contiguous(memory_format=torch.channels_last)
        logits = self(x)
        loss = self.criterion(logits, y)
        acc1, acc5 = getattr(self, f"{split}_acc1"), getattr(self, f"{split}_acc5")
        acc1(logits, y)  # logits, not argmax: top-5 needs the scores
        acc5(logits, y)
        mean_loss = getattr(self, f"{split}_loss")
        mean_loss(loss.detach(), weight=len(y))
        if split == "train":  # the step's own loss (this rank's), and the epoch's mean over every rank
            self.log("train/loss_step", loss, on_step=True, on_epoch=False, prog_bar=True)
            self.log("train/loss_epoch", mean_loss, on_step=False, on_epoch=True)
        else:
            self.log(f"{split}/loss", mean_loss, on_step=False, on_epoch=True, prog_bar=True)
        self.log(f"{split}/acc1", acc1, on_step=False, on_epoch=True, prog_bar=True)
        self.log(f"{split}/acc5", acc5, on_step=False, on_epoch=True)
        return loss

    def training_step(self, batch, batch_idx):
        return self._step(batch, "train")

    def validation_step(self, batch, batch_idx):
        self._step(batch, "val")

    def test_step(self, batch, batch_idx):
        self._step(batch, "test")

    def on_validation_epoch_end(self) -> None:
        if self.trainer.sanity_checking:  # the sanity batches are not a validation result
            return
        self.val_acc1_best(self.val_acc1.compute())
        self.log("val/acc1_best", self.val_acc1_best.compute(), sync_dist=True)  # equal on every rank already
