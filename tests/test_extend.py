"""Extending the framework without touching Python: a config directory of YAML files only (issue 8)."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
import yaml
from helpers import ROOT

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
    proc = subprocess.run(
        cmd, cwd=ROOT, capture_output=True, text=True, timeout=300, env={**os.environ, "WANDB_MODE": "offline"}
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["epochs"] == 1 and metrics["global_step"] == 3  # 12 training images, batch 4 (drop_last)
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["optimizer"]["_target_"] == "torch.optim.RMSprop" and saved["data"]["name"] == "pets"
    ckpt = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    assert any(key.startswith("EarlyStopping") for key in ckpt["callbacks"])  # the callback ran
    group = ckpt["optimizer_states"][0]["param_groups"][0]
    assert group["alpha"] == 0.9 and "momentum" in group and "centered" in group  # an RMSprop state
    assert ckpt["randwire"]["run_config"]["data"]["train"]["root"] == f"{pngs}/train"
