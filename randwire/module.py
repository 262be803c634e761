"""The LightningModule: loss, metrics, optimiser and schedule around a :class:`RandWireNet`.

The network is rebuilt from ``net_spec`` (config + stored graphs, plain data), which is saved as a
hyperparameter and under ``checkpoint["randwire"]``: every checkpoint carries its graphs.
"""

from __future__ import annotations

import math
from typing import Any

import pytorch_lightning as pl
import torch
from torch import nn
from torchmetrics import MaxMetric
from torchmetrics.classification import MulticlassAccuracy

from .complexity import complexity
from .memory import PeakMemory, cpu_heap_available
from .network import network_from_spec

CHECKPOINT_FORMAT = 1
STEP_MEMORY_METRIC = "train/step_peak_memory_mb"


class RandWireModule(pl.LightningModule):
    def __init__(
        self,
        net_spec: dict[str, Any],
        optimizer: dict[str, Any],
        scheduler: dict[str, Any],
        label_smoothing: float = 0.1,
        image_size: int = 224,
        batch_size: int = 256,
        execution: dict[str, Any] | None = None,
        run_config: dict[str, Any] | None = None,
        net: nn.Module | None = None,
    ) -> None:
        super().__init__()
        # Primitive configs only (never an nn.Module): Lightning #19906 / LHT #456.
        self.save_hyperparameters(ignore=["net"])
        self.net = net if net is not None else network_from_spec(net_spec)
        self.execution = dict(execution or {})
        self.criterion = nn.CrossEntropyLoss(label_smoothing=label_smoothing)
        k = self.net.config["num_classes"]
        self.top5_k = min(5, k)
        for split in ("train", "val", "test"):
            # micro averaging: ImageNet-style top-1/top-5 (torchmetrics defaults to macro).
            setattr(self, f"{split}_acc1", MulticlassAccuracy(k, top_k=1, average="micro"))
            setattr(self, f"{split}_acc5", MulticlassAccuracy(k, top_k=self.top5_k, average="micro"))
        # Best validation top-1 so far, logged as a metric: unlike the checkpoint callback's best score it
        # exists without checkpointing and survives ddp_spawn (callback_metrics are sent back to the launcher).
        self.val_acc1_best = MaxMetric()
        self.cx = complexity(self.net, image_size)

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
        on_step = split == "train"
        self.log(f"{split}/loss", loss, on_step=on_step, on_epoch=True, prog_bar=True, sync_dist=not on_step)
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
        self.log("val/acc1_best", self.val_acc1_best.compute())

    def on_fit_start(self) -> None:
        for logger in self.loggers:
            logger.log_hyperparams({"complexity/params": self.cx["params"], "complexity/flops": self.cx["flops"],
                                    "graph_hashes": [g.hash for g in self.net.graphs]})

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["randwire"] = {"format": CHECKPOINT_FORMAT, "net_spec": self.net.spec(),
                                  "complexity": self.cx, "run_config": self.hparams.get("run_config")}

    # -- optimisation ---------------------------------------------------------------------------------
    def global_batch_size(self) -> int:
        batch = int(self.hparams.batch_size)
        trainer = self._trainer
        if trainer is None:
            return batch
        return batch * trainer.world_size * trainer.accumulate_grad_batches

    def configure_optimizers(self):
        o, s = dict(self.hparams.optimizer), dict(self.hparams.scheduler)
        # §5: lr 0.1 per 256 images, scaled linearly with the actual global batch.
        lr = o["lr"] * self.global_batch_size() / 256
        if o["name"] == "sgd":
            opt = torch.optim.SGD(self.parameters(), lr=lr, momentum=o["momentum"], weight_decay=o["weight_decay"],
                                  nesterov=bool(o.get("nesterov", False)))
        else:
            opt = torch.optim.AdamW(self.parameters(), lr=lr, weight_decay=o["weight_decay"],
                                    betas=tuple(o.get("betas", (0.9, 0.999))))
        if s["name"] == "constant":
            return opt
        total = max(1, int(self.trainer.estimated_stepping_batches))
        epochs = max(1, int(self.trainer.max_epochs or 1))
        warmup = int(round(s.get("warmup_epochs", 0) * total / epochs))
        final = float(s.get("final_lr_fraction", 0.0))

        def factor(step: int) -> float:
            # Half-period cosine to 0 (§5), per step; optional linear warm-up.
            if step < warmup:
                return (step + 1) / warmup
            t = min(1.0, (step - warmup) / max(1, total - warmup))
            return final + (1 - final) * 0.5 * (1 + math.cos(math.pi * t))

        sched = torch.optim.lr_scheduler.LambdaLR(opt, factor)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


class StepMemory(pl.Callback):
    """Peak memory of a training step (forward, backward, optimiser step) above the memory in use before it:
    activations, gradients and temporaries of this network, comparable across networks and devices.

    Measured on the first two training batches of the run, the second one reported (the first also
    creates the optimiser state; a one-batch run reports it). CUDA: the allocator's peak; CPU: glibc's
    heap (randwire.memory), except under torch.compile, where the probe would force a recompile: then
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
        # also a logged metric: it reaches the loggers and comes back from ddp_spawn workers
        if self.peak_mb is not None:
            pl_module.log(STEP_MEMORY_METRIC, float(self.peak_mb))

    def on_exception(self, trainer, pl_module, exception) -> None:
        if self._probe is not None:  # never leave the CPU dispatch mode on after a failed step
            self._probe.__exit__(None, None, None)
            self._probe = None

    def result(self, trainer) -> tuple[float | None, str]:
        """(peak MiB, kind) after ``fit``: measured here, or in a ddp_spawn worker (then only the logged
        metric came back, and the kind follows from the device)."""
        if self.peak_mb is not None:
            return self.peak_mb, self.kind
        logged = trainer.callback_metrics.get(STEP_MEMORY_METRIC)
        if logged is None:
            return None, self.kind
        device = trainer.strategy.root_device.type
        return float(logged), f"{PeakMemory(device).kind}_step_peak"
