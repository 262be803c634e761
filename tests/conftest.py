import os
from pathlib import Path

import pytest

os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")

ROOT = Path(__file__).resolve().parents[1]
CONF = str(ROOT / "conf")

# Tiny but complete: every random stage, every code path, seconds per fit.
TINY = [
    "graph.n=8",
    "regime.c=8",
    "regime.head_channels=32",
    "data=synthetic",
    "data.num_samples=64",
    "data.batch_size=16",
    "logger=none",
    "callbacks=none",
    "trainer.max_epochs=1",
    "extras.print_config=false",
]


@pytest.fixture
def compose_cfg(tmp_path):
    """Compose ``conf/train.yaml`` in-process (no subprocess, no sys.argv) with a temporary run_dir."""
    from randwire.training.config import compose_config

    def _compose(*overrides: str, config: str = "train", run_dir: Path | None = None):
        extra = [f"paths.output_dir={run_dir or tmp_path / 'run'}"] if config == "train" else []
        return compose_config(config, [*overrides, *extra])

    return _compose
