"""Extending the framework without touching Python: a config directory of YAML files only (issue 8)."""

import json
import sys

import numpy as np
import pytest
import torch
import yaml
from helpers import ROOT, run_script

RMSPROP = {"_target_": "torch.optim.RMSprop", "_partial_": True, "lr": 0.01, "alpha": 0.9}
EARLY_STOP = {
    "early_stopping": {"_target_": "pytorch_lightning.callbacks.EarlyStopping", "monitor": "val/loss", "patience": 1}
}


def _png_folders(root):
    from PIL import Image

    for split in ("train", "val"):
        for k, cls in enumerate(("cats", "dogs")):
            (root / split / cls).mkdir(parents=True)
            for i in range(6):
                Image.fromarray(np.full((20, 24, 3), 20 * i + 120 * k, np.uint8)).save(root / split / cls / f"{i}.png")


@pytest.mark.slow
def test_optimizer_dataset_and_callback_added_by_yaml_only(tmp_path):
    pngs, conf, run = tmp_path / "pngs", tmp_path / "my_conf", tmp_path / "run"
    _png_folders(pngs)
    folder_data = {
        "_target_": "randwire.training.data.ImageDataModule",
        "name": "pets",
        "root": str(pngs),
        "required": ["train", "val"],
        "batch_size": 4,
        "num_workers": 0,
        "image_size": 16,
        "num_classes": 2,
        "in_channels": 3,
        "augment": "crop_flip",
        "train": {"_target_": "torchvision.datasets.ImageFolder", "_partial_": True, "root": "${..root}/train"},
        "val": {"_target_": "torchvision.datasets.ImageFolder", "_partial_": True, "root": "${..root}/val"},
        "test": None,
    }
    for group, name, content in (
        ("optimizer", "rmsprop", RMSPROP),
        ("data", "pets", folder_data),
        ("callbacks", "early_stop", EARLY_STOP),
    ):
        (conf / group).mkdir(parents=True)
        (conf / group / f"{name}.yaml").write_text(yaml.safe_dump(content))
    cmd = [
        sys.executable,
        "train.py",
        "--config-dir",
        str(conf),
        "optimizer=rmsprop",
        "data=pets",
        "callbacks=[default,early_stop]",
        "graph.n=8",
        "regime.c=8",
        "regime.head_channels=32",
        "trainer.max_epochs=1",
        "logger=csv",
        f"hydra.run.dir={run}",
    ]
    run_script(cmd, timeout=300, expect=0)
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["epochs"] == 1 and metrics["global_step"] == 3  # 12 training images, batch 4 (drop_last)
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["optimizer"]["_target_"] == "torch.optim.RMSprop" and saved["data"]["name"] == "pets"
    ckpt = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    assert any(key.startswith("EarlyStopping") for key in ckpt["callbacks"])  # the callback ran
    group = ckpt["optimizer_states"][0]["param_groups"][0]
    assert group["alpha"] == 0.9 and "momentum" in group and "centered" in group  # an RMSprop state
    assert ckpt["randwire"]["run_config"]["data"]["train"]["root"] == f"{pngs}/train"


def _newcomer_folder(tmp_path):
    """What a newcomer writes, outside the package: examples/myextension.py (one registry entry each for a
    generator and a node op) and one YAML file each, copied into their own folder."""
    import shutil

    shutil.copy(ROOT / "examples" / "myextension.py", tmp_path / "myextension.py")
    shutil.copytree(ROOT / "examples" / "conf", tmp_path / "conf")
    return tmp_path


def test_an_op_of_ones_own_counts_its_flops_and_params_as_torch_does(tmp_path, monkeypatch):
    """The registered complexity function is what regime.c=auto solves with: it must count what runs."""
    from torch.utils.flop_counter import FlopCounterMode

    import randwire.models.generators as generators
    import randwire.models.node_ops as node_ops
    from randwire import build_network, complexity

    # registered for this test only: the other tests see the built-in names alone
    monkeypatch.setattr(generators, "REGISTRY", generators.REGISTRY.copy())
    monkeypatch.setattr(node_ops, "REGISTRY", node_ops.REGISTRY.copy())
    monkeypatch.delitem(sys.modules, "myextension", raising=False)
    monkeypatch.syspath_prepend(str(_newcomer_folder(tmp_path)))
    import myextension  # noqa: F401  (registers mygen and dil_conv)

    net = build_network("small", graph="mygen", n=8, c=8, seed=0, q=0.3, node_op="dil_conv", num_classes=10).eval()
    assert {g.generator for g in net.graphs} == {"mygen"} and net.graphs[0].params == {"q": 0.3}
    assert type(net.stages[0].nodes[0].transform).__name__ == "DilConv"
    cx = complexity(net, 32)
    assert cx["params"] == sum(p.numel() for p in net.parameters())
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        net(torch.randn(1, 3, 32, 32))
    assert cx["flops"] == counter.get_total_flops() // 2


def test_an_unknown_node_op_is_one_line_naming_the_registered_ones():
    from randwire import build_network
    from randwire.models.errors import BadValue

    with pytest.raises(BadValue, match=r"node_op='dil_con' .*'sep_conv', 'conv', 'max_pool', 'avg_pool'"):
        build_network("small", graph="er", n=8, c=8, seed=0, p=0.3, node_op="dil_con")


@pytest.mark.slow
def test_a_generator_and_a_node_op_of_ones_own_train_in_a_sweep_and_are_named_in_the_analyses(tmp_path):
    """The README's "Add a generator or a node op": one registry entry and one YAML file each, from outside
    the package; a sweep trains with regime.c=auto at the budget, the analyses name both, evaluate rebuilds."""
    folder = _newcomer_folder(tmp_path)
    sweep = tmp_path / "sweep"
    tiny = ["experiment=cpu_budget", "graph.n=8", "trainer.max_epochs=1"]
    limits = ["+trainer.limit_train_batches=2", "+trainer.limit_val_batches=1", "+trainer.limit_test_batches=1"]
    cmd = [sys.executable, str(ROOT / "train.py"), "--config-dir", "conf", "graph=mygen", "node_op=dil_conv"]
    budget = ["regime.c=auto", "regime.flops=2e6", "logger=none", "extras.print_config=false"]
    run_script(
        [*cmd, *tiny, *limits, *budget, f"hydra.sweep.dir={sweep}", "-m", "seed=0,1"], cwd=folder, timeout=300, expect=0
    )
    runs = sorted(p.parent for p in sweep.glob("*/metrics.json"))
    metrics = [json.loads((run / "metrics.json").read_text()) for run in runs]
    assert [m["status"] for m in metrics] == ["ok", "ok"] and {m["node_op"] for m in metrics} == {"dil_conv"}
    assert all(abs(m["flops"] / 2e6 - 1) < 0.01 for m in metrics), [m["flops"] for m in metrics]  # c=auto met it
    from randwire.analysis.cli import main as analysis

    for command in ("grid", "nodeops"):  # in this process, where myextension was never imported
        assert analysis([command, str(sweep)]) == 0
    grid = (sweep / "analysis" / "grid.csv").read_text()
    assert "mygen(q=0.3)" in grid and "dil_conv" in (sweep / "analysis" / "nodeops.csv").read_text()
    # evaluate.py imports the op's module the run's config names
    run_script(
        [sys.executable, str(ROOT / "evaluate.py"), f"ckpt={runs[0] / 'checkpoints' / 'last.ckpt'}"],
        cwd=folder,
        timeout=300,
        expect=0,
    )


def test_a_built_in_name_cannot_be_taken_and_a_record_is_required():
    from randwire import Generator, NodeOp, register_generator, register_node_op
    from randwire.models.errors import ConfigError

    with pytest.raises(ConfigError, match=r"^graph='er' is built in: give yours another name$"):
        register_generator(Generator("er", "ER", ("p",), lambda n, params: params))
    with pytest.raises(ConfigError, match=r"^node_op='conv' is built in: give yours another name$"):
        register_node_op(NodeOp("conv", "x.Y", lambda cx, c_in, c_out, stride: cx))
    with pytest.raises(ConfigError, match=r"^node_op: register takes a NodeOp record, not a dict$"):
        register_node_op({"name": "dil_conv"})
