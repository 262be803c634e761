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

from ...models.detection import detector_complexity, randwire_faster_rcnn
from ...models.errors import BadValue, is_int, is_number, require
from ...models.network import RandWireNet
from ..module import RandWireTask
from .labels import AP_LABELS
from .metrics import CocoAP

PICTURE_IMAGES = 8  # test images in the picture of predictions a run leaves


class DetectionModule(RandWireTask):
    task = "detection"
    val_metric = "val/map"
    test_metrics = tuple(f"test/{key}" for key in AP_LABELS)

    def __init__(
        self,
        net: RandWireNet,
        num_classes: int,
        optimizer: Callable[..., torch.optim.Optimizer],
        scheduler: Callable[..., Any] | None = None,
        *,  # the values conf/task/detection.yaml gives: no second default here
        min_size: int,
        max_size: int,
        trainable_bn: bool,
        freeze_at: int,
        backbone_edge_drop: float | None,
        bias_lr_factor: float,
        bias_weight_decay: float | None,
        fpn_channels: int,
        box_head_dim: int,
        detector: dict[str, Any] | None,
        lr_reference_batch: int | None,
        batch_size: int,
        execution: dict[str, Any] | None = None,
        run_config: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        require(
            is_int(num_classes) and num_classes >= 1, "num_classes", num_classes, "an integer >= 1 (object classes)"
        )
        require(is_int(min_size) and 16 <= min_size, "min_size", min_size, "an integer >= 16 (pixels)")
        require(is_int(max_size) and max_size >= min_size, "max_size", max_size, f"an integer >= min_size={min_size}")
        require(is_int(fpn_channels) and fpn_channels >= 1, "fpn_channels", fpn_channels, "an integer >= 1")
        require(is_int(box_head_dim) and box_head_dim >= 1, "box_head_dim", box_head_dim, "an integer >= 1")
        require(is_number(bias_lr_factor) and bias_lr_factor > 0, "bias_lr_factor", bias_lr_factor, "a number > 0")
        require(
            bias_weight_decay is None or (is_number(bias_weight_decay) and bias_weight_decay >= 0),
            "bias_weight_decay",
            bias_weight_decay,
            "a number >= 0, or null for optimizer.weight_decay",
        )
        self.save_hyperparameters(logger=False, ignore=["net", "optimizer", "scheduler", "run_config"])
        self.detector = detector_from_hparams(net, self.hparams)
        self.make_optimizer, self.make_scheduler = optimizer, scheduler
        self.run_config = run_config
        self.execution = dict(execution or {})  # how the backbone runs (conf/execution), read by StepMemory
        self.val_map, self.test_map = CocoAP(), CocoAP()  # their annotation file: the datamodule's, at each epoch
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

    def parameter_groups(self, lr: float | None) -> list:
        """Detectron's bias rule where the config sets one (its 1x: BIAS_DOUBLE_LR, no BIAS_WEIGHT_DECAY):
        biases in their own group with lr x ``bias_lr_factor`` and ``bias_weight_decay``."""
        hp = self.hparams
        trainable = [(n, p) for n, p in self.named_parameters() if p.requires_grad]
        if hp.get("bias_lr_factor", 1.0) == 1.0 and hp.get("bias_weight_decay") is None:
            return [p for _, p in trainable]
        biases = {"params": [p for n, p in trainable if n.endswith(".bias")]}
        if lr is not None:
            biases["lr"] = lr * hp.bias_lr_factor
        if hp.get("bias_weight_decay") is not None:
            biases["weight_decay"] = hp.bias_weight_decay
        return [{"params": [p for n, p in trainable if not n.endswith(".bias")]}, biases]

    def _annotations(self, split: str, metric: CocoAP) -> None:
        """The split's annotation file as COCOeval's ground truth (the datamodule knows where it is)."""
        datamodule = getattr(self.trainer, "datamodule", None)
        if datamodule is not None and hasattr(datamodule, "annotation_path"):
            metric.annotation_file = str(datamodule.annotation_path(split))

    def on_validation_epoch_start(self) -> None:
        self._annotations("val", self.val_map)

    def on_test_epoch_start(self) -> None:
        self._annotations("test", self.test_map)

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

    def test_lines(self, results: dict[str, Any], title: str) -> list[str]:
        from .labels import ap_lines

        return [f"{title} COCO box AP (%), COCOeval", *ap_lines(results, prefix="test/")]

    def pictures(self, run_dir, datamodule) -> dict[str, str]:
        """``predictions_test.png``: the first test images with what this detector (the weights just tested)
        finds in them, beside the ground truth; on W&B as ``test/predictions``."""
        from pathlib import Path

        from .pictures import predict_and_draw

        dataset = datamodule.datasets.get("test")
        if dataset is None or len(dataset) == 0:
            return {}
        path = Path(run_dir) / "predictions_test.png"
        ap = 100 * float(self.trainer.callback_metrics["test/map"])
        title = f"{Path(run_dir).name}: the first {PICTURE_IMAGES} test images (test AP {ap:.1f})"
        predict_and_draw(self.detector, dataset, PICTURE_IMAGES, path, title=title)
        return {"test/predictions": str(path)}

    def on_test_epoch_end(self) -> None:
        result = self.test_map.compute()
        self.test_map.reset()
        for key in AP_LABELS:
            self.log(f"test/{key}", result[key])


def detector_from_hparams(net: RandWireNet, hp: Any) -> Any:
    """The Faster R-CNN a DetectionModule's hyperparameters describe, on ``net``: at training, and when a
    detector checkpoint is rebuilt for evaluation."""
    import inspect

    from torchvision.models.detection import FasterRCNN

    options = dict(hp.get("detector") or {})
    set_here = {
        "backbone",
        "num_classes",
        "min_size",
        "max_size",
        "image_mean",
        "image_std",
        "box_head",
        "box_predictor",
    }
    known = sorted(set(inspect.signature(FasterRCNN).parameters) - set_here)
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise BadValue(
            f"detection.detector.{unknown[0]}",
            options[unknown[0]],
            f"the options of torchvision's FasterRCNN: {known}",
            verdict="is not allowed:",
        )
    return randwire_faster_rcnn(
        net,
        hp["num_classes"],
        hp.get("min_size", 800),
        hp.get("max_size", 1333),
        hp.get("trainable_bn", False),
        freeze_at=hp.get("freeze_at", 1),  # a checkpoint from before freeze_at froze conv1 alone
        edge_drop=hp.get("backbone_edge_drop"),
        fpn_channels=hp.get("fpn_channels", 256),
        box_head_dim=hp.get("box_head_dim", 1024),
        **options,
    )
