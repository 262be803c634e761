"""A generator and a node op of your own: one registry entry each, registered when this module is imported.
Each has one YAML file (examples/conf/graph/mygen.yaml, examples/conf/node_op/dil_conv.yaml) that names this
module as ``_module_``; train with ``python train.py --config-dir examples/conf graph=mygen node_op=dil_conv``
from the folder this file is in (or anywhere, with it on PYTHONPATH)."""

from torch import nn

from randwire import Generator, NodeOp, register_generator, register_node_op, stage_rng
from randwire.models.complexity import conv2d_cx
from randwire.models.errors import require
from randwire.models.layers import NodeTransform


def check_mygen(n, params):
    """Each parameter checked: one line naming the bad value and what is allowed."""
    q = params["q"]
    require(isinstance(q, (int, float)) and 0 <= q <= 1, "q", q, "a probability in [0, 1]")
    return {"q": float(q)}


def sample_mygen(n, params, seed):
    """A path 0-1-...-(n-1) plus each longer chord with probability q; edges (u, v) on the nodes 0..n-1.
    Only .random() draws from stage_rng(seed): the same graph on every machine for the same seed."""
    rng = stage_rng(seed)
    chords = [(u, v) for u in range(n) for v in range(u + 2, n) if rng.random() < params["q"]]
    return [(v, v + 1) for v in range(n - 1)] + chords


register_generator(Generator("mygen", "MyGen", ("q",), check_mygen, sample_mygen, axes=("q",)))


class DilConv(NodeTransform):
    """ReLU → 3×3 depthwise conv, dilation 2 → 1×1 conv → BN (the BN and ReLU come from NodeTransform)."""

    op = "dil_conv"

    def __init__(self, c_in, c_out, stride):
        super().__init__(c_in, c_out, stride)
        self.conv_dw = nn.Conv2d(c_in, c_in, 3, stride, padding=2, dilation=2, groups=c_in, bias=False)
        self.conv_pw = nn.Conv2d(c_in, c_out, 1, bias=False)
        self.bn = nn.BatchNorm2d(c_out)

    def body(self, x):
        return self.conv_dw(x), self.conv_pw  # what feeds the last conv, and that conv (BN folds into it)


def dil_conv_cx(cx, c_in, c_out, stride):
    """Multiply-adds and params before the BN; a dilated 3×3 costs what a 3×3 does, at the same output size."""
    return conv2d_cx(conv2d_cx(cx, c_in, c_in, 3, stride, groups=c_in), c_in, c_out, 1)


register_node_op(NodeOp("dil_conv", DilConv, dil_conv_cx))
