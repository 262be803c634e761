"""The detection task: Faster R-CNN with FPN on a RandWire backbone (randwire.models.detection), trained,
validated and tested with COCO box AP, with the classifier's guarantees: the backbone's graphs in every
checkpoint, the graph check across DDP ranks, §5's linear lr scaling (per 16 images here, Detectron's
reference batch) and the schedule of ``conf/scheduler``."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import torch
from torchmetrics import MaxMetric

from ..models.detection import detector_complexity, randwire_faster_rcnn
from ..models.errors import is_int, require
from ..models.network import RandWireNet
from .detection_metrics import AP_KEYS, coco_map
from .module import RandWireTask


class DetectionModule(RandWireTask):
    task = "detection"

    def __init__(
        self,
        net: RandWireNet,
        num_classes: int,
        optimizer: Callable[..., torch.optim.Optimizer],
        scheduler: Callable[..., Any] | None = None,
        min_size: int = 800,
        max_size: int = 1333,
        trainable_bn: bool = False,
        lr_reference_batch: int | None = 16,
        batch_size: int = 16,
        run_config: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        require(
            is_int(num_classes) and num_classes >= 1, "num_classes", num_classes, "an integer >= 1 (object classes)"
        )
        require(is_int(min_size) and 16 <= min_size, "min_size", min_size, "an integer >= 16 (pixels)")
        require(is_int(max_size) and max_size >= min_size, "max_size", max_size, f"an integer >= min_size={min_size}")
        self.save_hyperparameters(logger=False, ignore=["net", "optimizer", "scheduler", "run_config"])
        self.detector = randwire_faster_rcnn(net, num_classes, min_size, max_size, trainable_bn)
        self.make_optimizer, self.make_scheduler = optimizer, scheduler
        self.run_config = run_config
        self.val_map, self.test_map = coco_map(), coco_map()
        self.val_map_best = MaxMetric()

    @functools.cached_property
    def cx(self) -> dict[str, Any]:
        """Params and FLOPs of the detector at min_size² (a forward pass: counted when first asked for,
        not when the module is built)."""
        return detector_complexity(self.detector, (self.hparams.min_size, self.hparams.min_size))

    @property
    def net(self) -> RandWireNet:
        """The backbone network: its graphs and spec go into every checkpoint."""
        return self.detector.backbone.body

    def training_step(self, batch, batch_idx):
        images, targets = batch
        losses = self.detector(images, targets)
        loss = sum(losses.values())
        self.log("train/loss_step", loss, on_step=True, on_epoch=False, prog_bar=True, batch_size=len(images))
        self.log("train/loss_epoch", loss, on_step=False, on_epoch=True, batch_size=len(images), sync_dist=True)
        for name, value in losses.items():  # loss_classifier, loss_box_reg, loss_objectness, loss_rpn_box_reg
            self.log(f"train/{name}", value, on_step=True, on_epoch=False, batch_size=len(images))
        return loss

    def validation_step(self, batch, batch_idx):
        images, targets = batch
        self.val_map.update(self.detector(images), targets)

    def test_step(self, batch, batch_idx):
        images, targets = batch
        self.test_map.update(self.detector(images), targets)

    def on_validation_epoch_end(self) -> None:
        result = self.val_map.compute()
        self.val_map.reset()
        if self.trainer.sanity_checking:  # the sanity batches are not a validation result
            return
        self.log("val/map", result["map"], prog_bar=True)
        self.log("val/map_50", result["map_50"])
        self.val_map_best(result["map"])
        self.log("val/map_best", self.val_map_best.compute())

    def on_test_epoch_end(self) -> None:
        result = self.test_map.compute()
        self.test_map.reset()
        for key, name in AP_KEYS.items():
            self.log(f"test/{name}", result[key])
