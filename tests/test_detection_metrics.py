"""COCO AP (issue 26): the AP the detection runs report is pycocotools' COCOeval on the split's annotation file
as shipped (crowd regions, unannotated images, areas from the annotations), on the detections they export."""

import contextlib
import io
import json

import pytest
import torch

from randwire.training.detection.data import coco_dataset
from randwire.training.detection.labels import AP_LABELS, ap_table
from randwire.training.detection.metrics import CocoAP, results_json
from randwire.training.detection.shapes import annotation_file, write_shapes_coco


def _reference_coco_eval(annotations, detections_file):
    """pycocotools' own evaluation, straight from the two files, as anyone would run it."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(annotations))
        evaluation = COCOeval(gt, gt.loadRes(str(detections_file)), "bbox")
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    return list(evaluation.stats[:6])


@pytest.fixture(scope="module")
def quirky(tmp_path_factory):
    """A 256-px shapes split with COCO's quirks: objects of every size range, crowd regions, unannotated
    images, a zero-height box, a box past the edge, areas of the shapes rather than of their boxes."""
    root = tmp_path_factory.mktemp("quirky")
    write_shapes_coco(root, "val2017", images=20, size=256, seed=4, quirks=True)
    return root


def _truth(root):
    data = json.loads(annotation_file(root, "val2017").read_text())
    return data, [image["id"] for image in data["images"]]


def test_the_quirky_set_has_what_coco_has(quirky):
    data, ids = _truth(quirky)
    annotated = {a["image_id"] for a in data["annotations"]}
    assert {5, 10, 15, 20} == set(ids) - annotated  # unannotated images
    crowd = [a for a in data["annotations"] if a["iscrowd"]]
    assert crowd and all(a["image_id"] % 4 == 0 for a in crowd)
    assert any(a["bbox"][3] == 0.0 for a in data["annotations"])  # zero height
    assert any(a["bbox"][0] + a["bbox"][2] > 256 for a in data["annotations"])  # past the edge
    areas = [a["area"] for a in data["annotations"] if not a["iscrowd"] and a["bbox"][3] > 0]
    assert min(areas) < 32**2 and max(areas) > 96**2  # small and large objects (medium between)
    circles = [a for a in data["annotations"] if a["category_id"] == 2 and a["bbox"][3] > 0]
    assert all(a["area"] < a["bbox"][2] * a["bbox"][3] for a in circles)  # the shape's area, not its box's


def _predict(root, noise, seed=0):
    """Predictions from the annotation file: every non-crowd box jittered by ``noise`` px, a random score,
    one wrong-class duplicate per image, plus detections on the unannotated images (false positives)."""
    data, ids = _truth(root)
    gen = torch.Generator().manual_seed(seed)
    predictions, targets = [], []
    for image_id in ids:
        mine = [a for a in data["annotations"] if a["image_id"] == image_id and not a["iscrowd"]]
        boxes = torch.tensor([[x, y, x + w, y + h] for x, y, w, h in (a["bbox"] for a in mine)]).reshape(-1, 4)
        labels = torch.tensor([a["category_id"] for a in mine], dtype=torch.int64)
        if image_id % 5 == 0:  # an unannotated image: whatever is found there is a false positive
            boxes, labels = torch.tensor([[10.0, 10.0, 60.0, 60.0]]), torch.tensor([1])
        boxes = boxes + noise * torch.randn(boxes.shape, generator=gen)
        scores = torch.rand(len(boxes), generator=gen) if noise else torch.ones(len(boxes))
        if noise and len(boxes):
            boxes, labels = torch.cat([boxes, boxes[:1]]), torch.cat([labels, labels[:1] % 3 + 1])
            scores = torch.cat([scores, torch.rand(1, generator=gen)])
        predictions.append({"boxes": boxes, "labels": labels, "scores": scores})
        targets.append({"image_id": image_id})
    return predictions, targets


def test_reported_ap_equals_cocoeval_on_the_exported_detections(quirky, tmp_path):
    predictions, targets = _predict(quirky, noise=4.0)
    metric = CocoAP(annotation_file(quirky, "val2017"))
    metric.update(predictions[:7], targets[:7])  # in several updates, as batches come
    metric.update(predictions[7:], targets[7:])
    ours = ap_table(metric.compute())
    assert list(ours) == list(AP_LABELS)
    ids, rows = metric.detections()
    assert ids == list(range(1, 21)) and len(rows) == sum(len(p["boxes"]) for p in predictions)
    exported = tmp_path / "detections_val.json"
    exported.write_text(json.dumps(results_json(rows)))
    reference = _reference_coco_eval(annotation_file(quirky, "val2017"), exported)
    assert list(ours.values()) == pytest.approx(reference, abs=1e-12)
    assert 0.05 < ours["map"] < ours["map_50"] < 1 and all(ours[k] > 0 for k in ("map_small", "map_large"))


def test_perfect_predictions_score_100_with_crowd_regions_and_unannotated_images(quirky, tmp_path):
    """Perfect: every non-crowd object found exactly, nothing found on unannotated images (all evaluated).
    The zero-height box (a train2017 quirk; val2017 has none) can be matched by no box: COCOeval's IoU of a
    zero-area box is 0, so with it in the ground truth even perfect predictions miss one object."""
    predictions, targets = _predict(quirky, noise=0.0)
    for p, t in zip(predictions, targets):
        keep = (p["boxes"][:, 3] > p["boxes"][:, 1]) & torch.tensor(t["image_id"] % 5 != 0)
        p.update(boxes=p["boxes"][keep], labels=p["labels"][keep], scores=p["scores"][keep])
    data, _ = _truth(quirky)
    data["annotations"] = [a for a in data["annotations"] if a["bbox"][3] > 0]
    (tmp_path / "annotations").mkdir()
    annotation_file(tmp_path, "val2017").write_text(json.dumps(data))
    metric = CocoAP(annotation_file(tmp_path, "val2017"))
    metric.update(predictions, targets)
    assert all(v == pytest.approx(1.0) for v in ap_table(metric.compute()).values())
    with_zero_box = CocoAP(annotation_file(quirky, "val2017"))
    with_zero_box.update(predictions, targets)
    assert ap_table(with_zero_box.compute())["map"] < 1.0


def test_a_detector_that_finds_nothing_scores_zero_and_images_without_detections_still_count(quirky):
    _, targets = _predict(quirky, noise=0.0)
    empty = {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.int64), "scores": torch.zeros(0)}
    metric = CocoAP(annotation_file(quirky, "val2017"))
    metric.update([empty] * len(targets), targets)
    assert ap_table(metric.compute()) == {k: 0.0 for k in AP_LABELS}
    with pytest.raises(ValueError, match="no annotation_file"):
        CocoAP().compute()


def test_training_targets_leave_out_crowd_and_degenerate_boxes_and_clip_the_rest(quirky, capsys):
    data, _ = _truth(quirky)
    train = coco_dataset(quirky, "val2017", train=True)
    line = capsys.readouterr().err.strip()
    assert line.startswith(f"warning: {annotation_file(quirky, 'val2017')}: in training, 4 of 20 images have no")
    assert "1 boxes of zero width or height are dropped (annotations " in line
    assert "1 boxes past their image's edge are clipped to it" in line and "crowd regions (iscrowd)" in line
    assert "\n" not in line and len(train) == 16
    for _, target in (train[i] for i in range(len(train))):
        boxes = target["boxes"].as_subclass(torch.Tensor)
        assert (boxes[:, 2] > boxes[:, 0]).all() and (boxes[:, 3] > boxes[:, 1]).all()
        assert (boxes >= 0).all() and (boxes <= 256).all()
        mine = [
            a for a in data["annotations"] if a["image_id"] == target["image_id"] and not a["iscrowd"] and a["area"]
        ]
        assert len(boxes) == len(mine)  # crowd regions and the zero-height box are not targets
    evaluation = coco_dataset(quirky, "val2017", train=False)
    assert len(evaluation) == 20 and capsys.readouterr().err == ""  # every image evaluated, nothing to say
