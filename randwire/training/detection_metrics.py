"""COCO box AP for detectors: torchmetrics' MeanAveragePrecision on its pycocotools backend (COCO's own
evaluation), named as the paper's COCO table reports it: AP, AP50, AP75, APs, APm, APl."""

from __future__ import annotations

from typing import Any

# torchmetrics' result keys → the names logged (test/<name>) and written to metrics.json
AP_KEYS = {
    "map": "map",
    "map_50": "map_50",
    "map_75": "map_75",
    "map_small": "map_small",
    "map_medium": "map_medium",
    "map_large": "map_large",
}


def coco_map():
    """A fresh COCO box-AP metric (predictions and targets as torchvision's detectors give and take them)."""
    from torchmetrics.detection import MeanAveragePrecision

    return MeanAveragePrecision(box_format="xyxy", iou_type="bbox", backend="pycocotools")


def ap_table(result: dict[str, Any]) -> dict[str, float]:
    """The six COCO numbers of a computed metric, as plain floats (-1 where COCO has no object of that size)."""
    return {name: float(result[key]) for key, name in AP_KEYS.items()}
