"""Every preset in conf/experiment/ (issue 26 item 1): the ImageNet ones compose and build their network and data
module on a tiny generated ImageNet folder; the detection ones train steps on a tiny COCO folder with COCO's
quirks, as a user would run them with a CPU and tiny sizes. A preset no test runs is a preset that crashes."""

import json
from pathlib import Path

import pytest
from helpers import ROOT

from randwire.training.detection.shapes import write_shapes_coco
from randwire.training.run import train

PRESETS = sorted(p.stem for p in (ROOT / "conf" / "experiment").glob("*.yaml"))
DETECTION = [p for p in PRESETS if "coco" in p or "detection" in p]
CLASSIFICATION = [p for p in PRESETS if p not in DETECTION]


def test_every_preset_is_run_by_this_file():
    assert set(DETECTION) == {"detection_cpu", "paper_coco_c109", "paper_coco_c154"}
    assert {"paper_small", "paper_regular_c109", "paper_regular_c154", "analysis_small", "cpu_budget"} <= set(
        CLASSIFICATION
    )


@pytest.fixture(scope="module")
def tiny_imagenet(tmp_path_factory):
    """ImageNet's layout (class folders under train/ and val/), two classes, a few 32-px PNGs."""
    from PIL import Image

    root = tmp_path_factory.mktemp("imagenet")
    for split in ("train", "val"):
        for wnid in ("n01440764", "n01443537"):
            (root / split / wnid).mkdir(parents=True)
            for i in range(2):
                Image.new("RGB", (32, 32), (40 * i, 90, 200)).save(root / split / wnid / f"{i}.png")
    return root


@pytest.mark.parametrize("preset", CLASSIFICATION)
def test_classification_presets_build_their_network_and_data(preset, compose_cfg, tiny_imagenet):
    from randwire.training.components import build_net
    from randwire.training.config import build

    imagenet = "imagenet" in (ROOT / "conf" / "experiment" / f"{preset}.yaml").read_text()
    tiny = [f"data.root={tiny_imagenet}", "data.num_classes=2"] if imagenet else []  # the folder's 2 classes
    cfg = compose_cfg(f"experiment={preset}", *tiny)
    net = build_net(cfg)
    assert net.spec.regime == cfg.regime.name and len(net.graphs) == (4 if cfg.regime.name == "regular" else 3)
    data = build("data", cfg.data, seed=cfg.seed)
    data.setup("fit")
    if imagenet:
        assert len(data.datasets["train"]) == 4 and net.spec.num_classes == 2


@pytest.fixture(scope="module")
def quirky_coco(tmp_path_factory):
    """A tiny COCO folder in COCO's own layout, with COCO's quirks (add_coco_quirks): zero-height and
    past-the-edge boxes, crowd regions, unannotated images, areas from the annotations."""
    root = tmp_path_factory.mktemp("coco")
    write_shapes_coco(root, "train2017", images=12, size=64, seed=0, quirks=True)
    write_shapes_coco(root, "val2017", images=6, size=64, seed=1, quirks=True)
    return root


def _tiny_detection(preset, coco, tmp_path):
    data = [f"data.root={coco}", "data.num_workers=0"] if "coco" in preset else ["data.shapes.train=12"]
    return [
        f"experiment={preset}",
        *data,
        "trainer=cpu",
        "trainer.devices=1",
        "graph.n=10",
        "regime.c=8",
        "detection.min_size=64",
        "detection.max_size=64",
        *(["detection.fpn_channels=32", "detection.box_head_dim=64"] if "coco" in preset else []),  # tiny heads
        "++detection.detector.rpn_pre_nms_top_n_test=100",  # the paper's 1000 proposals on a 64² image: slow
        "++detection.detector.rpn_post_nms_top_n_test=100",
        "data.batch_size=2",
        "logger=none",
        "extras.print_config=false",
        f"paths.data_dir={tmp_path / 'data'}",
        *(["trainer.max_steps=1"] if "coco" in preset else ["trainer.max_epochs=1"]),
    ]


@pytest.mark.parametrize("preset", DETECTION)
def test_detection_presets_train_on_a_tiny_coco_with_cocos_quirks(preset, compose_cfg, quirky_coco, tmp_path, capfd):
    run = tmp_path / "run"
    metrics = train(compose_cfg(*_tiny_detection(preset, quirky_coco, tmp_path), run_dir=run))
    out, err = capfd.readouterr()
    assert metrics["status"] == "ok" and metrics["task"] == "detection"
    assert json.loads((run / "attempts.json").read_text())[-1]["how"] == "ok"
    assert (run / "predictions_test.png").stat().st_size > 10_000 and metrics["pictures"] == {
        "test/predictions": "predictions_test.png"
    }
    weights = "best.ckpt" if preset == "detection_cpu" else "final weights"  # val2017 is COCO's test split
    assert (
        f"test ({weights}): COCO box AP (%), COCOeval\n    AP    AP50" in out and "-1" not in out.split("COCOeval")[-1]
    )
    if preset == "detection_cpu":
        assert metrics["global_step"] == 6 and "no backbone.ckpt" not in err  # BN trains: nothing to warn about
        return
    # steps of 16 images, scaled to this run's global batch of 2: 1 step of 16 images = 8 steps
    assert metrics["global_step"] == 8
    assert "epoch 1  step 5/8  train/loss " in out  # 10 annotated images, 2 a step; the ETA counts steps
    assert "trainer.max_steps=1 counts steps of 16 images (detection.steps_reference_batch); this run's global " in out
    assert "in training, 2 of 12 images have no annotations and are skipped" in err  # COCO's quirks, one line
    assert "1 boxes of zero width or height are dropped" in err and "crowd regions (iscrowd)" in err
    assert err.count("warning: no backbone.ckpt: the backbone starts from random weights") == 1
    config = (run / "config.yaml").read_text()
    assert "freeze_at: 2" in config and "bias_lr_factor: 2.0" in config and "precision: 32-true" in config


def test_the_paper_presets_are_8_gpus_of_2_images_for_90k_steps_in_fp32(compose_cfg):
    for preset in ("paper_coco_c109", "paper_coco_c154"):
        cfg = compose_cfg(f"experiment={preset}", "data.root=/datasets/coco")
        assert (cfg.trainer.strategy, cfg.trainer.devices, cfg.data.batch_size) == ("ddp", 8, 2)
        assert (cfg.trainer.max_steps, cfg.trainer.max_epochs, cfg.trainer.precision) == (90000, None, "32-true")
        d = cfg.detection
        assert (d.freeze_at, d.trainable_bn, d.backbone_edge_drop, d.bias_lr_factor, d.bias_weight_decay) == (
            2,
            False,
            0.0,
            2.0,
            0.0,
        )
        assert (cfg.optimizer.lr, cfg.optimizer.weight_decay, d.lr_reference_batch, d.steps_reference_batch) == (
            0.02,
            1e-4,
            16,
            16,
        )


def test_biases_get_detectrons_2x_lr_and_no_weight_decay(compose_cfg, quirky_coco, tmp_path):
    from randwire.training.components import build_module, build_net

    cfg = compose_cfg(*_tiny_detection("paper_coco_c109", quirky_coco, tmp_path))
    module = build_module(cfg, build_net(cfg), {})
    groups = module.parameter_groups(0.0025)
    names = {id(p): n for n, p in module.named_parameters()}
    assert all(not names[id(p)].endswith(".bias") for p in groups[0]["params"])
    assert groups[1]["lr"] == 0.005 and groups[1]["weight_decay"] == 0.0
    assert {names[id(p)] for p in groups[1]["params"]} == {
        n for n, p in module.named_parameters() if n.endswith(".bias") and p.requires_grad
    }


def test_a_coco_folder_without_its_annotation_file_is_one_line_whatever_the_preset(compose_cfg, tmp_path):
    user = tmp_path / "my_coco"
    (user / "train2017").mkdir(parents=True)
    for preset in DETECTION:
        cfg = compose_cfg(f"experiment={preset}", "data=coco", f"data.root={user}", f"paths.data_dir={tmp_path}/data")
        with pytest.raises(ValueError) as err:
            train(cfg)
        assert "instances_train2017.json does not exist" in str(err.value) and "\n" not in str(err.value)
    assert [p.name for p in user.iterdir()] == ["train2017"] and not any(Path(user, "train2017").iterdir())
