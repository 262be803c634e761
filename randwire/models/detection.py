"""RandWire as a detection backbone (paper §5, its COCO table): conv2..conv5 of a network built from stored
graphs, an FPN on them, and torchvision's Faster R-CNN as ``fasterrcnn_resnet50_fpn`` builds it (its
anchors, RPN and RoI heads). torch + torchvision only, like the rest of the model library.

The detection convention of the paper's time (Detectron): the backbone's BatchNorm frozen (its ImageNet
statistics and affine parameters become constants) and conv1, conv2 not trained (FREEZE_AT=2);
``trainable_bn=True`` keeps BatchNorm training instead (SyncBN on several GPUs: Lightning's
``trainer.sync_batchnorm``). :func:`detection_backbone` is the backbone alone, for any torchvision detector.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn
from torchvision.models.detection import FasterRCNN
from torchvision.ops import FeaturePyramidNetwork
from torchvision.ops.feature_pyramid_network import LastLevelMaxPool
from torchvision.ops.misc import FrozenBatchNorm2d

from .network import RandWireNet

FPN_CHANNELS = 256  # torchvision's and Detectron's FPN width
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def freeze_batchnorm(module: nn.Module) -> nn.Module:
    """Every BatchNorm2d below ``module`` replaced, in place, by a FrozenBatchNorm2d with its statistics and
    affine parameters (the state_dict keeps its names; train() no longer updates them)."""
    for name, child in module.named_children():
        if isinstance(child, nn.BatchNorm2d):
            frozen = FrozenBatchNorm2d(child.num_features, eps=child.eps)
            with torch.no_grad():
                for key in ("weight", "bias", "running_mean", "running_var"):
                    getattr(frozen, key).copy_(getattr(child, key))
            setattr(module, name, frozen)
        else:
            freeze_batchnorm(child)
    return module


class RandWireBackbone(nn.Module):
    """A RandWire network without its classifier head, giving FPN levels: ``body`` keeps the network's
    stored graphs and weights (``body.graphs``, ``body.record()``), ``fpn`` turns conv2..conv5 into
    ``out_channels``-wide maps "0".."3" plus "pool" (the extra level torchvision's anchors expect).
    Any torchvision detector that takes a backbone with ``out_channels`` takes it (Faster/Mask R-CNN,
    RetinaNet, FCOS). Build it with :func:`detection_backbone`, which leaves the given network as it was."""

    def __init__(self, body: RandWireNet, out_channels: int = FPN_CHANNELS) -> None:
        super().__init__()
        self.body = body
        self.fpn = FeaturePyramidNetwork(body.feature_info.channels(), out_channels, LastLevelMaxPool())
        self.out_channels = out_channels

    @property
    def feature_info(self):
        return self.body.feature_info

    def forward(self, images: torch.Tensor) -> OrderedDict[str, torch.Tensor]:
        levels = self.body.forward_levels(images)
        return self.fpn(OrderedDict((str(i), level) for i, level in enumerate(levels)))


def detection_backbone(
    net: RandWireNet,
    trainable_bn: bool = False,
    freeze_at: int = 2,
    out_channels: int = FPN_CHANNELS,
    edge_drop: float | None = None,
) -> RandWireBackbone:
    """A copy of ``net`` as an FPN backbone (:class:`RandWireBackbone`); ``net`` itself is not changed.

    Detectron's fine-tuning convention: BatchNorm frozen (``trainable_bn=False``: statistics and affine
    become constants) and the first ``freeze_at`` levels of Table 1 not trained (Detectron's FREEZE_AT=2:
    conv1 and conv2; in the regular regime conv2 is the first random stage, in the small one the stem's
    second conv; 0 trains everything). ``edge_drop``: the stages' edge removal while the detector trains
    (None keeps the network's own; the presets' reading: 0, see conf/task/detection.yaml)."""
    import copy

    from .errors import is_int, is_number, require
    from .network import without_head

    levels = len(net.feature_info) + 1  # conv1 and the levels after it
    require(is_int(freeze_at) and 0 <= freeze_at <= levels, "freeze_at", freeze_at, f"an integer in [0, {levels}]")
    require(
        edge_drop is None or (is_number(edge_drop) and 0 <= edge_drop <= 1), "edge_drop", edge_drop, "in [0, 1] or null"
    )
    body = without_head(copy.deepcopy(net))
    if not trainable_bn:
        freeze_batchnorm(body)
    frozen = ["stem.0"][: min(freeze_at, 1)] + body.feature_info.module_name()[: max(freeze_at - 1, 0)]
    for name in frozen:
        for p in body.get_submodule(name).parameters():
            p.requires_grad_(False)
    if edge_drop is not None:
        body.spec = body.spec.replace(edge_drop=float(edge_drop))
        for stage in body.stages:
            stage.edge_drop = float(edge_drop)
    return RandWireBackbone(body, out_channels)


def randwire_faster_rcnn(
    net: RandWireNet,
    num_classes: int,
    min_size: int = 800,
    max_size: int = 1333,
    trainable_bn: bool = False,
    freeze_at: int = 2,
    edge_drop: float | None = None,
    image_mean: tuple[float, ...] = IMAGENET_MEAN,
    image_std: tuple[float, ...] = IMAGENET_STD,
    fpn_channels: int = FPN_CHANNELS,
    box_head_dim: int = 1024,
    **faster_rcnn: object,
) -> FasterRCNN:
    """Faster R-CNN with FPN on a copy of ``net`` (its graphs and weights as they are; ``trainable_bn``,
    ``freeze_at``, ``edge_drop``: :func:`detection_backbone`). ``num_classes`` counts the
    object classes; torchvision's background class is added here. Images are resized so the shorter side is
    ``min_size`` and the longer at most ``max_size`` (COCO: 800 / 1333) and normalised as the backbone was
    trained (ImageNet's mean/std by default). ``fpn_channels`` (256) and ``box_head_dim`` (the RoI head's
    two 1024-wide layers) are torchvision's and Detectron's widths; ``faster_rcnn``: any of torchvision's
    FasterRCNN options (``rpn_post_nms_top_n_train``, ``box_batch_size_per_image``, ...)."""
    from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead

    backbone = detection_backbone(net, trainable_bn, freeze_at, fpn_channels, edge_drop)
    resolution = 7  # torchvision's RoIAlign output (MultiScaleRoIAlign, 7x7)
    return FasterRCNN(
        backbone,
        min_size=min_size,
        max_size=max_size,
        image_mean=list(image_mean),
        image_std=list(image_std),
        box_head=TwoMLPHead(fpn_channels * resolution**2, box_head_dim),
        box_predictor=FastRCNNPredictor(box_head_dim, num_classes + 1),
        **faster_rcnn,
    )


def weight_count(module: nn.Module) -> int:
    """Parameters, counting a frozen BatchNorm's scale and shift too (buffers there, parameters in the count
    of the classifier and of the paper)."""
    frozen = sum(m.weight.numel() + m.bias.numel() for m in module.modules() if isinstance(m, FrozenBatchNorm2d))
    return sum(p.numel() for p in module.parameters()) + frozen


def detector_complexity(model: FasterRCNN, image_size: tuple[int, int]) -> dict[str, int]:
    """Params and multiply-add FLOPs of a detector on one image of ``image_size`` (H, W) in eval mode, by
    torch's counter (2 FLOPs per multiply-add, halved here), and its backbone's analytic count at the size
    the backbone sees (the image resized, then padded to a multiple of 32 as torchvision batches it)."""
    from torch.utils.flop_counter import FlopCounterMode

    from .complexity import Cx, backbone_cx

    was_training = model.training
    model.eval()
    image = torch.zeros(3, *image_size)
    resized = model.transform([image])[0].tensors.shape[-2:]
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model([image])
    model.train(was_training)
    body = model.backbone.body
    backbone = backbone_cx(Cx(h=int(resized[0]), w=int(resized[1])), body.spec, body.graphs)
    return {
        "params": weight_count(model),
        "flops": counter.get_total_flops() // 2,
        "backbone_params": backbone.params,
        "backbone_flops": backbone.flops,
        "input_size": [int(resized[0]), int(resized[1])],
    }
