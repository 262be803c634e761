"""The building blocks of a RandWire network (paper §3.3, Table 1): a node's transformation (ReLU-conv-BN,
the node operation of Fig. 6), the stem's conv-BN and the classifier head."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .architecture import HEAD_CHANNELS
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
    """ReLU → op → BN, the node operation of Fig. 6 (no BN/ReLU inside the op, no bias); one subclass per op,
    each registered in :mod:`randwire.models.node_ops`. A subclass builds its layers and says, in
    :meth:`body`, what feeds its last conv (so BN can be folded into it) and which conv that is.
    ``stride`` is 2 at nodes fed by the stage's input node, where C_in → C_out happens."""

    op = ""  # the name it is registered under

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.c_in, self.c_out, self.stride = c_in, c_out, stride
        self.fold_bn = False  # set by randwire.models.execution: fold BN into the last conv in eval mode

    def body(self, x: torch.Tensor) -> tuple[torch.Tensor, nn.Conv2d | None]:
        """(the input of the op's last conv, that conv); (the op's output, None) for an op not ending in one."""
        raise NotImplementedError

    def forward(self, x: torch.Tensor, relu_done: bool = False) -> torch.Tensor:
        pre, last = self.body(x if relu_done else torch.relu(x))
        return self.bn(pre) if last is None else conv_bn(pre, last, self.bn, self.fold_bn)

    def complexity(self, cx: Cx) -> Cx:
        return transform_cx(cx, self.c_in, self.c_out, self.stride, self.op)


class SepConv(NodeTransform):
    """The paper's default: 3×3 depthwise → 1×1 pointwise."""

    op = "sep_conv"

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__(c_in, c_out, stride)
        self.conv_dw = nn.Conv2d(c_in, c_in, 3, stride, 1, groups=c_in, bias=False)
        self.conv_pw = nn.Conv2d(c_in, c_out, 1, bias=False)
        self.bn = nn.BatchNorm2d(c_out)

    def body(self, x: torch.Tensor) -> tuple[torch.Tensor, nn.Conv2d | None]:
        return self.conv_dw(x), self.conv_pw


class Conv(NodeTransform):
    """A dense 3×3 conv."""

    op = "conv"

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__(c_in, c_out, stride)
        self.conv = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn = nn.BatchNorm2d(c_out)

    def body(self, x: torch.Tensor) -> tuple[torch.Tensor, nn.Conv2d | None]:
        return x, self.conv


class MaxPoolConv(NodeTransform):
    """3×3 max pool → 1×1 conv."""

    op = "max_pool"

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__(c_in, c_out, stride)
        self.pool = self.make_pool(stride)
        self.conv_pw = nn.Conv2d(c_in, c_out, 1, bias=False)
        self.bn = nn.BatchNorm2d(c_out)

    def make_pool(self, stride: int) -> nn.Module:
        return nn.MaxPool2d(3, stride, 1)

    def body(self, x: torch.Tensor) -> tuple[torch.Tensor, nn.Conv2d | None]:
        return self.pool(x), self.conv_pw


class AvgPoolConv(MaxPoolConv):
    """3×3 average pool → 1×1 conv. reading: the pool excludes the zero padding, so border pixels are true
    averages."""

    op = "avg_pool"

    def make_pool(self, stride: int) -> nn.Module:
        return nn.AvgPool2d(3, stride, 1, count_include_pad=False)


def node_transform(c_in: int, c_out: int, stride: int, op: str = "sep_conv") -> NodeTransform:
    """The registered op's module for one node (an unknown name is one line listing the known ones)."""
    from .node_ops import node_op

    return node_op(op).build(c_in, c_out, stride)


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
