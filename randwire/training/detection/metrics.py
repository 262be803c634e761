"""COCO box AP as COCO defines it: pycocotools' own COCOeval, run on the split's annotation file as shipped
(crowd regions, areas from the annotations, images without objects all count as COCO counts them), on the
detections gathered over every rank by torchmetrics. Named as the paper's COCO table reports them: AP,
AP50, AP75, APs, APm, APl. The same detections are what ``evaluate.py save_detections=true`` writes, in
COCO's results format, so anyone's COCOeval on that file gives these numbers.
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path
from typing import Any

import torch
from torchmetrics import Metric
from torchmetrics.utilities import dim_zero_cat

from .labels import AP_LABELS

ROW = 7  # a detection row: image_id, x, y, width, height, score, category_id (what COCO.loadRes takes)


class CocoAP(Metric):
    """COCO box AP of detections (torchvision's detector outputs: XYXY boxes in the image's own pixels,
    scores, labels = category ids) against ``annotation_file``. ``update`` takes the targets only for their
    ``image_id``: the ground truth is the file, not what a loader made of it. Images evaluated without any
    detection count (their objects are misses), as do images without annotations (their detections are
    false positives). ``-1`` where the split has no object of a size range (COCOeval's convention)."""

    full_state_update = False
    higher_is_better = True

    def __init__(self, annotation_file: str | Path | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.annotation_file = None if annotation_file is None else str(annotation_file)
        self.add_state("image_ids", default=[], dist_reduce_fx="cat")
        self.add_state("rows", default=[], dist_reduce_fx="cat")

    def update(self, predictions: list[dict[str, torch.Tensor]], targets: list[dict[str, Any]]) -> None:
        for p, t in zip(predictions, targets):
            image_id = int(t["image_id"])
            boxes = p["boxes"].detach().double().cpu().reshape(-1, 4)
            xywh = torch.cat([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], 1)
            ids = torch.full((len(boxes), 1), float(image_id), dtype=torch.float64)
            scores = p["scores"].detach().double().cpu().reshape(-1, 1)
            labels = p["labels"].detach().double().cpu().reshape(-1, 1)
            self.image_ids.append(torch.tensor([image_id], dtype=torch.int64, device=self.device))
            self.rows.append(torch.cat([ids, xywh, scores, labels], 1).to(self.device))

    def detections(self) -> tuple[list[int], torch.Tensor]:
        """The evaluated image ids (sorted, each once) and every detection as an ``N x 7`` float64 tensor
        (image_id, x, y, w, h, score, category_id), over all ranks."""
        # a list of tensors per update, or one tensor once torchmetrics has gathered the ranks' lists (DDP)
        ids = sorted({int(i) for i in dim_zero_cat(self.image_ids).tolist()}) if _any(self.image_ids) else []
        rows = dim_zero_cat(self.rows).cpu() if _any(self.rows) else torch.zeros(0, ROW, dtype=torch.float64)
        return ids, rows.reshape(-1, ROW)

    def compute(self) -> dict[str, torch.Tensor]:
        if self.annotation_file is None:
            raise ValueError("CocoAP: no annotation_file to evaluate against (set it before compute)")
        ids, rows = self.detections()
        stats = coco_eval(self.annotation_file, rows, ids)
        return {key: torch.tensor(value, dtype=torch.float64) for key, value in zip(AP_LABELS, stats)}


def _any(state: list | torch.Tensor) -> bool:
    return len(state) > 0


def coco_eval(annotation_file: str | Path, rows: torch.Tensor, image_ids: list[int]) -> list[float]:
    """COCOeval's six box-AP numbers (AP, AP50, AP75, APs, APm, APl) of ``rows`` (:meth:`CocoAP.detections`)
    over ``image_ids``, against the annotation file as it is."""
    import numpy as np
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    if not image_ids:
        return [-1.0] * len(AP_LABELS)
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints progress and its table
        gt = COCO(str(annotation_file))
        if len(rows):
            dt = gt.loadRes(rows.numpy().astype(np.float64))
        else:  # loadRes refuses an empty list: no detections is an empty result set
            dt = COCO()
            dt.dataset = {"images": gt.dataset["images"], "categories": gt.dataset["categories"], "annotations": []}
            dt.createIndex()
        evaluation = COCOeval(gt, dt, "bbox")
        evaluation.params.imgIds = list(image_ids)
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    return [float(v) for v in evaluation.stats[: len(AP_LABELS)]]


def results_json(rows: torch.Tensor) -> list[dict[str, Any]]:
    """Detections in COCO's results format (what COCO.loadRes and the evaluation server read): image_id,
    category_id, bbox [x, y, width, height] in the original image's pixels, score."""
    return [
        {
            "image_id": int(r[0]),
            "category_id": int(r[6]),
            "bbox": [float(v) for v in r[1:5]],  # unrounded: COCOeval on this file gives the logged AP exactly
            "score": float(r[5]),
        }
        for r in rows.tolist()
    ]
