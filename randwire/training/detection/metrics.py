"""COCO box AP for detectors: torchmetrics' MeanAveragePrecision on its pycocotools backend (COCO's own
evaluation), named as the paper's COCO table reports it: AP, AP50, AP75, APs, APm, APl."""

from __future__ import annotations

from typing import Any

# torchmetrics' result keys (logged as test/<key>, in metrics.json and evaluate's result) → the paper's names
AP_LABELS = {
    "map": "AP",
    "map_50": "AP50",
    "map_75": "AP75",
    "map_small": "APs",
    "map_medium": "APm",
    "map_large": "APl",
}


def coco_map():
    """A fresh COCO box-AP metric (predictions and targets as torchvision's detectors give and take them)."""
    from torchmetrics.detection import MeanAveragePrecision

    return MeanAveragePrecision(box_format="xyxy", iou_type="bbox", backend="pycocotools")


def ap_table(result: dict[str, Any]) -> dict[str, float]:
    """The six COCO numbers of a computed metric, as plain floats (-1 where COCO has no object of that size)."""
    return {key: float(result[key]) for key in AP_LABELS}
