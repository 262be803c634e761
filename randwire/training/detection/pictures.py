"""Pictures of a detector's predictions: a grid of images with the predicted boxes above a score (class
name and score on each) and the ground truth in another colour, so a user sees what an AP number means.
Written by ``evaluate.py draw=N``, and at the end of every detection run (``predictions_test.png``, also
to W&B where ``logger.wandb.log_predictions``)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from ...models.files import atomic_write

GROUND_TRUTH = "#00e000"  # green, dashed: what the annotation file says is there
CROWD = "#ffffff"  # white, dotted: a crowd region (COCOeval ignores what is found inside it)
PREDICTED = ("#ff3030", "#30a0ff", "#ffb000", "#e040ff", "#00e0e0", "#ff7f50")  # a colour per class


def draw_predictions(
    images: list,
    predictions: list[dict[str, Any]],
    targets: list[dict[str, Any]],
    class_names: dict[int, str],
    path: str | Path,
    score_threshold: float = 0.5,
    title: str = "",
    crowd: dict[int, list] | None = None,
    annotated: set[int] | None = None,
) -> Path:
    """A PNG grid of ``images`` (CHW float tensors in [0, 1]) with their ``predictions`` (torchvision's
    detector outputs: XYXY boxes, labels, scores) above ``score_threshold``, the ``targets``' boxes and the
    ``crowd`` regions of each image id; an image not in ``annotated`` is titled as such."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = min(4, len(images))
    rows = math.ceil(len(images) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 3.8 * rows + 0.6), squeeze=False, layout="constrained")
    for ax in axes.flat:
        ax.axis("off")
    for ax, image, p, t in zip(axes.flat, images, predictions, targets):
        image_id = int(t["image_id"])
        regions = (crowd or {}).get(image_id, [])
        shown = _draw_image(ax, image, p, t["boxes"].tolist(), regions, class_names, score_threshold)
        best = max(p["scores"].tolist(), default=None)
        found = f"{shown} found" + ("" if best is None else f" (best score {best:.2f})")
        truth = f"{len(t['boxes'])} true" + (f" + {len(regions)} crowd" if regions else "")
        if annotated is not None and image_id not in annotated:
            truth = "not annotated"
        ax.set_title(f"image {image_id}: {found}, {truth}", fontsize=8)
    fig.suptitle(
        f"{title}\nfound: score >= {score_threshold:g} (solid, class and score); true: dashed green; crowd regions: "
        f"dotted white",
        fontsize=9,
    )
    written = atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=110))
    plt.close(fig)
    return written


def _draw_image(ax, image, prediction, truth: list, crowd: list, class_names: dict, score_threshold: float) -> int:
    """One image with its true boxes, crowd regions and the predictions above the score; how many shown."""
    from matplotlib.patches import Rectangle

    def box(x0, y0, x1, y1, **style):
        ax.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, **style))

    ax.imshow(image.permute(1, 2, 0).clamp(0, 1).cpu().numpy())
    for xyxy in truth:
        box(*xyxy, ec=GROUND_TRUTH, lw=1.2, ls="--")
    for xyxy in crowd:
        box(*xyxy, ec=CROWD, lw=1.2, ls=":")
        ax.text(xyxy[0], xyxy[3], "crowd", color=CROWD, fontsize=7, va="top")
    shown = 0
    p = prediction
    for xyxy, label, score in zip(p["boxes"].tolist(), p["labels"].tolist(), p["scores"].tolist()):
        if score < score_threshold:
            continue
        colour = PREDICTED[int(label) % len(PREDICTED)]
        box(*xyxy, ec=colour, lw=1.6)
        name = class_names.get(int(label), str(label))
        style = {"color": "white", "fontsize": 7, "va": "bottom", "bbox": {"fc": colour, "ec": "none", "pad": 1}}
        ax.text(xyxy[0], xyxy[1], f"{name} {score:.2f}", **style)
        shown += 1
    return shown


def predict_and_draw(
    detector, dataset, count: int, path: str | Path, score_threshold: float = 0.5, title: str = "", device=None
) -> Path:
    """The first ``count`` images of ``dataset`` (a :class:`~.data.CocoImages`, in order) through
    ``detector`` in eval mode, drawn by :func:`draw_predictions`; the detector's mode is left as it was."""
    import torch

    items = [dataset[i] for i in range(min(count, len(dataset)))]
    images, targets = [image for image, _ in items], [target for _, target in items]
    was_training = detector.training
    detector.eval()
    with torch.no_grad():
        device = device or next(detector.parameters()).device
        predictions = []
        for start in range(0, len(images), 4):  # a few at a time: COCO images are 800 x 1333 in the detector
            chunk = detector([image.to(device) for image in images[start : start + 4]])
            predictions += [{k: v.float().cpu() for k, v in p.items()} for p in chunk]
    detector.train(was_training)
    return draw_predictions(
        images,
        predictions,
        targets,
        dataset.coco.categories,
        path,
        score_threshold,
        title,
        dataset.coco.crowd,
        dataset.coco.annotated,
    )
