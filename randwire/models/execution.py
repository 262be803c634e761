"""How a network is executed. Same parameters, same ``state_dict``, same outputs (fp32 tolerance).

``reference``: the plain per-node loop of every public implementation (``RandomStage.forward_reference``):
every node output stays alive until the stage ends, aggregation is ``sum(w_i * x_i)``.

``fast`` (:class:`FastStagePlan`), each piece measured by ``benchmarks/bench_execution.py``:
- a node's output is freed right after its last consumer; output-node inputs are summed as they appear;
  nodes run in the order with the fewest live outputs (``schedule: memory``; ``index``: node order);
- aggregation + ReLU as one autograd function (:class:`WeightedSumReLU`, ``fused_aggregation``):
  ``addcmul_`` into the node's own buffer, in-place ReLU, and a backward that reduces the weight gradient
  as a dot product; one ReLU of the stage input shared by all input-fed nodes;
- BatchNorm folded into the preceding conv in eval mode (``fold_bn``), stem and head included;
- ``channels_last`` memory format (mkldnn / cuDNN NHWC kernels; depthwise convs gain the most);
- optional ``torch.compile`` (``compile: true``; ``compile_mode: reduce-overhead`` adds CUDA graphs).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch

from .architecture import Execution
from .errors import BadValue, ConfigError, is_int, require, require_choice
from .layers import conv_bn
from .network import RandomStage, RandWireNet

EXECUTION_KEYS = {f.name for f in dataclasses.fields(Execution)}
SCHEDULES = ("memory", "index")
COMPILE_MODES = (None, "default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


def validate_execution_cfg(cfg: dict[str, Any]) -> None:
    """One line per bad key or value of the ``execution`` group (:class:`BadValue` keyed ``execution.*``),
    before anything is built. The config schema types the values; this checks what the code accepts."""
    unknown = set(cfg) - EXECUTION_KEYS
    if unknown:
        raise ConfigError(f"execution.{sorted(unknown)[0]} is not a known key: allowed {sorted(EXECUTION_KEYS)}")
    require_choice("execution.mode", cfg.get("mode", "reference"), ("reference", "fast"))
    require_choice("execution.schedule", cfg.get("schedule") or "memory", SCHEDULES)
    require_choice("execution.compile_mode", cfg.get("compile_mode"), COMPILE_MODES)
    threads = cfg.get("threads")
    require(
        threads is None or (is_int(threads) and threads >= 1),
        "execution.threads",
        threads,
        "an integer >= 1, or null (from the job's CPU share)",
    )
    for key in ("channels_last", "fold_bn", "fused_aggregation", "compile"):
        if cfg.get(key) is not None and not isinstance(cfg[key], bool):
            raise BadValue(f"execution.{key}", cfg[key], "true or false", verdict="is not allowed:")


def memory_format_of(t: torch.Tensor) -> torch.memory_format:
    """channels_last for an NHWC-laid 4-D tensor (that is not also NCHW-contiguous), else contiguous."""
    nhwc = t.dim() == 4 and not t.is_contiguous() and t.is_contiguous(memory_format=torch.channels_last)
    return torch.channels_last if nhwc else torch.contiguous_format


def _flat(t: torch.Tensor) -> torch.Tensor:
    """A 1-D view in memory order (NCHW- or channels_last-contiguous), for dot products without copies."""
    if t.is_contiguous():
        return t.view(-1)
    if t.dim() == 4 and t.is_contiguous(memory_format=torch.channels_last):
        return t.permute(0, 2, 3, 1).reshape(-1)
    return t.reshape(-1)


class WeightedSumReLU(torch.autograd.Function):
    """relu(sum_i w_i * x_i) in one buffer, with a hand-written backward.

    Autograd's own graph for this (mul, add, relu) costs 2.5x more in backward on CPU: it materialises
    g * x_i before reducing it and runs the ReLU mask as its own pass. Here the weight gradient is a dot
    product in memory order and the mask is applied once.
    """

    @staticmethod
    def forward(ctx, w: torch.Tensor, *xs: torch.Tensor) -> torch.Tensor:
        out = xs[0] * w[0]
        for i in range(1, len(xs)):
            out.addcmul_(xs[i], w[i])
        out.relu_()
        ctx.save_for_backward(w, out, *xs)
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        w, out, *xs = ctx.saved_tensors
        fmt = memory_format_of(out)
        # ReLU's own backward kernel: one pass (torch.where(out > 0, grad, 0) is ~14x slower on CPU NHWC).
        g = torch.ops.aten.threshold_backward(grad, out, 0).contiguous(memory_format=fmt)
        gf = _flat(g)
        # CPU bf16/fp16 dot products run a slow scalar loop (8x slower than upcasting) and accumulate in
        # low precision; the weight gradient is a reduction over millions of terms, so it is taken in fp32.
        up = gf.device.type == "cpu" and gf.dtype in (torch.bfloat16, torch.float16)
        gf = gf.float() if up else gf
        grad_w = torch.stack([torch.dot(gf, _flat(x.contiguous(memory_format=fmt)).to(gf.dtype)) for x in xs]).to(
            w.dtype
        )
        return (grad_w, *(g * w[i] for i in range(len(xs))))


def _simulate_peak(order: list[int], preds: list[list[int]], succs: list[list[int]], input_units: float) -> float:
    """Peak live memory (in node-output units) of executing a stage in ``order``, outputs freed after
    their last consumer, the stage input freed after the last input-fed node."""
    pos = {v: i for i, v in enumerate(order)}
    last_input = max((pos[v] for v in order if not preds[v]), default=-1)
    release = [[] for _ in order]
    for u in order:
        if succs[u]:
            release[max(pos[s] for s in succs[u])].append(u)
    live = input_units
    peak = live
    for i, v in enumerate(order):
        live += 1  # v's output (output-node inputs: the running sum, about one unit)
        peak = max(peak, live)
        if not succs[v]:
            live -= 1
        live -= len(release[i])
        if i == last_input:
            live -= input_units
    return peak


def memory_schedule(stage: RandomStage, tries: int = 64) -> list[int]:
    """A topological order of the stage's nodes with a low peak of live outputs.

    Index order is topological but keeps far-reaching edges' sources alive for long (a WS(4, 0.75) stage
    holds ~20 of 32 outputs at once). Candidates: index order, a greedy order (run the ready node that frees
    the most, lowest index on ties) and ``tries`` seeded random topological orders; the lowest simulated peak
    wins. Deterministic: the same graph always gets the same schedule.
    """
    import random

    preds, succs = stage.preds, stage.graph.successors()
    n = len(preds)
    ratio = 4.0 * stage.c_in / stage.c_out  # stage input size in node-output units (stride 2: 4x pixels)

    def greedy(rng: random.Random | None) -> list[int]:
        remaining_uses = [len(s) for s in succs]
        indeg = [len(p) for p in preds]
        ready = [v for v in range(n) if indeg[v] == 0]
        order: list[int] = []
        while ready:
            if rng is None:

                def gain(v: int) -> tuple:
                    freed = sum(1 for u in preds[v] if remaining_uses[u] == 1)
                    return (freed - (1 if succs[v] else 0), -v)

                v = max(ready, key=gain)
            else:
                v = ready[rng.randrange(len(ready))]
            ready.remove(v)
            order.append(v)
            for u in preds[v]:
                remaining_uses[u] -= 1
            for s in succs[v]:
                indeg[s] -= 1
                if indeg[s] == 0:
                    ready.append(s)
        return order

    candidates = [list(range(n)), greedy(None)]
    rng = random.Random(0)
    candidates += [greedy(rng) for _ in range(tries)]
    return min(candidates, key=lambda o: _simulate_peak(o, preds, succs, ratio))


class FastStagePlan:
    """Precomputed schedule of one stage: execution order and when each output can be freed.

    ``schedule``: ``memory`` (:func:`memory_schedule`) or ``index`` (node order; outputs are still freed after
    their last consumer). ``fused``: aggregation + ReLU as :class:`WeightedSumReLU`, else as plain ops.
    """

    def __init__(self, stage: RandomStage, schedule: str = "memory", fused: bool = True) -> None:
        succs = stage.graph.successors()
        self.order = memory_schedule(stage) if schedule == "memory" else list(range(len(succs)))
        self.fused = fused
        pos = {v: i for i, v in enumerate(self.order)}
        self.is_output = [not s for s in succs]
        # free_after[v]: outputs whose last consumer (in schedule order) is node v
        self.free_after: list[list[int]] = [[] for _ in succs]
        for u, s in enumerate(succs):
            if s:
                self.free_after[max(s, key=pos.__getitem__)].append(u)
        inputs = [v for v in self.order if not stage.preds[v]]
        self.last_input = inputs[-1]
        self.scale = 1.0 / len(stage.outputs)

    def __call__(self, stage: RandomStage, x: torch.Tensor) -> torch.Tensor:
        """Same semantics as ``RandomStage.forward_reference`` (input and output without ReLU)."""
        holder = [torch.relu(x)]
        return self.run(stage, holder, relu_out=False)

    def run(self, stage: RandomStage, holder: list[torch.Tensor], relu_out: bool) -> torch.Tensor:
        """Execute with the ReLU'd stage input handed over in ``holder`` (dropped after the last input-fed
        node, so it can be freed); ``relu_out`` applies the next consumer's ReLU in place."""
        weights = stage.edge_weights()
        x_relu = holder.pop()
        live: dict[int, torch.Tensor] = {}
        acc: torch.Tensor | None = None
        for v in self.order:
            preds = stage.preds[v]
            if not preds:
                a = x_relu
            elif len(preds) == 1:
                a = torch.relu(live[preds[0]])
            elif not self.fused or torch.compiler.is_compiling():
                # Plain ops: when switched off, and under torch.compile, where they fuse into one kernel and
                # the custom Function would break the graph.
                w = weights[v]
                a = live[preds[0]] * w[0]
                for i in range(1, len(preds)):
                    a = a + live[preds[i]] * w[i]
                a = torch.relu(a)
            else:
                a = WeightedSumReLU.apply(weights[v], *(live[u] for u in preds))
            y = stage.nodes[v].transform(a, relu_done=True)
            del a
            if v == self.last_input:
                del x_relu
            if self.is_output[v]:
                acc = y if acc is None else acc + y
            else:
                live[v] = y
            for u in self.free_after[v]:
                del live[u]
        assert acc is not None
        out = acc.mul_(self.scale) if self.scale != 1.0 else acc
        return out.relu_() if relu_out else out


class FastNetPlan:
    """Whole-network fast forward: every consumer of a stage output starts with ReLU, so the ReLU is applied
    once, in place, where the tensor is produced; stage inputs are handed over so they can be freed."""

    def __call__(self, net: RandWireNet, x: torch.Tensor) -> torch.Tensor:
        return net.head(self._run(net, x, keep=False)[-1], relu_done=True)

    def levels(self, net: RandWireNet, x: torch.Tensor) -> list[torch.Tensor]:
        """conv2..conv5 (RandWireNet.feature_info), post-ReLU, by the very steps of the classifier's forward."""
        return self._run(net, x, keep=True)

    def last_level(self, net: RandWireNet, x: torch.Tensor) -> torch.Tensor:
        """conv5 alone, post-ReLU (the others freed as the forward goes)."""
        return self._run(net, x, keep=False)[-1]

    def _run(self, net: RandWireNet, x: torch.Tensor, keep: bool) -> list[torch.Tensor]:
        """Stem and stages; every level's output kept (``keep``) or only the last (so the others can be freed)."""
        for i, m in enumerate(net.stem):
            if m.relu:  # in place, except on the caller's image (stem[0] has no ReLU, but never assume it)
                x = x.relu_() if i > 0 else torch.relu(x)
            x = conv_bn(x, m.conv, m.bn, m.fold_bn)
        x = x.relu_()
        levels = [x] if keep and net.spec.regime != "regular" else []
        for stage in net.stages:
            holder = [x]
            del x
            x = stage.plan.run(stage, holder, relu_out=True)  # reads its input, never writes it
            if keep:
                levels.append(x)
        return levels if keep else [x]


def configure_execution(net: RandWireNet, cfg: dict[str, Any]) -> RandWireNet:
    """Apply the ``execution`` config group to a network in place and return it.

    Keys: ``mode`` (reference | fast), ``channels_last``, ``fold_bn`` (default: on in fast mode),
    ``schedule`` (memory | index) and ``fused_aggregation`` (fast mode only), ``compile`` and
    ``compile_mode`` (torch.compile of the whole network, ``nn.Module.compile`` keeps the state_dict keys).
    """
    validate_execution_cfg(cfg)
    mode, schedule = cfg.get("mode", "reference"), cfg.get("schedule") or "memory"
    fast = mode == "fast"
    fold = bool(cfg.get("fold_bn", fast))
    fused = bool(cfg.get("fused_aggregation", True))
    for stage in net.stages:
        stage.plan = FastStagePlan(stage, schedule, fused) if fast else None
    net.plan = FastNetPlan() if fast else None
    for m in net.modules():
        if hasattr(m, "fold_bn"):
            m.fold_bn = fold
    if cfg.get("channels_last"):
        net = net.to(memory_format=torch.channels_last)
    if cfg.get("compile"):
        net.compile(mode=cfg.get("compile_mode") or None)
    return net
