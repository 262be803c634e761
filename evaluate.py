"""Evaluate a checkpoint: the network is rebuilt from the graphs stored in it, never re-sampled.

python evaluate.py ckpt=outputs/randwire/<run>/checkpoints/best.ckpt
python evaluate.py ckpt=.../best.ckpt split=val image_size=320 data.root=/datasets/imagenet
python evaluate.py ckpt=<a detection run>/checkpoints/best.ckpt        # its COCO box AP table
python evaluate.py ckpt=<a detection run>/checkpoints/best.ckpt save_detections=true draw=8
"""

import hydra
from omegaconf import DictConfig

from randwire.training import schema  # noqa: F401  (registers the config schemas before Hydra composes)
from randwire.training.cli import report, run_app
from randwire.training.detection.labels import ap_lines


@hydra.main(version_base="1.3", config_path="conf", config_name="evaluate")
def main(cfg: DictConfig) -> None:
    from randwire.training.evaluate import evaluate

    try:
        r = evaluate(cfg)
    except ValueError as err:  # ConfigError, DataError, CheckpointError, GraphFormatError: one line each
        report(err)
    if r.get("task") == "detection":
        print(f"{r['split']}, {r['images']} images, shorter side {r['min_size']}px: COCO box AP (%), COCOeval")
        print("\n".join(ap_lines(r)) + f"  ->  {r['out']}")
        for key, what in (("detections_file", "detections (COCO results format)"), ("picture", "predictions")):
            if key in r:
                print(f"{what}: {r[key]}")
        return
    print(
        f"{r['split']} @ {r['image_size']}px, {r['samples']} images: top-1 {100 * r['acc1']:.2f}%  "
        f"top-5 {100 * r['acc5']:.2f}%  loss {r['loss']:.4f}  ->  {r['out']}"
    )


if __name__ == "__main__":
    run_app(main)
