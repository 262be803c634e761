"""Detection data: COCO-format folders, checked and cleaned as COCO's own pipelines do, read through
transforms.v2; and a synthetic shapes set written as a real COCO folder (no download, fixed seeds).

A COCO folder here: ``<root>/<split>/*.jpg`` and ``<root>/annotations/instances_<split>.json`` (COCO's own
layout, e.g. split ``train2017``). COCO as shipped has quirks a loader must take (Detectron's and
torchvision's reference scripts do): boxes of zero width or height and float boxes a hair past the image
edge (train2017), crowd regions (``iscrowd``), images without any annotation (48 in val2017), grayscale
JPEGs. Training targets: boxes clipped to their image, degenerate ones dropped, crowd regions left out,
unannotated images skipped (one summary warning). Evaluation ground truth is the annotation file itself,
as pycocotools' COCOeval reads it (:mod:`.metrics`). Boxes follow flips (transforms.v2); resizing to the
shorter side 800 / longer 1333 is the detector's (torchvision's GeneralizedRCNNTransform).
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytorch_lightning as pl

from ...models.errors import is_int, require
from ..errors import DataError
from .shapes import annotation_file, write_shapes_coco

SHOWN_IDS = 5  # annotation ids a summary warning names


@dataclass
class CocoSplit:
    """A checked COCO split: the images to read (records as in the annotation file), each one's training
    targets (boxes XYXY clipped to the image, degenerate and crowd boxes left out) and the category names."""

    annotations: Path
    folder: Path
    images: list[dict[str, Any]]
    boxes: dict[int, list[list[float]]] = field(default_factory=dict)
    labels: dict[int, list[int]] = field(default_factory=dict)
    crowd: dict[int, list[list[float]]] = field(default_factory=dict)  # crowd regions (XYXY, clipped): for pictures
    annotated: set[int] = field(default_factory=set)  # ids of the images with any annotation
    categories: dict[int, str] = field(default_factory=dict)


def _read_annotations(path: Path) -> tuple[list, list, dict[int, str]]:
    try:
        data = json.loads(path.read_text())
        images, annotations = data["images"], data["annotations"]
        categories = {int(c["id"]): str(c.get("name", c["id"])) for c in data["categories"]}
    except FileNotFoundError:
        raise DataError(
            f"{path}: no such annotation file (a COCO folder has annotations/instances_<split>.json)"
        ) from None
    except (ValueError, KeyError, TypeError) as err:
        raise DataError(f"{path}: not a COCO annotation file ({type(err).__name__}: {err})") from None
    if not images:
        raise DataError(f"{path}: lists no images")
    return images, annotations, categories


def _clipped(path: Path, a: dict[str, Any], image: dict[str, Any]) -> list[float]:
    """The annotation's box as XYXY clipped to its image; one line for a box that is not one (negative
    size) or lies wholly outside the image (no overlap even after clipping)."""
    try:
        x, y, w, h = (float(v) for v in a["bbox"])
    except (TypeError, ValueError):
        raise DataError(f"{path}: annotation {a['id']}'s bbox {a.get('bbox')!r} is not [x, y, width, height]") from None
    width, height = image["width"], image["height"]
    x0, y0, x1, y1 = max(x, 0.0), max(y, 0.0), min(x + w, width), min(y + h, height)
    if w < 0 or h < 0:
        raise DataError(f"{path}: annotation {a['id']}'s box {a['bbox']} has a negative width or height")
    if x1 < x0 or y1 < y0:
        raise DataError(
            f"{path}: annotation {a['id']}'s box {a['bbox']} is outside its {width}x{height} image {image['id']} "
            f"(boxes are [x, y, width, height] in pixels; a box past the edge is clipped, one wholly outside is "
            f"an error)"
        )
    return [x0, y0, x1, y1]


def check_coco(root: str | Path, split: str, train: bool, num_classes: int | None = None) -> CocoSplit:
    """A COCO split checked before training, as :class:`CocoSplit`: one line for an annotation file that
    is missing or not COCO, an empty image list, a missing image file, an unknown category (or one above
    ``num_classes``, the detector's class count) or a box outside its image. In training (``train``),
    images without annotations are skipped (COCO's convention; images left with only crowd or degenerate
    boxes stay, as negatives) and one warning line sums up what was dropped, clipped and left out."""
    path, folder = annotation_file(root, split), Path(root) / split
    images, annotations, categories = _read_annotations(path)
    if num_classes is not None and max(categories, default=0) > num_classes:
        raise DataError(
            f"{path}: category id {max(categories)} is above data.num_classes={num_classes} (the detector "
            f"predicts ids 1..num_classes: set data.num_classes to the largest category id)"
        )
    by_id = {image["id"]: image for image in images}
    for image in images:
        if not (folder / image["file_name"]).is_file():
            raise DataError(f"{path}: image {image['id']}'s file {folder / image['file_name']} is missing")
    coco = CocoSplit(path, folder, images, categories=categories)
    annotated, degenerate, clipped, crowd = set(), [], 0, 0
    for a in annotations:
        if a["category_id"] not in categories:
            raise DataError(
                f"{path}: annotation {a['id']} has category {a['category_id']}, not one of {sorted(categories)}"
            )
        image = by_id.get(a["image_id"])
        if image is None:
            raise DataError(f"{path}: annotation {a['id']} is of image {a['image_id']}, which is not listed")
        box = _clipped(path, a, image)
        annotated.add(a["image_id"])
        if a.get("iscrowd", 0):  # a crowd region: never a training target; COCOeval ignores what matches it
            crowd += 1
            coco.crowd.setdefault(a["image_id"], []).append(box)
            continue
        if box[2] <= box[0] or box[3] <= box[1]:
            degenerate.append(a["id"])
            continue
        x, y, w, h = a["bbox"]
        clipped += box != [x, y, x + w, y + h]
        coco.boxes.setdefault(a["image_id"], []).append(box)
        coco.labels.setdefault(a["image_id"], []).append(int(a["category_id"]))
    coco.annotated = annotated
    if train:
        coco.images = [image for image in images if image["id"] in annotated]
        _say_what_training_leaves_out(path, len(images) - len(coco.images), len(images), degenerate, clipped, crowd)
    return coco


def _say_what_training_leaves_out(
    path: Path, unannotated: int, images: int, degenerate: list, clipped: int, crowd: int
) -> None:
    parts = []
    if unannotated:
        parts.append(f"{unannotated} of {images} images have no annotations and are skipped")
    if degenerate:
        shown = ", ".join(map(str, degenerate[:SHOWN_IDS])) + (", ..." if len(degenerate) > SHOWN_IDS else "")
        parts.append(f"{len(degenerate)} boxes of zero width or height are dropped (annotations {shown})")
    if clipped:
        parts.append(f"{clipped} boxes past their image's edge are clipped to it")
    if crowd:
        parts.append(f"{crowd} crowd regions (iscrowd) are not training targets")
    if parts:
        print(f"warning: {path}: in training, {'; '.join(parts)} (COCO's convention)", file=sys.stderr, flush=True)


def _inside(root: str | Path, folder: str | None) -> bool:
    """Whether ``root`` is ``folder`` or below it (both resolved; no folder: never)."""
    if not folder:
        return False
    root, folder = Path(root).resolve(), Path(folder).resolve()
    return root == folder or folder in root.parents


class CocoImages:
    """A checked COCO split as a map-style dataset: items are (image as a float tensor in [0, 1], RGB,
    {"boxes": XYXY float32, "labels": int64, "image_id": int}); training flips horizontally (boxes too).
    An image that cannot be decoded, or whose size is not the annotation file's, is one line naming it."""

    def __init__(self, coco: CocoSplit, train: bool) -> None:
        import torch
        from torchvision.transforms import v2

        self.coco = coco
        steps = [*([v2.RandomHorizontalFlip()] if train else []), v2.ToDtype(torch.float32, scale=True)]
        self.transform = v2.Compose(steps)

    def __len__(self) -> int:
        return len(self.coco.images)

    def read(self, record: dict[str, Any]):
        """The image of ``record`` as a uint8 CHW tensor (grayscale and CMYK JPEGs as RGB, as COCO needs)."""
        from PIL import Image, UnidentifiedImageError
        from torchvision.transforms.v2.functional import pil_to_tensor

        path = self.coco.folder / record["file_name"]
        try:
            with Image.open(path) as image:
                pixels = pil_to_tensor(image.convert("RGB"))
        except (OSError, UnidentifiedImageError, SyntaxError) as err:
            raise DataError(f"{path}: cannot be read as an image ({err}); replace or remove it") from None
        if tuple(pixels.shape[1:]) != (record["height"], record["width"]):
            raise DataError(
                f"{path}: is {pixels.shape[2]}x{pixels.shape[1]}, but {self.coco.annotations} says "
                f"{record['width']}x{record['height']} (its boxes would not fit the image)"
            )
        return pixels

    def __getitem__(self, index: int):
        import torch
        from torchvision import tv_tensors

        record = self.coco.images[index]
        pixels = self.read(record)
        boxes = self.coco.boxes.get(record["id"], [])
        target = {
            "boxes": tv_tensors.BoundingBoxes(
                torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4), format="XYXY", canvas_size=pixels.shape[1:]
            ),
            "labels": torch.tensor(self.coco.labels.get(record["id"], []), dtype=torch.int64),
            "image_id": int(record["id"]),
        }
        return self.transform(tv_tensors.Image(pixels), target)


def coco_dataset(root: str | Path, split: str, train: bool, num_classes: int | None = None) -> CocoImages:
    """The checked COCO split (:func:`check_coco`) as a dataset (:class:`CocoImages`)."""
    return CocoImages(check_coco(root, split, train, num_classes), train)


def collate(batch: list) -> tuple[list, list]:
    """Images and targets as lists (torchvision's detection models take images of different sizes), the
    targets' tensors plain (transforms.v2's BoundingBoxes subclass stays in the data pipeline)."""
    import torch

    images, targets = zip(*batch)
    plain = [
        {k: v.as_subclass(torch.Tensor) if isinstance(v, torch.Tensor) else v for k, v in t.items()} for t in targets
    ]
    return list(images), plain


class DetectionDataModule(pl.LightningDataModule):
    """A COCO folder's splits for the detection task, the training order and flips drawn from (seed, epoch,
    index) as for classification (EpochOrder, SeededSamples: a resumed run trains on what an uninterrupted
    one would). ``test=None``: the test split is ``val`` (COCO's val2017 is its test set here), so the run
    tests its final weights. ``num_classes``: the largest category id (the detector predicts
    1..num_classes; COCO: 90).

    ``shapes``: ``{"train": images, "val": images, "test": images, "size": pixels}`` writes the synthetic
    shapes set into ``root`` first, where it is not there yet, and only where ``root`` lies inside
    ``generate_under`` (``data=shapes``: ``paths.data_dir``): a folder of the user's, a COCO folder missing
    its annotation file say, is never written into (that is one line instead)."""

    def __init__(
        self,
        root: str,
        num_classes: int,
        train: str = "train",
        val: str = "val",
        test: str | None = None,
        batch_size: int = 2,
        num_workers: int = 0,
        shapes: dict[str, int] | None = None,
        generate_under: str | None = None,
        seed: int = 0,
        name: str = "coco",
        in_channels: int = 3,
    ) -> None:
        super().__init__()
        require(is_int(num_classes) and num_classes >= 1, "num_classes", num_classes, "an integer >= 1")
        require(is_int(batch_size) and batch_size >= 1, "batch_size", batch_size, "an integer >= 1")
        require(is_int(num_workers) and num_workers >= 0, "num_workers", num_workers, "an integer >= 0")
        require(in_channels == 3, "in_channels", in_channels, "3 (detection reads RGB images)")
        self.root, self.splits = str(root), {"train": train, "val": val, "test": test or val}
        self.shapes = shapes if shapes and _inside(root, generate_under) else None
        if self.shapes is None and not annotation_file(root, train).is_file():
            raise DataError(
                f"data.root={str(root)!r}: {annotation_file(root, train)} does not exist (a COCO folder: "
                f"<root>/{train}/ and <root>/annotations/instances_{train}.json)"
            )
        self.batch_size, self.num_workers, self.seed, self.test_is_val = batch_size, num_workers, seed, test is None
        self.num_classes = num_classes
        self.datasets: dict[str, Any] = {}

    def annotation_path(self, split: str) -> Path:
        """The annotation file of ``split`` (train, val or test): COCOeval's ground truth for it."""
        return annotation_file(self.root, self.splits[split])

    def prepare_data(self) -> None:
        for seed, split in enumerate(("train", "val", "test")):
            if self.shapes and split in self.shapes and not self.annotation_path(split).is_file():
                size = int(self.shapes.get("size", 64))
                write_shapes_coco(self.root, self.splits[split], int(self.shapes[split]), size, seed=seed)

    def setup(self, stage: str | None = None) -> None:
        self.setup_splits(("train", "val", "test"))

    def setup_splits(self, splits) -> None:
        """Only these splits are checked and read (evaluation needs the test images alone)."""
        for split in splits:
            if split not in self.datasets:
                self.datasets[split] = coco_dataset(self.root, self.splits[split], split == "train", self.num_classes)

    def loader(self, split: str):
        """One split in a fixed order, for evaluation."""
        self.prepare_data()
        self.setup_splits([split])
        return self._loader(split, ordered=True)

    def _loader(self, split: str, ordered: bool = False):
        from torch.utils.data import DataLoader

        from ..data_order import sampled

        data, sampler = sampled(self.datasets[split], self.seed, shuffle=split == "train" and not ordered)
        return DataLoader(
            data,
            batch_size=self.batch_size,
            sampler=sampler,
            num_workers=self.num_workers,
            collate_fn=collate,
            persistent_workers=self.num_workers > 0,
        )

    def train_dataloader(self):
        return self._loader("train")

    def val_dataloader(self):
        return self._loader("val")

    def test_dataloader(self):
        return self._loader("test")
