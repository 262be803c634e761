"""Multirun summaries: mean ± std per setting, failed seeds listed and never averaged."""

import csv
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import ROOT
from randwire.summary import collect, main, summarize


def _job(sweep: Path, num: int, overrides: list[str], metrics: dict | None) -> None:
    job = sweep / str(num)
    (job / ".hydra").mkdir(parents=True)
    (job / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    if metrics is not None:
        key = sorted(o for o in overrides if not o.startswith("seed="))
        (job / "metrics.json").write_text(json.dumps({**metrics, "overrides": key}))


def test_summary_mean_std_and_failed_seeds(tmp_path, capsys):
    m = lambda acc, seed: {"test/acc1": acc, "test/acc5": 0.99, "params": 1000 + seed, "flops": 5e6, "seed": seed,
                           "peak_train_memory_mb": 100.0 + 10 * seed}
    _job(tmp_path, 0, ["graph=ba", "seed=0"], m(0.90, 0))
    _job(tmp_path, 1, ["graph=ba", "seed=1"], m(0.94, 1))
    _job(tmp_path, 2, ["graph=ws", "seed=0"], m(0.80, 0))
    _job(tmp_path, 3, ["graph=ws", "seed=1"], None)  # crashed: no metrics.json
    done, failed = collect(tmp_path)
    assert [r["job"] for r in done] == ["0", "1", "2"] and [(f["job"], f["seed"]) for f in failed] == [("3", 1)]
    table = {e["group"]: e for e in summarize(done, failed)}
    ba, ws = table["graph=ba"], table["graph=ws"]
    assert ba["n"] == 2 and ba["seeds"] == [0, 1] and ba["failed_seeds"] == []
    assert ba["test/acc1"][0] == pytest.approx(0.92)
    assert ba["test/acc1"][1] == pytest.approx(math.sqrt(((0.90 - 0.92) ** 2 + (0.94 - 0.92) ** 2) / 1))  # ddof=1
    assert ba["params"] == (pytest.approx(1000.5), pytest.approx(math.sqrt(0.5)))
    assert ws["n"] == 1 and ws["failed_seeds"] == [1] and math.isnan(ws["test/acc1"][1])

    assert main([str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "92.00 ± 2.83" in out and "job 3 (seed=1, graph=ws) has no metrics.json" in out
    md = (tmp_path / "summary.md").read_text()
    assert "| graph=ba | 2 | 92.00 ± 2.83 |" in md and "| graph=ws | 1 | 80.00 |" in md
    assert "| 105.0 ± 7.1 | 0,1 |" in md  # training-step memory next to FLOPs
    rows = list(csv.DictReader((tmp_path / "summary.csv").open()))
    assert rows[0]["setting"] == "graph=ba" and float(rows[0]["test/acc1_mean"]) == pytest.approx(0.92)
    assert rows[1]["failed_seeds"] == "1"


def test_summary_command_on_missing_or_empty_dir(tmp_path, capsys):
    assert main([str(tmp_path / "nope")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main([str(tmp_path)]) == 2
    assert "no jobs" in capsys.readouterr().err


@pytest.mark.slow
def test_two_seed_sweep_end_to_end(tmp_path):
    """A real `-m` sweep through train.py: each job writes metrics.json, the callback writes the summary."""
    sweep = tmp_path / "sweep"
    cmd = [sys.executable, "train.py", "graph=er", "graph.n=8", "regime.c=8", "regime.head_channels=32",
           "data=synthetic", "data.num_samples=64", "data.batch_size=16", "logger=wandb", "callbacks=none",
           "trainer.max_epochs=1", "-m", "seed=0,1", f"hydra.sweep.dir={sweep}"]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "WANDB_MODE": "offline"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    accs = [json.loads((sweep / str(i) / "metrics.json").read_text())["test/acc1"] for i in (0, 1)]
    seeds = [json.loads((sweep / str(i) / "metrics.json").read_text())["seed"] for i in (0, 1)]
    assert seeds == [0, 1]
    # W&B: one group per setting *and* sweep (a repeated command never merges into an older sweep's group)
    runs = [json.loads((sweep / str(i) / "metrics.json").read_text())["wandb"] for i in (0, 1)]
    assert runs[0]["group"] == runs[1]["group"] and runs[0]["group"].endswith("@sweep")
    assert all(r["job_type"] == "train" and "sweep:sweep" in r["tags"] for r in runs) and runs[0]["id"] != runs[1]["id"]
    rows = list(csv.DictReader((sweep / "summary.csv").open()))
    assert len(rows) == 1 and rows[0]["n"] == "2" and rows[0]["seeds"] == "0 1"
    mean = sum(accs) / 2
    assert float(rows[0]["test/acc1_mean"]) == pytest.approx(mean)
    assert float(rows[0]["test/acc1_std"]) == pytest.approx(abs(accs[0] - accs[1]) / math.sqrt(2))
    assert "mean ± std over seeds" in proc.stdout


@pytest.mark.slow
def test_optuna_sweeper_is_given_the_validation_metric(tmp_path):
    """hparams_search=lr_optuna: the value each trial returns to the sweeper is val/acc1_best, never a test metric."""
    sweep = tmp_path / "search"
    cmd = [sys.executable, "train.py", "-m", "hparams_search=lr_optuna", "hydra.sweeper.n_trials=2",
           "hydra.sweeper.sampler.n_startup_trials=2", "graph.n=8", "regime.c=8", "regime.head_channels=32",
           "data=synthetic", "data.num_samples=64", "data.batch_size=16", "logger=none", "callbacks=none",
           "trainer.max_epochs=1", "extras.print_config=false", f"hydra.sweep.dir={sweep}"]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "WANDB_MODE": "offline"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    trials = [json.loads((sweep / str(i) / "metrics.json").read_text()) for i in (0, 1)]
    assert result["best_value"] == pytest.approx(max(t["val/acc1_best"] for t in trials))
    assert set(result["best_params"]) == {"optimizer.lr", "optimizer.weight_decay"}
