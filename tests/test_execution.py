"""The fast execution computes exactly what the plain per-node loop computes, with less memory."""

import copy

import pytest
import torch
import torch.nn.functional as F

from randwire import NODE_OPS, build_network
from randwire.models.execution import FastStagePlan, _simulate_peak, configure_execution


def _pair(regime="small", node_op="sep_conv", graph="ws", **kw):
    params = {"ws": {"k": 4, "p": 0.75}, "ba": {"m": 2}, "er": {"p": 0.3}}[graph]
    n = 12 if regime == "regular" else 10
    ref = build_network(
        regime, graph=graph, n=n, c=8, seed=3, num_classes=7, head_channels=16, node_op=node_op, **params, **kw
    )
    ref.train()
    with torch.no_grad():
        ref(torch.randn(4, 3, 32, 32))  # non-trivial BN running statistics, so BN folding is exercised
    return ref, copy.deepcopy(ref)


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("node_op", NODE_OPS)
@pytest.mark.parametrize("regime", ["small", "regular", "lowres"])
def test_fast_matches_reference_in_fp64(regime, node_op, channels_last):
    _assert_fast_matches_reference(regime, node_op, channels_last, {})


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("switches", [{"schedule": "index"}, {"fused_aggregation": False}])
def test_fast_execution_switches_match_reference_in_fp64(switches, channels_last):
    _assert_fast_matches_reference("small", "sep_conv", channels_last, switches)


def _assert_fast_matches_reference(regime, node_op, channels_last, switches):
    ref, fast = _pair(regime, node_op)
    ref, fast = (
        ref.double(),
        configure_execution(fast.double(), {"mode": "fast", "channels_last": channels_last, **switches}),
    )
    x = torch.randn(3, 3, 32, 32, dtype=torch.float64)
    y = torch.tensor([0, 3, 6])
    ref.eval(), fast.eval()
    with torch.no_grad():
        torch.testing.assert_close(fast(x), ref(x), rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(fast.forward_levels(x)[-1], ref.forward_levels(x)[-1], rtol=1e-10, atol=1e-12)
    ref.train(), fast.train()
    torch.manual_seed(0)  # same dropout mask (regular regime) in both
    F.cross_entropy(ref(x), y).backward()
    torch.manual_seed(0)
    F.cross_entropy(fast(x), y).backward()
    for (name, p), q in zip(ref.named_parameters(), fast.parameters()):
        assert q.grad is not None, name
        # norm-relative: elementwise rtol trips on entries that are ~0 (BN on 2x2 maps cancels to 1e-17)
        assert (q.grad - p.grad).norm() <= 1e-8 * p.grad.norm() + 1e-15, name
    for (name, b), c in zip(ref.named_buffers(), fast.buffers()):  # BN running stats updated identically
        torch.testing.assert_close(c, b, rtol=1e-10, atol=1e-12, msg=name)


def test_fast_with_edge_removal_draws_the_same_edges():
    ref, fast = _pair("regular", edge_drop=0.5)
    configure_execution(fast, {"mode": "fast"})
    x = torch.randn(2, 3, 32, 32)
    ref.train(), fast.train()
    torch.manual_seed(5)
    a = ref(x)
    torch.manual_seed(5)
    b = fast(x)
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_fast_fp32_eval_with_folded_bn_is_close():
    ref, fast = _pair("small")
    configure_execution(fast, {"mode": "fast", "channels_last": True})
    assert all(m.fold_bn for m in fast.modules() if hasattr(m, "fold_bn"))
    ref.eval(), fast.eval()
    x = torch.randn(4, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(fast(x.contiguous(memory_format=torch.channels_last)), ref(x), rtol=1e-4, atol=1e-5)


def test_execution_keeps_state_dict_and_is_switchable():
    ref, fast = _pair("small")
    configure_execution(fast, {"mode": "fast", "channels_last": True})
    assert list(ref.state_dict()) == list(fast.state_dict())
    configure_execution(fast, {"mode": "reference"})
    assert fast.plan is None and all(s.plan is None for s in fast.stages)
    assert not any(m.fold_bn for m in fast.modules() if hasattr(m, "fold_bn"))
    with pytest.raises(ValueError, match=r"execution.mode='turbo' is not allowed: one of \['reference', 'fast'\]"):
        configure_execution(fast, {"mode": "turbo"})
    with pytest.raises(ValueError, match=r"execution.cuda_graphs is not a known key"):
        configure_execution(fast, {"cuda_graphs": True})
    with pytest.raises(ValueError, match=r"execution.schedule='random' is not allowed: one of \['memory', 'index'\]"):
        configure_execution(fast, {"mode": "fast", "schedule": "random"})
    configure_execution(fast, {"mode": "fast", "schedule": "index", "fused_aggregation": False})
    assert all(s.plan.order == list(range(len(s.nodes))) and not s.plan.fused for s in fast.stages)


@pytest.mark.parametrize("graph", ["er", "ba", "ws"])
def test_memory_schedule_is_topological_deterministic_and_no_worse(graph):
    params = {"ws": {"k": 4, "p": 0.75}, "ba": {"m": 5}, "er": {"p": 0.2}}[graph]
    net = build_network("small", graph=graph, n=32, c=8, seed=0, **params)
    for stage in net.stages:
        plan = FastStagePlan(stage)
        assert sorted(plan.order) == list(range(32))
        pos = {v: i for i, v in enumerate(plan.order)}
        assert all(pos[u] < pos[v] for u, v in stage.graph.edges)
        assert FastStagePlan(stage).order == plan.order
        succs, ratio = stage.graph.successors(), 4.0 * stage.c_in / stage.c_out
        assert _simulate_peak(plan.order, stage.preds, succs, ratio) <= _simulate_peak(
            list(range(32)), stage.preds, succs, ratio
        )
        freed = sorted(u for lst in plan.free_after for u in lst)
        assert freed == [u for u in range(32) if succs[u]]  # every non-sink output is freed exactly once


@pytest.mark.parametrize("channels_last", [False, True])
def test_weighted_sum_relu_bf16_weight_gradient_is_accumulated_in_fp32(channels_last):
    # Under CPU bf16 autocast the node inputs are bf16; the edge-weight gradient sums ~10^4 products and
    # must not be rounded to bf16 (8 mantissa bits, ~4e-3 relative) on the way.
    from randwire.models.execution import WeightedSumReLU

    fmt = torch.channels_last if channels_last else torch.contiguous_format
    g = torch.Generator().manual_seed(0)
    xs = [
        torch.randn(4, 6, 9, 9, generator=g).to(torch.bfloat16).contiguous(memory_format=fmt).requires_grad_()
        for _ in range(3)
    ]
    w = torch.tensor([0.3, 0.5, 0.7], requires_grad=True)
    grad_out = torch.randn(4, 6, 9, 9, generator=g).to(torch.bfloat16).contiguous(memory_format=fmt)
    out = WeightedSumReLU.apply(w, *xs)
    assert out.dtype == torch.bfloat16 and out.is_contiguous(memory_format=fmt)
    out.backward(grad_out)
    mask = out.double() > 0
    expected = torch.stack([(grad_out.double() * mask * x.double()).sum() for x in xs])
    assert w.grad.dtype == torch.float32
    assert ((w.grad.double() - expected).abs() / expected.abs()).max() < 1e-4
    for i, x in enumerate(xs):  # input gradients: g * w_i, masked by the ReLU
        torch.testing.assert_close(x.grad.double(), grad_out.double() * mask * w[i].item(), rtol=1e-2, atol=1e-2)


@pytest.mark.slow
def test_compiled_fast_execution_matches_reference():
    # Under torch.compile the aggregation runs as plain ops (the autograd Function would break the graph).
    ref, fast = _pair("small")
    fast = configure_execution(fast, {"mode": "fast", "channels_last": True, "compile": True})
    x = torch.randn(3, 3, 32, 32)
    y = torch.tensor([0, 3, 6])
    ref.eval(), fast.eval()
    with torch.no_grad():
        torch.testing.assert_close(fast(x.contiguous(memory_format=torch.channels_last)), ref(x), rtol=1e-4, atol=1e-5)
    ref.train(), fast.train()
    F.cross_entropy(ref(x), y).backward()
    F.cross_entropy(fast(x.contiguous(memory_format=torch.channels_last)), y).backward()
    ga = torch.cat([p.grad.flatten() for p in ref.parameters()])
    gb = torch.cat([p.grad.flatten() for p in fast.parameters()])
    assert (ga - gb).norm() <= 1e-3 * ga.norm()
