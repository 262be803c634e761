import os
from pathlib import Path

import pytest

os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")

from helpers import train_tiny


@pytest.fixture
def compose_cfg(tmp_path):
    """Compose ``conf/train.yaml`` in-process (no subprocess, no sys.argv) with a temporary run_dir."""
    from randwire.training.config import compose_config

    def _compose(*overrides: str, config: str = "train", run_dir: Path | None = None):
        extra = [f"paths.output_dir={run_dir or tmp_path / 'run'}"] if config == "train" else []
        return compose_config(config, [*overrides, *extra])

    return _compose


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """One tiny network trained a few epochs on synthetic images (it learns them), with its checkpoints, shared
    by every test that only reads a trained run: (run folder, metrics). Tests must not change its files."""
    run = tmp_path_factory.mktemp("tiny_run") / "run"
    learns = ["trainer.max_epochs=4", "data.num_samples=320", "optimizer.lr=1.6"]
    metrics = train_tiny(run, "callbacks=default", "~callbacks.progress_bar", "~callbacks.model_summary", *learns)
    return run, metrics
