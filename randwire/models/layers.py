"""The building blocks of a RandWire network (paper §3.3, Table 1): a node's transformation (ReLU-conv-BN,
the node operation of Fig. 6), the stem's conv-BN and the classifier head."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .architecture import HEAD_CHANNELS, validate_node_op
from .complexity import Cx, conv_bn_cx, head_cx, transform_cx


def conv_bn(x: torch.Tensor, conv: nn.Conv2d, bn: nn.BatchNorm2d, fold: bool = False) -> torch.Tensor:
    """BN(conv(x)); with ``fold`` and BN in eval mode, one conv with BN folded into weight and bias
    (same result up to float rounding, one pass over the output fewer)."""
    if not (fold and not bn.training and bn.running_var is not None):
        return bn(conv(x))
    scale = bn.weight * torch.rsqrt(bn.running_var + bn.eps)
    weight = conv.weight * scale.view(-1, 1, 1, 1)
    bias = bn.bias - bn.running_mean * scale
    return F.conv2d(x, weight, bias, conv.stride, conv.padding, conv.dilation, conv.groups)


class NodeTransform(nn.Module):
    """ReLU → op → BN, where op is one of the Fig. 6 node operations (no BN/ReLU inside op, no bias).

    sep_conv (default): 3×3 depthwise → 1×1 pointwise; conv: dense 3×3; max_pool / avg_pool: 3×3 pool →
    1×1 conv. ``stride`` is 2 at nodes fed by the stage's input node, where C_in → C_out happens.
    """

    def __init__(self, c_in: int, c_out: int, stride: int, op: str = "sep_conv") -> None:
        super().__init__()
        validate_node_op(op)
        self.op, self.c_in, self.c_out, self.stride = op, c_in, c_out, stride
        if op == "sep_conv":
            self.conv_dw = nn.Conv2d(c_in, c_in, 3, stride, 1, groups=c_in, bias=False)
            self.conv_pw = nn.Conv2d(c_in, c_out, 1, bias=False)
        elif op == "conv":
            self.conv = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        else:
            # reading: avg-pool excludes the zero padding, so border pixels are true averages.
            self.pool = (
                nn.MaxPool2d(3, stride, 1) if op == "max_pool" else nn.AvgPool2d(3, stride, 1, count_include_pad=False)
            )
            self.conv_pw = nn.Conv2d(c_in, c_out, 1, bias=False)
        self.bn = nn.BatchNorm2d(c_out)
        self.fold_bn = False  # set by randwire.models.execution: fold BN into the last conv in eval mode

    def forward(self, x: torch.Tensor, relu_done: bool = False) -> torch.Tensor:
        x = x if relu_done else torch.relu(x)
        if self.op == "sep_conv":
            return conv_bn(self.conv_dw(x), self.conv_pw, self.bn, self.fold_bn)
        if self.op == "conv":
            return conv_bn(x, self.conv, self.bn, self.fold_bn)
        return conv_bn(self.pool(x), self.conv_pw, self.bn, self.fold_bn)

    def complexity(self, cx: Cx) -> Cx:
        return transform_cx(cx, self.c_in, self.c_out, self.stride, self.op)


class ConvBN(nn.Module):
    """[ReLU →] 3×3 dense conv → BN: conv1 (no ReLU on the image) and conv2 of the small regime."""

    def __init__(self, c_in: int, c_out: int, stride: int, relu: bool) -> None:
        super().__init__()
        self.relu, self.c_in, self.c_out, self.stride = relu, c_in, c_out, stride
        self.conv = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn = nn.BatchNorm2d(c_out)
        self.fold_bn = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return conv_bn(torch.relu(x) if self.relu else x, self.conv, self.bn, self.fold_bn)

    def complexity(self, cx: Cx) -> Cx:
        return conv_bn_cx(cx, self.c_in, self.c_out, self.stride)


class Head(nn.Module):
    """ReLU → 1×1 conv 1280 → BN → ReLU → global average pool → [dropout] → fc (Table 1 classifier)."""

    def __init__(self, c_in: int, num_classes: int, dropout: float, width: int = HEAD_CHANNELS) -> None:
        super().__init__()
        self.c_in, self.width = c_in, width
        self.conv = nn.Conv2d(c_in, width, 1, bias=False)
        self.bn = nn.BatchNorm2d(width)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.fc = nn.Linear(width, num_classes)
        self.fold_bn = False

    def map(self, x: torch.Tensor, relu_done: bool = False) -> torch.Tensor:
        """The unpooled map the classifier pools (ReLU → 1×1 conv → BN → ReLU)."""
        x = x if relu_done else torch.relu(x)
        return torch.relu(conv_bn(x, self.conv, self.bn, self.fold_bn))

    def features(self, x: torch.Tensor, relu_done: bool = False) -> torch.Tensor:
        return self.map(x, relu_done).mean((2, 3))

    def forward(self, x: torch.Tensor, relu_done: bool = False) -> torch.Tensor:
        return self.fc(self.dropout(self.features(x, relu_done)))

    def complexity(self, cx: Cx) -> Cx:
        return head_cx(cx, self.c_in, self.width, self.fc.out_features)
