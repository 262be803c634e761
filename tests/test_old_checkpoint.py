"""A checkpoint written before the code moved (tests/data/pre_redesign) still loads, evaluates and resumes
(in this process: what evaluate.py and train.py run; their command lines are tested elsewhere)."""

import json
import shutil

import torch
from helpers import ROOT

OLD = ROOT / "tests" / "data" / "pre_redesign" / "last.ckpt"
# The command that wrote it (tests/data/pre_redesign/README.md), less its run folder.
OVERRIDES = [
    "graph.n=6",
    "regime.c=4",
    "regime.head_channels=16",
    "data=synthetic",
    "data.num_samples=64",
    "data.batch_size=16",
    "logger=none",
    "callbacks=last_checkpoint",
    "extras.print_config=false",
    "seed=3",
]
HASHES = [
    "8c985337c59e43bdb3b7652bab52c6b9e85cc947e673831f157569128cd87c30",
    "c4526c0a17abb8b9b4d830eca78511a1e03ae1e2a74430c921a0b964333b9da7",
    "c2836eaebc4bcde1581ac71617e1174699db41c987e8bf99a378775b90e01e48",
]


def test_old_checkpoint_evaluates_as_it_did(tmp_path, compose_cfg):
    from randwire.training.evaluate import evaluate

    out = tmp_path / "eval.json"
    evaluate(compose_cfg(f"ckpt={OLD}", f"out={out}", config="evaluate"))
    result = json.loads(out.read_text())
    assert result["graph_hashes"] == HASHES
    assert (result["samples"], result["acc1"], result["acc5"]) == (16, 0.0625, 0.5625)
    assert abs(result["loss"] - 2.3028199672698975) < 1e-5


def test_old_checkpoint_resumes(tmp_path, compose_cfg):
    from randwire.training.run import train

    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    shutil.copy(OLD, run / "checkpoints" / "last.ckpt")
    train(compose_cfg(*OVERRIDES, "trainer.max_epochs=2", run_dir=run))
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["status"] == "ok" and metrics["graph_hashes"] == HASHES
    resumed = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    assert (resumed["epoch"], resumed["global_step"]) == (1, 8)  # one more epoch of 4 steps after the stored 4


def test_a_run_finished_before_max_steps_was_in_the_config_is_still_finished(tmp_path, compose_cfg):
    """trainer.max_steps joined the default trainer config (issue 26): a sweep rerun into a folder of before
    must not train its finished jobs again."""
    import json

    import yaml
    from omegaconf import OmegaConf

    from randwire.training.checkpoints import finished_metrics

    config = OmegaConf.to_container(compose_cfg(), resolve=True)
    old = {**config, "trainer": {k: v for k, v in config["trainer"].items() if k != "max_steps"}}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(old))
    (tmp_path / "metrics.json").write_text(json.dumps({"status": "ok", "test/acc1": 0.5}))
    assert finished_metrics(tmp_path, config) == {"status": "ok", "test/acc1": 0.5}
    longer = {**config, "trainer": {**config["trainer"], "max_steps": 100}}
    assert finished_metrics(tmp_path, longer) is None  # a longer run is not the finished one
