"""What the tests share: paths, the tiny config, and training a tiny run. Fixtures live in conftest.py."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONF = str(ROOT / "conf")

# The tiny network on synthetic images, for commands that set the rest themselves.
TINY_NET = ["graph.n=8", "regime.c=8", "regime.head_channels=32", "data=synthetic"]
# Tiny but complete: every random stage, every code path, seconds per fit.
TINY = [
    *TINY_NET,
    "data.num_samples=64",
    "data.batch_size=16",
    "logger=none",
    "callbacks=none",
    "trainer.max_epochs=1",
    "extras.print_config=false",
    "extras.draw_graphs=false",  # a third of a tiny run's time; drawn and checked where a test reads them
]
# TINY with the checkpoint callbacks on (no progress bar or model summary: tests read the console).
TINY_WITH_CHECKPOINTS = [*TINY, "callbacks=default", "~callbacks.progress_bar", "~callbacks.model_summary"]


def train_tiny(run_dir: Path, *overrides: str) -> dict:
    """Train TINY (plus ``overrides``) in-process into ``run_dir``; the run's metrics."""
    from randwire.training.config import compose_config
    from randwire.training.run import train

    return train(compose_config("train", [*TINY, *overrides, f"paths.output_dir={run_dir}"]))


def model_yaml() -> dict:
    """train.yaml's ``model`` node: the classifier module's settings, as the framework passes them."""
    import yaml

    return yaml.safe_load((ROOT / "conf" / "train.yaml").read_text())["model"]


def detection_yaml() -> dict:
    """conf/task/detection.yaml's ``detection`` node, less what the module does not take."""
    import yaml

    node = yaml.safe_load((ROOT / "conf" / "task" / "detection.yaml").read_text())["detection"]
    return {k: v for k, v in node.items() if k != "steps_reference_batch"}


def run_script(cmd: list, *, cwd=ROOT, timeout: int = 600, env: dict | None = None, expect: int | None = 0):
    """Run a command the way a user does (train.py, evaluate.py, python -m randwire.analysis ...): a fresh
    process, output captured, in this environment with W&B offline (``env``: exactly that environment);
    with ``expect``, its exit code asserted (stderr's tail shown). The one way the tests start a command."""
    import os
    import subprocess
    import sys

    if cmd and str(cmd[0]).endswith(".py"):
        cmd = [sys.executable, *cmd]
    proc = subprocess.run(
        [str(c) for c in cmd],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "WANDB_MODE": "offline"} if env is None else env,
    )
    if expect is not None:
        assert proc.returncode == expect, proc.stderr[-3000:]
    return proc
