"""Detection data: COCO-format folders through torchvision's CocoDetection and transforms.v2, checked
before training, and a synthetic shapes set written as a real COCO folder (no download, fixed seed).

A COCO folder here: ``<root>/<split>/*.jpg`` and ``<root>/annotations/instances_<split>.json`` (COCO's own
layout, e.g. split ``train2017``). Boxes follow flips (transforms.v2); resizing to the shorter side 800 /
longer 1333 is the detector's (torchvision's GeneralizedRCNNTransform, ``min_size`` / ``max_size``).
"""

from __future__ import annotations

import contextlib
import io
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl

from ...models.errors import is_int, require
from ...models.files import atomic_write
from ..errors import DataError

SHAPES = ("square", "circle", "triangle")


def annotation_file(root: str | Path, split: str) -> Path:
    return Path(root) / "annotations" / f"instances_{split}.json"


def write_shapes_coco(root: str | Path, split: str, images: int, size: int = 64, seed: int = 0) -> Path:
    """``images`` JPEGs of 1-3 filled shapes (square, circle, triangle) at several scales on noise, and their
    COCO annotations (tight boxes, one category per shape); the same files for the same arguments."""
    from PIL import Image, ImageDraw

    rng = np.random.Generator(np.random.PCG64([seed, images, size, sum(map(ord, split))]))
    folder = Path(root) / split
    folder.mkdir(parents=True, exist_ok=True)
    records, annotations = [], []
    for image_id in range(1, images + 1):
        pixels = rng.integers(60, 120, (size, size, 3), dtype=np.uint8)
        image = Image.fromarray(pixels)
        draw = ImageDraw.Draw(image)
        for _ in range(int(rng.integers(1, 4))):
            category = int(rng.integers(len(SHAPES)))
            side = int(rng.integers(size // 8, size // 2))
            x, y = (int(v) for v in rng.integers(0, size - side, 2))
            color = tuple(int(v) for v in rng.integers(150, 256, 3))
            box = [x, y, x + side - 1, y + side - 1]
            if SHAPES[category] == "square":
                draw.rectangle(box, fill=color)
            elif SHAPES[category] == "circle":
                draw.ellipse(box, fill=color)
            else:
                draw.polygon([(x, y + side - 1), (x + side - 1, y + side - 1), (x + (side - 1) // 2, y)], fill=color)
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": image_id,
                    "category_id": category + 1,
                    "bbox": [x, y, side, side],
                    "area": side * side,
                    "iscrowd": 0,
                }
            )
        name = f"{image_id:06d}.jpg"
        atomic_write(folder / name, lambda f, image=image: image.save(f, format="JPEG", quality=95))
        records.append({"id": image_id, "file_name": name, "width": size, "height": size})
    categories = [{"id": i + 1, "name": name, "supercategory": "shape"} for i, name in enumerate(SHAPES)]
    content = {"images": records, "annotations": annotations, "categories": categories}
    return atomic_write(annotation_file(root, split), json.dumps(content) + "\n")


def check_coco(root: str | Path, split: str, train: bool, num_classes: int | None = None) -> list[int]:
    """The ids of the images to use, after the checks a COCO folder gets before training: one line for an
    annotation file that is missing or not COCO, an empty image list, a missing image file, an unknown
    category (or one above ``num_classes``, the detector's class count) or a box outside its image; images
    without annotations are skipped in training (COCO's convention), with one warning line."""
    path = annotation_file(root, split)
    try:
        data = json.loads(path.read_text())
        images, annotations = data["images"], data["annotations"]
        categories = {c["id"] for c in data["categories"]}
    except FileNotFoundError:
        raise DataError(
            f"{path}: no such annotation file (a COCO folder has annotations/instances_<split>.json)"
        ) from None
    except (ValueError, KeyError, TypeError) as err:
        raise DataError(f"{path}: not a COCO annotation file ({type(err).__name__}: {err})") from None
    if not images:
        raise DataError(f"{path}: lists no images")
    if num_classes is not None and max(categories, default=0) > num_classes:
        raise DataError(
            f"{path}: category id {max(categories)} is above data.num_classes={num_classes} (the detector "
            f"predicts ids 1..num_classes: set data.num_classes to the largest category id)"
        )
    by_id = {image["id"]: image for image in images}
    for image in images:
        if not (Path(root) / split / image["file_name"]).is_file():
            raise DataError(f"{path}: image {image['id']}'s file {Path(root) / split / image['file_name']} is missing")
    annotated = set()
    for a in annotations:
        if a["category_id"] not in categories:
            raise DataError(
                f"{path}: annotation {a['id']} has category {a['category_id']}, not one of {sorted(categories)}"
            )
        image, (x, y, w, h) = by_id.get(a["image_id"]), a["bbox"]
        if image is None:
            raise DataError(f"{path}: annotation {a['id']} is of image {a['image_id']}, which is not listed")
        if w <= 0 or h <= 0 or x < 0 or y < 0 or x + w > image["width"] or y + h > image["height"]:
            raise DataError(
                f"{path}: annotation {a['id']}'s box {a['bbox']} is not inside its "
                f"{image['width']}x{image['height']} image {image['id']}"
            )
        annotated.add(a["image_id"])
    ids = [image["id"] for image in images if not train or image["id"] in annotated]
    if len(ids) < len(images):
        print(
            f"warning: {path}: {len(images) - len(ids)} of {len(images)} images have no annotations and are "
            f"skipped in training (COCO's convention)",
            file=sys.stderr,
            flush=True,
        )
    return ids


def coco_dataset(root: str | Path, split: str, train: bool, num_classes: int | None = None) -> Any:
    """The checked COCO split as torchvision's CocoDetection wrapped for transforms.v2: items are (image as
    a float tensor in [0, 1], {"boxes": XYXY, "labels", "image_id"}); training flips horizontally."""
    import torch
    from torch.utils.data import Subset
    from torchvision.datasets import CocoDetection, wrap_dataset_for_transforms_v2
    from torchvision.transforms import v2

    ids = check_coco(root, split, train, num_classes)
    steps = [v2.ToImage(), *([v2.RandomHorizontalFlip()] if train else []), v2.ToDtype(torch.float32, scale=True)]
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools' "loading annotations into memory..." lines
        dataset = CocoDetection(
            str(Path(root) / split), str(annotation_file(root, split)), transforms=v2.Compose(steps)
        )
    dataset = wrap_dataset_for_transforms_v2(dataset, target_keys=("boxes", "labels", "image_id"))
    position = {image_id: i for i, image_id in enumerate(dataset.ids)}
    return Subset(dataset, [position[i] for i in ids])


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
    tests its final weights. ``shapes``: ``{"train": images, "val": images, "test": images, "size": pixels}``
    writes the synthetic shapes set into ``root`` first, where it is not there yet. ``num_classes``: the
    largest category id (the detector predicts 1..num_classes; COCO: 90)."""

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
        seed: int = 0,
        name: str = "coco",
        in_channels: int = 3,
    ) -> None:
        super().__init__()
        require(is_int(num_classes) and num_classes >= 1, "num_classes", num_classes, "an integer >= 1")
        require(is_int(batch_size) and batch_size >= 1, "batch_size", batch_size, "an integer >= 1")
        require(is_int(num_workers) and num_workers >= 0, "num_workers", num_workers, "an integer >= 0")
        require(in_channels == 3, "in_channels", in_channels, "3 (detection reads RGB images)")
        if shapes is None and not annotation_file(root, train).is_file():
            raise DataError(
                f"data.root={root!r}: {annotation_file(root, train)} does not exist (a COCO folder: "
                f"<root>/{train}/ and <root>/annotations/instances_{train}.json)"
            )
        self.root, self.splits, self.shapes = str(root), {"train": train, "val": val, "test": test or val}, shapes
        self.batch_size, self.num_workers, self.seed, self.test_is_val = batch_size, num_workers, seed, test is None
        self.num_classes = num_classes
        self.datasets: dict[str, Any] = {}

    def prepare_data(self) -> None:
        for seed, split in enumerate(("train", "val", "test")):
            if self.shapes and split in self.shapes and not annotation_file(self.root, self.splits[split]).is_file():
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
        import torch
        from torch.utils.data import DataLoader

        from ..data_order import EpochOrder, SeededSamples

        data, sampler = self.datasets[split], None
        if split == "train" and not ordered:
            world = torch.distributed.get_world_size() if torch.distributed.is_initialized() else 1
            rank = torch.distributed.get_rank() if world > 1 else 0
            data = SeededSamples(data)
            sampler = EpochOrder(data, self.seed, num_replicas=world, rank=rank)
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
