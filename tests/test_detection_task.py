"""The detection task through train.py and evaluate.py (issue 19): experiment=detection_cpu made tiny, a
backbone from a classification checkpoint, a kill-and-resume, a seed sweep's AP summary, bad values."""

import json
import sys

import pytest
import torch
from helpers import run_script

from randwire.training.run import train


def tiny_detection(tmp_path, *extra: str) -> list[str]:
    """experiment=detection_cpu at 64 px on 16 training images: 4 steps an epoch, seconds a run."""
    return [
        "experiment=detection_cpu",
        "graph.n=6",
        "regime.c=8",
        "data.shapes={train: 16, val: 8, test: 8, size: 64}",
        "data.batch_size=4",
        "detection.min_size=64",
        "detection.max_size=64",
        "trainer.max_epochs=2",
        "logger=none",
        "callbacks=default",
        "~callbacks.progress_bar",
        "~callbacks.model_summary",
        "extras.print_config=false",
        f"paths.data_dir={tmp_path / 'data'}",
        *extra,
    ]


AP = ("test/map", "test/map_50", "test/map_75", "test/map_small", "test/map_medium", "test/map_large")


def test_detection_trains_tests_on_best_and_evaluate_gives_the_same_ap_table(compose_cfg, tmp_path, capsys):
    from randwire.training.evaluate import evaluate

    run = tmp_path / "run"
    metrics = train(compose_cfg(*tiny_detection(tmp_path), run_dir=run))
    assert metrics["task"] == "detection" and metrics["status"] == "ok" and metrics["global_step"] == 8
    assert all(0 <= metrics[key] <= 1 or metrics[key] == -1 for key in AP)
    assert "test/acc1" not in metrics and metrics["val/map_best"] is not None
    assert metrics["test_checkpoint"] == str(run / "checkpoints" / "best.ckpt")
    assert metrics["input_size"] == [64, 64] and metrics["backbone_flops"] < metrics["flops"]
    assert "detector: " in capsys.readouterr().out  # the complexity, said at start
    saved = torch.load(run / "checkpoints" / "best.ckpt", weights_only=True)
    assert saved["randwire"]["task"] == "detection"
    assert [g["hash"] for g in saved["randwire"]["net_spec"]["graphs"]] == metrics["graph_hashes"]
    result = evaluate(compose_cfg(f"ckpt={run / 'checkpoints' / 'best.ckpt'}", config="evaluate"))
    assert result["images"] == 8 and result["graph_hashes"] == metrics["graph_hashes"]
    assert [result[key.split("/")[1]] for key in AP] == pytest.approx([metrics[key] for key in AP], abs=1e-7)


def test_a_backbone_from_a_classification_checkpoint_keeps_its_graphs_weights_and_config(
    compose_cfg, tiny_run, tmp_path
):
    import yaml

    from randwire.training.checkpoints import load_checkpoint
    from randwire.training.components import adopt_backbone_config, build_net

    classifier_run, classifier = tiny_run
    ckpt = classifier_run / "checkpoints" / "best.ckpt"
    cfg = compose_cfg(*tiny_detection(tmp_path, f"backbone.ckpt={ckpt}"), run_dir=tmp_path / "run")
    adopt_backbone_config(cfg)
    stored = yaml.safe_load((classifier_run / "config.yaml").read_text())
    assert cfg.regime.name == stored["regime"]["name"] == "lowres" and cfg.graph.n == stored["graph"]["n"] == 8
    net, reference = build_net(cfg), load_checkpoint(ckpt)[0]
    assert [g.hash for g in net.graphs] == classifier["graph_hashes"]
    assert all(torch.equal(v, reference.state_dict()[k]) for k, v in net.state_dict().items())
    metrics = train(compose_cfg(*tiny_detection(tmp_path, f"backbone.ckpt={ckpt}"), run_dir=tmp_path / "run"))
    assert metrics["graph_hashes"] == classifier["graph_hashes"]
    assert yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())["regime"] == stored["regime"]
    detector = tmp_path / "run" / "checkpoints" / "best.ckpt"
    from randwire.training.errors import CheckpointError

    with pytest.raises(
        CheckpointError,
        match=r"^backbone\.ckpt='.*best\.ckpt': a detection checkpoint, not a classifier's \(a backbone",
    ):
        build_net(compose_cfg(*tiny_detection(tmp_path, f"backbone.ckpt={detector}")))
    with pytest.raises(CheckpointError, match=r"^ckpt='.*best\.ckpt': a detection checkpoint, not a classifier's"):
        load_checkpoint(detector)


def test_a_killed_detection_run_resumes_to_the_same_ap_and_weights(compose_cfg, tmp_path):
    from randwire.training.errors import RunInterrupted

    straight = train(compose_cfg(*tiny_detection(tmp_path), run_dir=tmp_path / "straight"))
    signal_at = ["+callbacks.signal._target_=test_faults.SignalAt", "+callbacks.signal.step=6"]
    with pytest.raises(RunInterrupted, match=r"^interrupted by SIGUSR2 at epoch 1, step 6: "):
        train(compose_cfg(*tiny_detection(tmp_path, *signal_at), run_dir=tmp_path / "resumed"))
    resumed = train(compose_cfg(*tiny_detection(tmp_path), run_dir=tmp_path / "resumed"))
    assert [a["how"] for a in resumed["attempts"]] == ["interrupted", "ok"]
    for key in (*AP, "val/map_best", "global_step"):
        assert resumed[key] == straight[key], key
    a, b = (torch.load(tmp_path / r / "checkpoints" / "last.ckpt", weights_only=True) for r in ("straight", "resumed"))
    assert a["state_dict"].keys() == b["state_dict"].keys()
    for name in a["state_dict"]:
        torch.testing.assert_close(a["state_dict"][name], b["state_dict"][name], rtol=0, atol=0, msg=name)


@pytest.mark.slow
def test_a_detection_seed_sweep_is_summarised_as_mean_and_std_of_ap_past_a_diverged_setting(tmp_path):
    sweep = tmp_path / "sweep"
    cmd = [
        sys.executable,
        "train.py",
        *tiny_detection(tmp_path),
        "-m",
        "optimizer.lr=0.02,1e6",
        "seed=0,1",
        f"hydra.sweep.dir={sweep}",
    ]
    done = run_script(cmd, expect=1)
    assert done.stderr.strip().splitlines()[-1] == f"error: 2 of 4 jobs failed (listed in {sweep}/summary.md)"
    records = [json.loads((sweep / str(job) / "metrics.json").read_text()) for job in range(4)]
    ok = [r for r in records if r["status"] == "ok"]
    assert [r["seed"] for r in ok] == [0, 1] and all("optimizer.lr=0.02" in r["overrides"] for r in ok)
    diverged = [r for r in records if r["status"] == "diverged"]
    assert len(diverged) == 2 and all(r["error"].startswith("training diverged: ") for r in diverged)
    lines = (sweep / "summary.md").read_text().splitlines()
    header = next(line for line in lines if line.startswith("| setting |"))
    assert "| AP (%) | AP50 (%) | AP75 (%) |" in header and "top-1" not in header
    aps = torch.tensor([r["test/map"] for r in ok]).double()
    row = next(line for line in lines if line.startswith("| optimizer.lr=0.02 |"))
    assert f"| {100 * aps.mean():.2f} ± {100 * aps.std():.2f} |" in row and "| 0,1 | – |" in row
    assert "Failed jobs (not averaged):" in lines and sum("| diverged | training diverged" in ln for ln in lines) == 2


@pytest.mark.parametrize(
    "override,message",
    [
        ("regime.c=auto regime.flops=5e6", "regime.c='auto' is not allowed: an integer for task=detection"),
        ("+detection.detector.anchors=3", "detection.detector.anchors=3 is not allowed: the options of torchvision's"),
        ("detection.min_size=8", "detection.min_size=8 is out of range"),
        ("backbone.ckpt=/nowhere/best.ckpt", "backbone.ckpt='/nowhere/best.ckpt': no such checkpoint file"),
        ("data.num_classes=2", "category id 3 is above data.num_classes=2"),
    ],
)
def test_bad_detection_values_are_one_line(compose_cfg, tmp_path, override, message):
    with pytest.raises(ValueError) as err:
        train(compose_cfg(*tiny_detection(tmp_path, *override.split())))
    assert message in str(err.value) and "\n" not in str(err.value)


def test_the_1x_schedule_warms_up_then_steps_down_at_two_thirds_and_eight_ninths():
    from randwire.models.errors import BadValue
    from randwire.training.schedules import WarmupMultiStep

    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.02)
    sched = WarmupMultiStep(opt, total_steps=900, warmup_fraction=1 / 180, warmup_factor=1 / 3)  # 5 warm-up steps
    lrs = []
    for _ in range(900):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[0] == pytest.approx(0.02 / 3) and lrs[5] == pytest.approx(0.02)
    assert lrs[1:5] == pytest.approx([0.02 * (1 / 3 + 2 / 3 * s / 5) for s in range(1, 5)])
    assert lrs[599] == pytest.approx(0.02) and lrs[600] == pytest.approx(0.002)  # 60k of 90k
    assert lrs[799] == pytest.approx(0.002) and lrs[800] == pytest.approx(0.0002)  # 80k of 90k
    with pytest.raises(BadValue, match=r"^milestones=\[0\.9, 0\.5\] is not allowed: increasing fractions"):
        WarmupMultiStep(opt, total_steps=10, milestones=(0.9, 0.5))


def _quirky_coco(root):
    from randwire.training.detection.shapes import write_shapes_coco

    write_shapes_coco(root, "train2017", images=12, size=128, seed=0, quirks=True)
    write_shapes_coco(root, "val2017", images=10, size=128, seed=1, quirks=True)
    return root


def _on_coco(tmp_path, coco, *extra):
    coco_data = ["data=coco", f"data.root={coco}", "data.num_workers=0", "data.batch_size=4", "data.num_classes=3"]
    return tiny_detection(tmp_path, *coco_data, *extra)


def test_ap_equals_cocoeval_on_the_exported_detections_and_evaluate_draws_them(compose_cfg, tmp_path, capsys):
    """On a COCO folder with crowd regions and unannotated images: metrics.json's AP, evaluate's AP and
    pycocotools' COCOeval run on evaluate's detections_test.json against the annotation file are one number;
    the run leaves predictions_test.png, logged to W&B too; evaluate draws its own picture on request."""
    import contextlib
    import io

    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    from randwire.training.evaluate import evaluate

    coco, run = _quirky_coco(tmp_path / "coco"), tmp_path / "run"
    keep_all = "+detection.detector.box_score_thresh=0.0"  # a briefly trained detector: keep its low scores too
    metrics = train(compose_cfg(*_on_coco(tmp_path, coco, "logger=wandb", keep_all), run_dir=run))
    assert metrics["test_checkpoint"] == "final weights" and metrics["pictures"]["test/predictions"]
    media = list((run / "wandb").glob("offline-run-*/files/media/images/test/predictions_*.png"))
    assert len(media) == 1 and media[0].stat().st_size > 10_000
    ckpt = run / "checkpoints" / "last.ckpt"
    result = evaluate(compose_cfg(f"ckpt={ckpt}", "save_detections=true", "draw=4", config="evaluate"))
    assert result["images"] == 10 and result["detections"] > 0
    exported = run / "detections_test.json"
    assert result["detections_file"] == str(exported) and result["picture"] == str(run / "predictions_test.png")
    detections = json.loads(exported.read_text())
    assert {d["category_id"] for d in detections} <= {1, 2, 3} and set(detections[0]) == {
        "image_id",
        "category_id",
        "bbox",
        "score",
    }
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(coco / "annotations" / "instances_val2017.json"))
        reference = COCOeval(gt, gt.loadRes(str(exported)), "bbox")
        reference.evaluate()
        reference.accumulate()
        reference.summarize()
    ours = [result[key.split("/")[1]] for key in AP]
    assert ours == pytest.approx(list(reference.stats[:6]), abs=1e-4)
    assert ours == pytest.approx([metrics[key] for key in AP], abs=1e-4)  # the run's own test: the same weights
    from PIL import Image

    with Image.open(run / "predictions_test.png") as picture:
        assert picture.size[0] > 800 and picture.size[1] > 300  # 4 images in a row


def test_refused_detection_data_is_one_line_and_closes_the_attempt(compose_cfg, tmp_path):
    from randwire.training.errors import CheckpointError, DataError

    coco = _quirky_coco(tmp_path / "coco")
    image = coco / "train2017" / "000003.jpg"
    image.write_bytes(image.read_bytes()[:400])  # truncated
    with pytest.raises(DataError) as err:
        train(compose_cfg(*_on_coco(tmp_path, coco), run_dir=tmp_path / "run"))
    assert str(err.value).startswith(f"{image}: cannot be read as an image (") and "\n" not in str(err.value)
    attempts = json.loads((tmp_path / "run" / "attempts.json").read_text())
    record = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert attempts[-1]["how"] == "failed" and record["status"] == "failed" and str(image) in record["error"]
    from helpers import TINY_WITH_CHECKPOINTS

    gray = tmp_path / "gray"  # a classifier of 1-channel images, as one trained on digits
    train(compose_cfg(*TINY_WITH_CHECKPOINTS, "data.in_channels=1", run_dir=gray))
    digits = gray / "checkpoints" / "last.ckpt"
    with pytest.raises(CheckpointError) as err:
        train(compose_cfg(*tiny_detection(tmp_path, f"backbone.ckpt={digits}"), run_dir=tmp_path / "run2"))
    assert "its network takes 1-channel images, but data=shapes gives 3-channel ones" in str(err.value)


def test_evaluate_never_writes_the_shapes_set_outside_the_data_folder(compose_cfg, tmp_path):
    from randwire.training.evaluate import evaluate

    run = tmp_path / "run"
    train(compose_cfg(*tiny_detection(tmp_path, "trainer.max_epochs=1"), run_dir=run))
    elsewhere = tmp_path / "somewhere"
    with pytest.raises(ValueError, match=r"somewhere/annotations/instances_train\.json does not exist \(a COCO folder"):
        evaluate(compose_cfg(f"ckpt={run / 'checkpoints' / 'last.ckpt'}", f"data.root={elsewhere}", config="evaluate"))
    assert not elsewhere.exists()


def test_a_run_counted_in_steps_resumes_to_more_steps_with_its_schedule(compose_cfg, tmp_path, capsys):
    """trainer.max_steps ends a run mid-epoch; the same folder with a larger max_steps goes on from its
    checkpoint (not "already finished"), and the epoch line counts steps."""
    steps = ["trainer.max_epochs=null", "detection.steps_reference_batch=null"]  # literal steps of 4 images
    run = tmp_path / "run"
    first = train(compose_cfg(*tiny_detection(tmp_path, *steps, "trainer.max_steps=6"), run_dir=run))
    assert first["global_step"] == 6  # 4 steps an epoch: it stopped in the second
    out = capsys.readouterr().out
    assert "epoch 1  step 4/6  train/loss " in out and "counts steps of" not in out
    more = train(compose_cfg(*tiny_detection(tmp_path, *steps, "trainer.max_steps=10"), run_dir=run))
    assert more["global_step"] == 10 and [a["how"] for a in more["attempts"]] == ["ok", "ok"]
    assert "already finished" not in capsys.readouterr().out


@pytest.mark.slow
def test_ddp_detection_scores_each_test_image_once_and_equals_a_one_process_evaluation(tmp_path):
    """Two gloo processes on a COCO folder of 7 test images (not a multiple of 2, crowd regions and
    unannotated images among them): COCOeval sees every image once, and the run's AP equals evaluate.py's
    one-process AP of the same weights."""
    import os

    from randwire.training.config import compose_config
    from randwire.training.evaluate import evaluate

    coco = tmp_path / "coco"
    from randwire.training.detection.shapes import write_shapes_coco

    write_shapes_coco(coco, "train2017", images=16, size=96, seed=0, quirks=True)
    write_shapes_coco(coco, "val2017", images=7, size=96, seed=1, quirks=True)
    run = tmp_path / "run"
    cmd = [
        sys.executable,
        "train.py",
        *_on_coco(tmp_path, coco, "trainer=ddp_cpu", "+detection.detector.box_score_thresh=0.0", "logger=csv"),
        f"hydra.run.dir={run}",
    ]
    dropped = ("WANDB_SERVICE", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "RANDWIRE_THREADS")
    env = {**{k: v for k, v in os.environ.items() if k not in dropped}, "WANDB_MODE": "disabled"}
    run_script(cmd, env=env, expect=0)
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["world_size"] == 2 and metrics["status"] == "ok"
    result = evaluate(compose_config("evaluate", [f"ckpt={run / 'checkpoints' / 'last.ckpt'}"]))
    assert result["images"] == 7 and result["detections"] > 0
    assert [result[key.split("/")[1]] for key in AP] == pytest.approx([metrics[key] for key in AP], abs=1e-4)
