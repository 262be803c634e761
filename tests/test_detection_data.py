"""Detection data (issue 19 part 3): COCO folders through CocoDetection + transforms.v2, checked, and the
synthetic shapes set written as a real COCO folder."""

import json

import pytest
import torch

from randwire.training.detection.data import annotation_file, check_coco, coco_dataset, collate, write_shapes_coco
from randwire.training.errors import DataError


def test_the_shapes_set_is_a_coco_folder_that_reads_back_with_its_boxes(tmp_path):
    write_shapes_coco(tmp_path, "train", images=6, size=64, seed=1)
    again = tmp_path / "again"
    write_shapes_coco(again, "train", images=6, size=64, seed=1)
    assert annotation_file(tmp_path, "train").read_text() == annotation_file(again, "train").read_text()
    assert (tmp_path / "train" / "000003.jpg").read_bytes() == (again / "train" / "000003.jpg").read_bytes()
    data = json.loads(annotation_file(tmp_path, "train").read_text())
    dataset = coco_dataset(tmp_path, "train", train=False)
    image, target = dataset[0]
    assert image.dtype == torch.float32 and tuple(image.shape) == (3, 64, 64) and 0 <= float(image.min())
    first = [a for a in data["annotations"] if a["image_id"] == 1]
    expected = torch.tensor([[x, y, x + w, y + h] for x, y, w, h in (a["bbox"] for a in first)], dtype=torch.float32)
    assert torch.equal(target["boxes"].as_subclass(torch.Tensor), expected)
    assert target["labels"].tolist() == [a["category_id"] for a in first]
    images, targets = collate([dataset[0], dataset[1]])
    assert len(images) == len(targets) == 2


def test_a_training_flip_moves_the_boxes_with_the_image(tmp_path):
    write_shapes_coco(tmp_path, "train", images=2, size=64, seed=2)
    plain = coco_dataset(tmp_path, "train", train=False)[0]
    torch.manual_seed(0)
    for _ in range(10):  # the flip is random: find one flipped draw
        image, target = coco_dataset(tmp_path, "train", train=True)[0]
        if not torch.equal(image, plain[0]):
            break
    assert torch.equal(image, plain[0].flip(-1))
    boxes, original = target["boxes"].as_subclass(torch.Tensor), plain[1]["boxes"].as_subclass(torch.Tensor)
    assert torch.equal(boxes[:, [0, 2]], 64 - original[:, [2, 0]]) and torch.equal(
        boxes[:, [1, 3]], original[:, [1, 3]]
    )


def _edit(root, change):
    path = annotation_file(root, "train")
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


@pytest.mark.parametrize(
    "change,message",
    [
        (
            lambda d: d["annotations"][0].update(bbox=[50, 50, 30, 30]),
            "annotation 1's box [50, 50, 30, 30] is not inside",
        ),
        (lambda d: d["annotations"][0].update(category_id=9), "annotation 1 has category 9, not one of [1, 2, 3]"),
        (lambda d: d.update(images=[]), "lists no images"),
        (lambda d: d["images"][1].update(file_name="gone.jpg"), "image 2's file"),
        (lambda d: d.pop("categories"), "not a COCO annotation file (KeyError: 'categories')"),
    ],
    ids=["box-outside", "unknown-category", "no-images", "missing-file", "not-coco"],
)
def test_bad_annotations_are_one_line_naming_the_file_and_annotation(tmp_path, change, message):
    write_shapes_coco(tmp_path, "train", images=3, size=64, seed=0)
    _edit(tmp_path, change)
    with pytest.raises(DataError) as info:
        check_coco(tmp_path, "train", train=True)
    line = str(info.value)
    assert line.startswith(str(annotation_file(tmp_path, "train"))) and message in line and "\n" not in line


def test_images_without_annotations_are_skipped_in_training_only(tmp_path, capsys):
    write_shapes_coco(tmp_path, "train", images=3, size=64, seed=0)
    _edit(tmp_path, lambda d: d.update(annotations=[a for a in d["annotations"] if a["image_id"] != 2]))
    assert check_coco(tmp_path, "train", train=True) == [1, 3]
    assert "1 of 3 images have no annotations and are skipped in training" in capsys.readouterr().err
    assert check_coco(tmp_path, "train", train=False) == [1, 2, 3] and len(coco_dataset(tmp_path, "train", True)) == 2
