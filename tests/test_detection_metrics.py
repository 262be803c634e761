"""COCO AP (issue 19 part 4): the metric the detection runs log equals pycocotools' own evaluation."""

import contextlib
import io

import pytest
import torch

from randwire.training.detection.metrics import ap_table, coco_map


def _coco_eval(targets, predictions, size=100):
    """pycocotools' COCOeval on the same boxes, written as COCO json (xywh), directly."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    def xywh(b):
        return [float(b[0]), float(b[1]), float(b[2] - b[0]), float(b[3] - b[1])]

    images, annotations, detections = [], [], []
    for image_id, (t, p) in enumerate(zip(targets, predictions), 1):
        images.append({"id": image_id, "width": size, "height": size})
        for box, label in zip(t["boxes"], t["labels"]):
            w, h = float(box[2] - box[0]), float(box[3] - box[1])
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": image_id,
                    "category_id": int(label),
                    "bbox": xywh(box),
                    "area": w * h,
                    "iscrowd": 0,
                }
            )
        for box, label, score in zip(p["boxes"], p["labels"], p["scores"]):
            detections.append(
                {"image_id": image_id, "category_id": int(label), "bbox": xywh(box), "score": float(score)}
            )
    gt = COCO()
    gt.dataset = {"images": images, "annotations": annotations, "categories": [{"id": i} for i in (1, 2)]}
    with contextlib.redirect_stdout(io.StringIO()):
        gt.createIndex()
        evaluation = COCOeval(gt, gt.loadRes(detections), "bbox")
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    return evaluation.stats[:6]


def test_coco_ap_equals_pycocotools_own_evaluation():
    gen = torch.Generator().manual_seed(0)
    targets, predictions = [], []
    for _ in range(3):
        xy = torch.randint(0, 60, (4, 2), generator=gen).float()
        wh = torch.tensor([[8.0, 8.0], [20.0, 24.0], [40.0, 36.0], [12.0, 30.0]])  # small, medium, large sizes
        boxes = torch.cat([xy, xy + wh], 1)
        labels = torch.tensor([1, 2, 1, 2])
        targets.append({"boxes": boxes, "labels": labels})
        jitter = torch.randn(boxes.shape, generator=gen) * 3
        predictions.append(
            {
                "boxes": (boxes + jitter).clamp(0, 100),
                "labels": torch.tensor([1, 2, 2, 2]),
                "scores": torch.rand(4, generator=gen),
            }
        )
    metric = coco_map()
    metric.update(predictions, targets)
    ours = ap_table(metric.compute())
    assert list(ours) == ["map", "map_50", "map_75", "map_small", "map_medium", "map_large"]
    assert list(ours.values()) == pytest.approx(list(_coco_eval(targets, predictions)), abs=1e-6)
    assert 0 < ours["map"] < ours["map_50"] <= 1
