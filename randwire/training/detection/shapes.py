"""The synthetic shapes set: filled squares, circles and triangles on noise, written as a real COCO folder
(JPEGs + annotations/instances_<split>.json, fixed seeds), so the CPU experiment and the tests run the COCO
path end to end with no download; with ``quirks``, its annotation file carries COCO's own quirks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from ...models.files import atomic_write

SHAPES = ("square", "circle", "triangle")


def annotation_file(root: str | Path, split: str) -> Path:
    """COCO's layout: ``<root>/annotations/instances_<split>.json``."""
    return Path(root) / "annotations" / f"instances_{split}.json"


def write_shapes_coco(
    root: str | Path, split: str, images: int, size: int = 64, seed: int = 0, quirks: bool = False
) -> Path:
    """``images`` JPEGs of 1-3 filled shapes (square, circle, triangle) at several scales on noise, and their
    COCO annotations (tight boxes, one category per shape); the same files for the same arguments.
    ``quirks``: the annotation file gets COCO's own quirks (:func:`add_coco_quirks`); the images are the same."""
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
    if quirks:
        add_coco_quirks(content)
    return atomic_write(annotation_file(root, split), json.dumps(content) + "\n")


def add_coco_quirks(content: dict[str, Any]) -> dict[str, Any]:
    """COCO's quirks, put into a shapes annotation file (in place) so tests and tiny runs meet them: every
    5th image unannotated (val2017 has 48), the last shape of every 4th image a crowd region (``iscrowd``),
    a box of zero height (train2017 has them) and a float box a hair past its image's edge, and areas of the
    shapes themselves (a circle's is pi r^2, not its box's), as COCO's areas are its masks'."""
    size = {r["id"]: (r["width"], r["height"]) for r in content["images"]}
    kept = [a for a in content["annotations"] if a["image_id"] % 5 != 0]
    for a in kept:
        side = a["bbox"][2]
        a["area"] = {"square": side * side, "circle": np.pi * side * side / 4, "triangle": side * side / 2}[
            SHAPES[a["category_id"] - 1]
        ]
    last_of_image = {a["image_id"]: a for a in kept}
    for image_id, a in last_of_image.items():
        if image_id % 4 == 0:
            a["iscrowd"] = 1
    firsts = {}
    for a in kept:
        firsts.setdefault(a["image_id"], a)
    if 2 in firsts:  # as train2017's [96.65, 88.33, 1.03, 0.0]
        x, y, w, _ = firsts[2]["bbox"]
        kept.append({**firsts[2], "id": 0, "bbox": [x + 0.65, y + 0.33, 1.03, 0.0], "area": 0.0, "iscrowd": 0})
    if 3 in firsts:  # a float box 0.3 px past the right edge
        x, y, w, h = firsts[3]["bbox"]
        firsts[3]["bbox"] = [float(x), float(y), size[3][0] - x + 0.3, float(h)]
    for i, a in enumerate(kept, 1):
        a["id"] = i
    content["annotations"] = kept
    return content
