"""Multi-scale features from stored graphs (issue 19 part 1): conv2..conv5 of Table 1 for detection necks."""

import pytest
import torch

from randwire import build_network
from randwire.models.execution import configure_execution

FAST = {
    "mode": "fast",
    "channels_last": False,
    "fold_bn": True,
    "schedule": "memory",
    "fused_aggregation": True,
    "compile": False,
}


def _net(regime, execution=None):
    net = build_network(regime, graph="ws", n=10, c=8, seed=3, k=4, p=0.75, num_classes=5, head_channels=16)
    return configure_execution(net.eval(), execution or {"mode": "reference"})


@pytest.mark.parametrize(
    "regime,size,reductions,modules",
    [
        ("small", 64, [4, 8, 16, 32], ["stem.1", "stages.0", "stages.1", "stages.2"]),
        ("regular", 64, [4, 8, 16, 32], ["stages.0", "stages.1", "stages.2", "stages.3"]),
        ("lowres", 32, [1, 2, 4, 8], ["stem.1", "stages.0", "stages.1", "stages.2"]),
    ],
)
def test_levels_have_the_channels_and_reductions_feature_info_says(regime, size, reductions, modules):
    net = _net(regime)
    info = net.feature_info()
    assert [i["reduction"] for i in info] == reductions and [i["module"] for i in info] == modules
    assert [i["num_chs"] for i in info] == ([8, 8, 16, 32] if regime != "regular" else [8, 16, 32, 64])
    levels = net.forward_levels(torch.randn(2, 3, size, size))
    assert [tuple(t.shape) for t in levels] == [
        (2, i["num_chs"], size // i["reduction"], size // i["reduction"]) for i in info
    ]
    assert all(bool((t >= 0).all()) for t in levels)  # after the ReLU every reader applies


@pytest.mark.parametrize("regime", ["small", "regular"])
def test_each_level_is_the_classifiers_own_activation_bit_for_bit(regime):
    """Reference execution: each level is ReLU of the module's output captured by a hook during the
    classifier's forward; fast execution: the classifier's logits are its head on the last level (the same
    steps), and its levels equal the reference ones up to float rounding."""
    x = torch.randn(2, 3, 64, 64)
    ref = _net(regime)
    captured = {}
    for name, module in ref.named_modules():
        if name in {i["module"] for i in ref.feature_info()}:
            module.register_forward_hook(lambda m, args, out, name=name: captured.__setitem__(name, out.detach()))
    with torch.no_grad():
        logits = ref(x)
        levels = ref.forward_levels(x)
    for info, level in zip(ref.feature_info(), levels):
        assert torch.equal(level, torch.relu(captured[info["module"]]))
    assert torch.equal(logits, ref.head(levels[-1], relu_done=True))

    fast = _net(regime, FAST)
    with torch.no_grad():
        fast_levels, fast_logits = fast.forward_levels(x.clone()), fast(x.clone())
    assert torch.equal(fast_logits, fast.head(fast_levels[-1], relu_done=True))
    for a, b in zip(fast_levels, levels):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_feature_info_has_timms_helpers_and_stays_callable():
    net = _net("regular")
    info = net.feature_info
    assert info() is info and info == net.feature_info()  # old callers: net.feature_info()
    assert info.channels() == [8, 16, 32, 64] and info.reduction() == [4, 8, 16, 32]
    assert info.channels(-1) == 64 and info.reduction(0) == 4 and info.module_name(1) == "stages.1"


@pytest.mark.parametrize("execution", [{}, FAST], ids=["reference", "fast"])
def test_forward_features_and_head_split_the_classifier_as_timm_does(execution):
    net = _net("small", execution).eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        features = net.forward_features(x)
        assert tuple(features.shape) == (2, net.head.width, 2, 2)  # the unpooled map the head pools
        torch.testing.assert_close(net.forward_head(features), net(x), rtol=1e-5, atol=1e-6)
        assert tuple(net.forward_head(features, pre_logits=True).shape) == (2, net.head.width)


def test_features_only_returns_the_maps_and_has_the_classifiers_weights():
    from randwire import build_network

    kwargs = dict(graph="ws", n=8, c=8, seed=3, k=4, p=0.75, num_classes=5, head_channels=16)
    features, classifier = build_network("small", features_only=True, **kwargs), build_network("small", **kwargs)
    assert features.head is None and not any(k.startswith("head.") for k in features.state_dict())
    state = classifier.state_dict()
    assert all(torch.equal(v, state[k]) for k, v in features.state_dict().items())  # same seed, same weights
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        maps = features(x)
        assert isinstance(maps, list) and [m.shape[1] for m in maps] == features.feature_info.channels()
        assert all(torch.equal(a, b) for a, b in zip(maps, classifier.forward_levels(x)))
        assert torch.equal(features.forward_features(x), maps[-1])
