"""RandWire as a detection backbone (issue 19 part 2): Faster R-CNN + FPN on a network's stored graphs."""

import pytest
import torch
from helpers import ROOT, detection_yaml

from randwire import build_network
from randwire.models.detection import randwire_faster_rcnn

OLD = ROOT / "tests" / "data" / "pre_redesign" / "last.ckpt"


def _targets(n: int) -> list[dict]:
    return [
        {"boxes": torch.tensor([[4.0, 6.0, 30.0, 28.0], [34.0, 30.0, 60.0, 62.0]]), "labels": torch.tensor([1, 2])}
    ] * n


def _detector(**kwargs):
    net = build_network("small", graph="ws", n=8, c=8, seed=0, k=4, p=0.75, num_classes=3, head_channels=16)
    kwargs = {"min_size": 64, "max_size": 64, "rpn_batch_size_per_image": 32, "box_batch_size_per_image": 32, **kwargs}
    return randwire_faster_rcnn(net, num_classes=2, **kwargs)


def test_a_training_step_moves_the_detector_but_not_frozen_bn_or_conv1():
    torch.manual_seed(0)
    model = _detector().train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.05, momentum=0.9)
    images = list(torch.rand(2, 3, 64, 64))
    losses = model(images, _targets(2))
    assert set(losses) == {"loss_classifier", "loss_box_reg", "loss_objectness", "loss_rpn_box_reg"}
    sum(losses.values()).backward()
    optimizer.step()
    after = model.state_dict()
    frozen = [
        k for k in before if k.startswith("backbone.body.") and (".bn." in k or k.startswith("backbone.body.stem.0."))
    ]
    assert frozen and all(torch.equal(before[k], after[k]) for k in frozen)  # BN statistics and affine, conv1
    assert not any(k.endswith("num_batches_tracked") for k in after if k.startswith("backbone.body."))
    moved = [k for k in before if k.startswith("backbone.body.stages.") and k.endswith("conv_pw.weight")]
    assert moved and all(not torch.equal(before[k], after[k]) for k in moved)
    assert not torch.equal(
        before["backbone.fpn.layer_blocks.0.0.weight"], after["backbone.fpn.layer_blocks.0.0.weight"]
    )


def test_trainable_bn_keeps_batchnorm_and_eval_gives_boxes():
    model = _detector(trainable_bn=True)
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in model.backbone.body.modules())
    model.eval()
    with torch.no_grad():
        (out,) = model([torch.rand(3, 64, 64)])
    assert set(out) == {"boxes", "labels", "scores"} and out["boxes"].shape[1] == 4


def test_a_backbone_from_a_classification_checkpoint_keeps_its_graphs_and_weights():
    from randwire.training.checkpoints import load_checkpoint

    net, info = load_checkpoint(OLD)  # the network rebuilt from its stored graphs, checkpoint checks included
    weights = {k: v.clone() for k, v in net.state_dict().items() if not k.startswith("head.")}
    model = randwire_faster_rcnn(net, num_classes=3, min_size=32, max_size=32)
    body = model.backbone.body
    assert [g.hash for g in body.graphs] == [g["hash"] for g in info["net_spec"]["graphs"]]
    state = body.state_dict()
    assert set(state) == {k for k in weights if not k.endswith("num_batches_tracked")}
    assert all(torch.equal(state[k], weights[k]) for k in state)
    assert [i["num_chs"] for i in body.feature_info()] == [4, 4, 8, 16] and model.backbone.out_channels == 256


def test_complexity_of_the_backbone_and_of_the_whole_detector():
    from torch.utils.flop_counter import FlopCounterMode

    from randwire.models.detection import detector_complexity, weight_count

    model = _detector(min_size=96, max_size=128)
    cx = detector_complexity(model, (64, 80))  # resized to 96 x 120, padded to multiples of 32: 96 x 128
    body = model.backbone.body
    assert cx["input_size"] == [96, 128]
    assert cx["backbone_params"] == weight_count(body)  # frozen BN's scale and shift included, as the paper counts
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        body.eval().forward_levels(torch.zeros(1, 3, 96, 128))
    assert cx["backbone_flops"] == counter.get_total_flops() // 2
    assert cx["flops"] > cx["backbone_flops"] and cx["params"] > cx["backbone_params"]
    assert model.training  # measured in eval mode, left as it was


def test_the_detection_task_fits_validates_tests_and_checkpoints_its_graphs(tmp_path):
    """The Lightning side: a tiny detector on a tiny shapes set for two epochs; COCO AP logged under test/,
    the checkpoint carries the backbone's graphs and the task, frozen BN is untouched by the fit."""
    from functools import partial

    import pytorch_lightning as pl

    from randwire.training.detection.data import DetectionDataModule
    from randwire.training.detection.module import DetectionModule

    pl.seed_everything(0, verbose=False)
    net = build_network("small", graph="ws", n=8, c=8, seed=0, k=4, p=0.75, num_classes=3, head_channels=16)
    hashes = [g.hash for g in net.graphs]
    module = DetectionModule(
        net,
        num_classes=3,
        optimizer=partial(torch.optim.SGD, lr=0.01, momentum=0.9),
        **{**detection_yaml(), "min_size": 64, "max_size": 64, "batch_size": 4},
    )
    frozen = {k: v.clone() for k, v in module.state_dict().items() if ".bn." in k}
    data = DetectionDataModule(
        str(tmp_path / "shapes"),
        num_classes=3,
        batch_size=4,
        shapes={"train": 8, "val": 4, "size": 64},
        generate_under=str(tmp_path),
    )
    trainer = pl.Trainer(
        max_epochs=2,
        default_root_dir=tmp_path,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
        devices=1,
    )
    trainer.fit(module, datamodule=data)
    assert "val/map_best" in trainer.callback_metrics and trainer.global_step == 4
    (results,) = trainer.test(module, datamodule=data, verbose=False)
    assert {"test/map", "test/map_50", "test/map_75", "test/map_small", "test/map_medium", "test/map_large"} <= set(
        results
    )
    assert all(torch.equal(frozen[k], module.state_dict()[k]) for k in frozen)
    ckpt = next((tmp_path / "checkpoints").glob("*.ckpt"))
    info = torch.load(ckpt, weights_only=True)["randwire"]
    assert info["task"] == "detection" and [g["hash"] for g in info["net_spec"]["graphs"]] == hashes
    assert module.cx["backbone_flops"] > 0 and module.cx["input_size"] == [64, 64]


def test_detection_backbone_leaves_the_network_as_it_was_and_freezes_at_2():
    import randwire

    net = build_network(
        "regular", graph="ws", n=10, c=8, seed=0, k=4, p=0.75, num_classes=3, head_channels=16, edge_drop=0.1
    ).eval()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    backbone = randwire.detection_backbone(net, edge_drop=0.0)
    assert net.head is not None and isinstance(net(torch.rand(1, 3, 64, 64)), torch.Tensor)  # still a classifier
    assert all(torch.equal(v, net.state_dict()[k]) for k, v in before.items())
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules()) and net.spec.edge_drop == 0.1
    body = backbone.body
    assert body.spec.edge_drop == 0.0 and all(stage.edge_drop == 0.0 for stage in body.stages)
    assert body.head is None and all(torch.equal(v, before[k]) for k, v in body.state_dict().items())
    frozen = {n.split(".")[0] + "." + n.split(".")[1] for n, p in body.named_parameters() if not p.requires_grad}
    assert frozen == {"stem.0", "stages.0"}  # regular regime: conv1 and conv2 (the first random stage)
    assert backbone.feature_info.channels() == [8, 16, 32, 64] and backbone.out_channels == 256
    none = randwire.detection_backbone(net, trainable_bn=True, freeze_at=0)
    assert all(p.requires_grad for p in none.body.parameters())
    from randwire.models.errors import BadValue

    with pytest.raises(BadValue, match=r"^freeze_at=6 is out of range: allowed an integer in \[0, 5\]"):
        randwire.detection_backbone(net, freeze_at=6)


def _masks(targets, size):
    out = []
    for t in targets:
        masks = torch.zeros(len(t["boxes"]), size, size, dtype=torch.uint8)
        for m, (x0, y0, x1, y1) in zip(masks, t["boxes"].int().tolist()):
            m[y0:y1, x0:x1] = 1
        out.append({**t, "masks": masks})
    return out


@pytest.mark.parametrize("detector", ["retinanet", "maskrcnn", "fcos"])
def test_the_backbone_plugs_into_torchvisions_other_detectors_and_trains_a_step(detector):
    import randwire

    torch.manual_seed(0)
    net = build_network("small", graph="ws", n=8, c=8, seed=0, k=4, p=0.75, num_classes=3, head_channels=16)
    backbone = randwire.detection_backbone(net, out_channels=64)  # FCOS: GroupNorm(32) needs 2+ values a group
    from torchvision.models import detection as tv

    sizes = {"min_size": 64, "max_size": 64}
    if detector == "retinanet":
        model, targets = tv.RetinaNet(backbone, num_classes=3, **sizes), _targets(2)
    elif detector == "fcos":
        model, targets = tv.FCOS(backbone, num_classes=3, **sizes), _targets(2)
    else:
        model, targets = tv.MaskRCNN(backbone, num_classes=3, **sizes), _masks(_targets(2), 64)
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    before = [p.detach().clone() for p in params]
    losses = model(list(torch.rand(2, 3, 64, 64)), targets)
    loss = sum(losses.values())
    assert torch.isfinite(loss) and (detector != "maskrcnn" or "loss_mask" in losses)
    loss.backward()
    torch.optim.SGD(params, lr=0.01).step()
    assert sum(not torch.equal(a, b) for a, b in zip(before, params)) > len(params) // 2
    model.eval()
    with torch.no_grad():
        (out,) = model([torch.rand(3, 64, 64)])
    assert {"boxes", "labels", "scores"} <= set(out)
