"""Detection data (issue 19 part 3): COCO folders through CocoDetection + transforms.v2, checked, and the
synthetic shapes set written as a real COCO folder."""

import json

import pytest
import torch

from randwire.training.detection.data import check_coco, coco_dataset, collate
from randwire.training.detection.shapes import annotation_file, write_shapes_coco
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
            lambda d: d["annotations"][0].update(bbox=[70, 10, 5, 5]),
            "annotation 1's box [70, 10, 5, 5] is outside its 64x64 image 1",
        ),
        (lambda d: d["annotations"][0].update(category_id=9), "annotation 1 has category 9, not one of [1, 2, 3]"),
        (lambda d: d.update(images=[]), "lists no images"),
        (lambda d: d["images"][1].update(file_name="gone.jpg"), "image 2's file"),
        (lambda d: d.pop("categories"), "not a COCO annotation file (KeyError: 'categories')"),
        (
            lambda d: d["annotations"][0].update(bbox=[1, 1, -3, 4]),
            "annotation 1's box [1, 1, -3, 4] has a negative width or height",
        ),
        (lambda d: d["annotations"][0].update(bbox="wide"), "annotation 1's bbox 'wide' is not [x, y, width, height]"),
    ],
    ids=["box-outside", "unknown-category", "no-images", "missing-file", "not-coco", "negative-size", "not-a-box"],
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
    assert [i["id"] for i in check_coco(tmp_path, "train", train=True).images] == [1, 3]
    assert "in training, 1 of 3 images have no annotations and are skipped" in capsys.readouterr().err
    assert [i["id"] for i in check_coco(tmp_path, "train", train=False).images] == [1, 2, 3]
    assert len(coco_dataset(tmp_path, "train", True)) == 2


def test_a_box_a_hair_past_the_edge_is_clipped_and_one_of_zero_height_is_dropped_in_training(tmp_path, capsys):
    write_shapes_coco(tmp_path, "train", images=2, size=64, seed=0)
    first = {}

    def quirks(d):
        first.update(d["annotations"][0])
        x, y, w, h = first["bbox"]
        d["annotations"][0]["bbox"] = [x, y, 64 - x + 0.25, h]  # as COCO's float boxes past the edge
        d["annotations"].append({**first, "id": 99, "bbox": [96.65 - 90, 8.33, 1.03, 0.0]})  # zero height

    _edit(tmp_path, quirks)
    coco = check_coco(tmp_path, "train", train=True)
    x, y, _, h = first["bbox"]
    assert coco.boxes[first["image_id"]][0] == [x, y, 64.0, y + h]
    assert all(box[3] > box[1] for boxes in coco.boxes.values() for box in boxes)
    line = capsys.readouterr().err
    assert "1 boxes of zero width or height are dropped (annotations 99)" in line and "1 boxes past" in line


def test_a_corrupt_image_is_one_line_naming_the_file(tmp_path):
    write_shapes_coco(tmp_path, "train", images=2, size=64, seed=0)
    image = tmp_path / "train" / "000002.jpg"
    image.write_bytes(image.read_bytes()[:300])  # truncated, as a failed copy leaves it
    dataset = coco_dataset(tmp_path, "train", train=False)
    dataset[0]
    with pytest.raises(DataError) as info:
        dataset[1]
    assert str(info.value).startswith(f"{image}: cannot be read as an image (") and "\n" not in str(info.value)


def test_shapes_are_written_only_inside_the_projects_data_folder(tmp_path):
    from randwire.training.detection.data import DetectionDataModule

    shapes = {"train": 4, "val": 2, "size": 64}
    inside = DetectionDataModule(str(tmp_path / "data" / "s"), 3, shapes=shapes, generate_under=str(tmp_path / "data"))
    inside.prepare_data()
    assert annotation_file(tmp_path / "data" / "s", "train").is_file()
    user = tmp_path / "my_coco"
    user.mkdir()
    with pytest.raises(DataError, match=r"^data\.root='.*my_coco': .*instances_train\.json does not exist"):
        DetectionDataModule(str(user), 3, shapes=shapes, generate_under=str(tmp_path / "data"))
    assert list(user.iterdir()) == []


def test_an_image_with_only_crowd_regions_stays_in_training_as_a_negative(tmp_path):
    from randwire import build_network
    from randwire.models.detection import randwire_faster_rcnn

    write_shapes_coco(tmp_path, "train", images=3, size=64, seed=0)
    _edit(tmp_path, lambda d: [a.update(iscrowd=1) for a in d["annotations"] if a["image_id"] == 2])
    dataset = coco_dataset(tmp_path, "train", train=True)
    assert len(dataset) == 3
    images, targets = collate([dataset[0], dataset[1]])
    assert targets[1]["image_id"] == 2 and tuple(targets[1]["boxes"].shape) == (0, 4) and len(targets[1]["labels"]) == 0
    net = build_network("small", graph="ws", n=8, c=8, seed=0, k=4, p=0.75, num_classes=3, head_channels=16)
    detector = randwire_faster_rcnn(net, num_classes=3, min_size=64, max_size=64).train()
    losses = detector(images, targets)  # torchvision takes an image without objects as a negative
    assert all(torch.isfinite(v) for v in losses.values())
