"""Analytic complexity in the pycls style: each module reports what it adds to a running count.

FLOPs are multiply-adds, as the paper counts them (§4, Tables 2-3): a k×k conv adds
k·k·(C_in/groups)·C_out·H_out·W_out, an fc adds in·out; BN, ReLU, pooling, edge aggregation and the
output-node mean add none. ``torch.utils.flop_counter`` counts the same operations at 2 FLOPs per
multiply-add, which the tests use as the independent second count.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Cx:
    """Running complexity: spatial size of the current feature map, multiply-adds, params, activations."""

    h: int
    w: int
    flops: int = 0
    params: int = 0
    acts: int = 0


def conv2d_cx(cx: Cx, c_in: int, c_out: int, k: int, stride: int = 1, groups: int = 1, bias: bool = False) -> Cx:
    """A k×k conv with padding k//2 (every conv of RandWire)."""
    h = (cx.h + 2 * (k // 2) - k) // stride + 1
    w = (cx.w + 2 * (k // 2) - k) // stride + 1
    weights = k * k * (c_in // groups) * c_out
    cx.flops += weights * h * w
    cx.params += weights + (c_out if bias else 0)
    cx.acts += c_out * h * w
    cx.h, cx.w = h, w
    return cx


def pool2d_cx(cx: Cx, c: int, k: int, stride: int) -> Cx:
    cx.h = (cx.h + 2 * (k // 2) - k) // stride + 1
    cx.w = (cx.w + 2 * (k // 2) - k) // stride + 1
    cx.acts += c * cx.h * cx.w
    return cx


def norm2d_cx(cx: Cx, c: int) -> Cx:
    cx.params += 2 * c
    return cx


def linear_cx(cx: Cx, c_in: int, c_out: int) -> Cx:
    cx.flops += c_in * c_out
    cx.params += c_in * c_out + c_out
    cx.acts += c_out
    return cx


def gap_cx(cx: Cx) -> Cx:
    cx.h, cx.w = 1, 1
    return cx


def complexity(model, input_size: int | tuple[int, int] = 224) -> dict[str, int]:
    """Params and multiply-add FLOPs of a built network at an input size (no forward pass needed)."""
    h, w = (input_size, input_size) if isinstance(input_size, int) else input_size
    cx = model.complexity(Cx(h=int(h), w=int(w)))
    return {"flops": cx.flops, "params": cx.params, "acts": cx.acts}
