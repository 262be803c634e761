"""Issue 28: a default is written once. The framework's live only in conf/ (no fallback in training/); the
model library keeps its Python API's defaults, and the YAML names the same values (checked here)."""

import dataclasses
import inspect

import pytest
import yaml
from helpers import ROOT

from randwire.models.architecture import NetworkSpec
from randwire.models.detection import detection_backbone, randwire_faster_rcnn
from randwire.models.generators import find_generator
from randwire.training import schema

CONF = ROOT / "conf"


def _yaml(path: str) -> dict:
    return yaml.safe_load((CONF / path).read_text())


def _defaults(fn) -> dict:
    return {k: p.default for k, p in inspect.signature(fn).parameters.items() if p.default is not p.empty}


@pytest.mark.parametrize("regime", ["small", "lowres", "regular"])
def test_the_regime_yaml_names_build_networks_defaults(regime):
    from randwire import build_network

    net = build_network(regime, graph="er", n=8, c=8, seed=0, p=0.3)
    node = _yaml(f"regime/{regime}.yaml")
    for key in ("dropout", "edge_drop", "head_channels", "edge_drop_mode"):
        assert node[key] == getattr(net.spec, key), (regime, key)
    groups = {k: v for d in _yaml("train.yaml")["defaults"] if isinstance(d, dict) for k, v in d.items()}
    assert groups["node_op"] == NetworkSpec("small", 8).node_op == net.spec.node_op


@pytest.mark.parametrize("name", ["er", "ba", "ws", "ws_flex", "networkx"])
def test_the_graph_yaml_names_each_generators_connected_default(name):
    assert _yaml(f"graph/{name}.yaml")["connected"] is find_generator(name).connected


def test_the_detection_yaml_names_the_backbones_and_detectors_defaults():
    node = _yaml("task/detection.yaml")["detection"]
    detector = _defaults(randwire_faster_rcnn)
    for key in ("min_size", "max_size", "trainable_bn", "freeze_at", "fpn_channels", "box_head_dim"):
        assert node[key] == detector[key], key
    backbone = _defaults(detection_backbone)
    assert (node["trainable_bn"], node["freeze_at"]) == (backbone["trainable_bn"], backbone["freeze_at"])
    # reading (README, "Detection"): the framework turns edge removal off while fine-tuning; the library's
    # detection_backbone keeps the network's own unless told (None), so that one differs on purpose
    assert node["backbone_edge_drop"] == 0.0 and backbone["edge_drop"] is None


def test_the_frameworks_modules_and_schemas_carry_no_default_of_their_own():
    """The LightningModules take conf/'s values (keyword-only, required); a schema field is MISSING, or None
    where the YAML may leave it out (an optional value), never a value."""
    from randwire.training.detection.module import DetectionModule
    from randwire.training.module import RandWireModule

    for module in (RandWireModule, DetectionModule):
        given = set(_defaults(module.__init__))
        assert given <= {"scheduler", "execution", "run_config"}, (module.__name__, given)
    for (group, name), cls in schema.SCHEMAS.items():
        for field in dataclasses.fields(cls):
            if field.name == "name" or field.default_factory is not dataclasses.MISSING:
                continue
            assert field.default in ("???", None), f"{group}/{name}.{field.name} = {field.default!r}"
