"""Multirun summaries: mean ± std per setting, failed seeds listed and never averaged."""

import csv
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from helpers import ROOT, TINY_NET, run_script

from randwire.analysis.summary import main, summarize
from randwire.analysis.sweeps import collect


def _job(sweep: Path, num: int, overrides: list[str], metrics: dict | None) -> None:
    job = sweep / str(num)
    (job / ".hydra").mkdir(parents=True)
    (job / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    if metrics is not None:
        key = sorted(o for o in overrides if not o.startswith("seed="))
        (job / "metrics.json").write_text(json.dumps({**metrics, "overrides": key}))


def test_summary_mean_std_and_failed_seeds(tmp_path, capsys):
    def m(acc, seed):
        return {
            "test/acc1": acc,
            "test/acc5": 0.99,
            "params": 1000 + seed,
            "flops": 5e6,
            "seed": seed,
            "peak_train_memory_mb": 100.0 + 10 * seed,
        }

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
    assert (
        "92.00 ± 2.83" in out and "missing: job 3 (seed=1, graph=ws): no metrics.json: killed, or still running" in out
    )
    md = (tmp_path / "summary.md").read_text()
    assert "| graph=ba | 2 | 92.00 ± 2.83 |" in md and "| graph=ws | 1 | 80.00 |" in md
    # training-step memory next to FLOPs, then the t-interval of top-1's mean (issue 29): at n=2 the t
    # quantile is 12.71, so 92 ± 12.71 * 2.83 / sqrt(2) points; a single instance has none
    assert (
        "| 105.0 ± 7.1 | 66.59 – 117.41 | 0,1 |" in md and "| 80.00 | 99.00 | 0.001 | 5.000 | 100.0 | – | 0 | 1 |" in md
    )
    assert ba["ci95"] == (pytest.approx(0.92 - 0.254124, abs=1e-6), pytest.approx(0.92 + 0.254124, abs=1e-6))
    rows = list(csv.DictReader((tmp_path / "summary.csv").open()))
    assert rows[0]["setting"] == "graph=ba" and float(rows[0]["test/acc1_mean"]) == pytest.approx(0.92)
    assert rows[1]["failed_seeds"] == "1" and float(rows[0]["ci95_low"]) == pytest.approx(0.665876, abs=1e-6)
    assert "| 3 | graph=ws | 1 | missing | no metrics.json: killed, or still running |" in md


def test_summary_command_on_missing_or_empty_dir(tmp_path, capsys):
    assert main([str(tmp_path / "nope")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main([str(tmp_path)]) == 2
    assert "no jobs" in capsys.readouterr().err


@pytest.mark.slow
def test_two_seed_sweep_end_to_end_and_a_cut_short_one_is_completed_by_rerunning_it(tmp_path):
    """A real `-m` sweep through train.py: each job writes metrics.json, the callback writes the summary.
    Issue 9 item 12: rerun into its folder after job 1 was cut before its result, finished jobs are skipped,
    the unfinished one resumes, the summary is rewritten."""
    sweep = tmp_path / "sweep"
    cmd = [
        sys.executable,
        "train.py",
        "graph=er",
        *TINY_NET,
        "data.num_samples=64",
        "data.batch_size=16",
        "logger=wandb",
        "callbacks=default",
        "~callbacks.progress_bar",
        "~callbacks.model_summary",
        "trainer.max_epochs=1",
        "extras.print_config=false",
        "-m",
        "seed=0,1",
        f"hydra.sweep.dir={sweep}",
    ]
    proc = run_script(cmd, expect=0)
    accs = [json.loads((sweep / str(i) / "metrics.json").read_text())["test/acc1"] for i in (0, 1)]
    seeds = [json.loads((sweep / str(i) / "metrics.json").read_text())["seed"] for i in (0, 1)]
    assert seeds == [0, 1]
    # W&B: one group per setting *and* sweep (a repeated command never merges into an older sweep's group)
    runs = [json.loads((sweep / str(i) / "metrics.json").read_text())["wandb"] for i in (0, 1)]
    assert runs[0]["group"] == runs[1]["group"] and runs[0]["group"].endswith("@sweep")
    assert all(r["job_type"] == "train" and "sweep:sweep" in r["tags"] for r in runs) and runs[0]["id"] != runs[1]["id"]
    # the sweep's summary table is its own W&B run (job_type=summary), written beside summary.md
    assert "Callback MultirunSummary" not in proc.stderr, proc.stderr[-2000:]
    summary_runs = list((sweep / "wandb").glob("offline-run-*/run-*.wandb"))
    assert len(summary_runs) == 1, proc.stderr[-2000:]
    record = summary_runs[0].read_bytes()
    assert b"summary" in record and b"summary sweep" in record  # job type and run name
    rows = list(csv.DictReader((sweep / "summary.csv").open()))
    assert len(rows) == 1 and rows[0]["n"] == "2" and rows[0]["seeds"] == "0 1"
    mean = sum(accs) / 2
    assert float(rows[0]["test/acc1_mean"]) == pytest.approx(mean)
    assert float(rows[0]["test/acc1_std"]) == pytest.approx(abs(accs[0] - accs[1]) / math.sqrt(2))
    assert "mean ± std over seeds" in proc.stdout

    done = (sweep / "0" / "metrics.json").read_bytes()
    (sweep / "1" / "metrics.json").unlink()  # job 1 was cut before it wrote its result
    (sweep / "summary.md").unlink()
    again = run_script(cmd, expect=0)
    assert f"already finished: {sweep}/0/metrics.json" in again.stdout
    assert (sweep / "0" / "metrics.json").read_bytes() == done  # not trained again
    redone = json.loads((sweep / "1" / "metrics.json").read_text())
    assert redone["status"] == "ok" and redone["global_step"] == 4
    assert not [line for line in again.stdout.splitlines() if line.startswith("epoch ")]  # resumed, not retrained
    assert "| 2 |" in (sweep / "summary.md").read_text()


@pytest.mark.slow
def test_optuna_sweeper_is_given_the_validation_metric(tmp_path):
    """hparams_search=lr_optuna: the value each trial returns to the sweeper is val/acc1_best, never a test metric."""
    sweep = tmp_path / "search"
    cmd = [
        sys.executable,
        "train.py",
        "-m",
        "hparams_search=lr_optuna",
        "hydra.sweeper.n_trials=2",
        "hydra.sweeper.sampler.n_startup_trials=2",
        *TINY_NET,
        "data.num_samples=64",
        "data.batch_size=16",
        "logger=none",
        "callbacks=none",
        "trainer.max_epochs=1",
        "extras.print_config=false",
        f"hydra.sweep.dir={sweep}",
    ]
    run_script(cmd, expect=0)
    result = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    trials = [json.loads((sweep / str(i) / "metrics.json").read_text()) for i in (0, 1)]
    assert result["best_value"] == pytest.approx(max(t["val/acc1_best"] for t in trials))
    assert set(result["best_params"]) == {"optimizer.lr", "optimizer.weight_decay"}


@pytest.mark.slow
def test_a_sweep_runs_past_failed_and_diverged_jobs(tmp_path):
    """Issue 9 items 1 and 6: a bad value and a diverging lr in one -m sweep; every job runs, the summary
    lists both failures with their reason next to their setting, and the sweep's exit code says so."""
    sweep = tmp_path / "sweep"
    cmd = [
        sys.executable,
        "train.py",
        *TINY_NET,
        "data.num_samples=64",
        "data.batch_size=16",
        "logger=csv",
        "trainer.max_epochs=2",
        "extras.print_config=false",
        "-m",
        "graph.k=4,3",
        "optimizer.lr=0.1,1e6",
        "seed=0,1",
        f"hydra.sweep.dir={sweep}",
    ]
    proc = run_script(cmd, expect=1)
    assert proc.stderr.strip().splitlines()[-1] == f"error: 6 of 8 jobs failed (listed in {sweep}/summary.md)"
    records = {int(p.parent.name): json.loads(p.read_text()) for p in sweep.glob("*/metrics.json")}
    assert sorted(records) == list(range(8))  # every job ran and left valid JSON
    status = {
        j: (r["status"], dict(o.split("=", 1) for o in r["overrides"] if o.startswith(("graph.k", "optimizer.lr"))))
        for j, r in records.items()
    }
    for job, (state, ov) in status.items():
        if ov["graph.k"] == "3":
            assert (
                state == "failed"
                and records[job]["error"] == "graph.k=3 is out of range: allowed an even integer in [2, n) = [2, 8)"
            )
        elif float(ov["optimizer.lr"]) > 1:
            assert state == "diverged" and records[job]["error"].startswith("training diverged: "), records[job][
                "error"
            ]
            best = sweep / str(job) / "checkpoints" / "best.ckpt"
            if best.exists():  # only from an epoch before the divergence (when it came later: thread count)
                state_dict = torch.load(best, weights_only=True)["state_dict"]
                assert all(torch.isfinite(v).all() for v in state_dict.values() if v.is_floating_point())
        else:
            assert state == "ok" and 0 <= records[job]["test/acc1"] <= 1
    _, failed = collect(sweep)
    table = {e["group"]: e for e in summarize(*collect(sweep))}
    good = next(e for g, e in table.items() if "graph.k=4" in g and "optimizer.lr=0.1," in g)
    assert good["n"] == 2 and good["failed_seeds"] == []
    diverged = next(e for g, e in table.items() if "graph.k=4" in g and "optimizer.lr=1000000.0" in g)
    assert diverged["n"] == 0 and diverged["failed_seeds"] == [0, 1]  # grouped with its setting
    md = (sweep / "summary.md").read_text()
    assert md.count("| failed | graph.k=3 is out of range") == 4 and md.count("| diverged | training diverged") == 2
    # what all settings share is said once; each row shows what tells it apart (issue 11 item 8)
    first = md.splitlines()[0]
    assert first.startswith("Every setting below also has: data.batch_size=16,") and "graph.n=8" in first
    assert "| graph.k=4,optimizer.lr=0.1 | 2 |" in md and "| graph.k=3,optimizer.lr=1000000.0 | 0 |" in md


@pytest.mark.slow
def test_killed_and_resumed_run_equals_the_uninterrupted_one(tmp_path):
    """Issue 9 item 4: SIGKILL after the first epoch, rerun the same command: same weights, same metrics,
    same W&B run as a run that was never interrupted (CPU, bitwise-deterministic kernels). The killed run's
    folder lock (it names its holder while the run lives) is taken over with a note, and both attempts are
    on record."""
    import signal

    def command(run_dir, logger):
        return [
            sys.executable,
            "train.py",
            *TINY_NET,
            "data.num_samples=512",
            "data.batch_size=16",
            f"logger={logger}",
            "trainer.max_epochs=3",
            "extras.print_config=false",
            "regime.edge_drop=0.1",
            f"hydra.run.dir={run_dir}",
        ]

    # no WANDB_SERVICE: a child must not share this test process's W&B service, which would keep the
    # killed child's run open (a user's shell has no such service)
    env = {
        **{k: v for k, v in os.environ.items() if k != "WANDB_SERVICE"},
        "WANDB_MODE": "offline",
        "PYTHONUNBUFFERED": "1",
    }
    from randwire.training.config import compose_config
    from randwire.training.run import train

    # the uninterrupted run in this process: the same computation (same seed, threads and kernels)
    whole = command(tmp_path / "whole", "csv")[2:-1]
    train(compose_config("train", [*whole, f"paths.output_dir={tmp_path / 'whole'}"]))
    cut = tmp_path / "cut"
    proc = subprocess.Popen(
        command(cut, "wandb"), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env
    )
    for line in proc.stdout:
        if line.startswith("epoch 1/3"):  # printed after epoch 0's checkpoint was written
            holder = json.loads((cut / ".lock").read_text())
            assert holder["pid"] == proc.pid and holder["host"]
            proc.send_signal(signal.SIGKILL)
            break
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL and not (cut / "metrics.json").exists()
    first_id = (cut / "wandb_id.txt").read_text().strip()
    resumed = run_script(command(cut, "wandb"), timeout=300, env=env, expect=0)
    epochs = [line.split()[1] for line in resumed.stdout.splitlines() if line.startswith("epoch ")]
    assert epochs == ["2/3", "3/3"]  # the rerun trained epochs 2 and 3 itself
    note = f"the run that held it ended without releasing it (host {holder['host']}, pid {proc.pid}"
    assert note in resumed.stderr, resumed.stderr[-2000:]
    a, b = (json.loads((d / "metrics.json").read_text()) for d in (tmp_path / "whole", cut))
    assert b["global_step"] == a["global_step"] == 96 and b["epochs"] == 3
    assert b["test/acc1"] == a["test/acc1"] and b["test/loss"] == pytest.approx(a["test/loss"], abs=1e-6)
    wa, wb = (
        torch.load(d / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"] for d in (tmp_path / "whole", cut)
    )
    assert all(torch.allclose(wa[k].float(), wb[k].float(), atol=1e-6) for k in wa)
    assert b["wandb"]["id"] == first_id  # the resumed run is the same W&B run
    assert [a["how"] for a in b["attempts"]] == ["killed (no end recorded)", "ok"]
    assert b["attempts"][0]["pid"] == proc.pid


def test_a_truncated_metrics_json_is_one_warning_and_a_job_without_result(tmp_path, capsys):
    """A metrics.json cut short (full disk, kill mid-write) must not sink the summary: one warning naming the
    file, its job listed as unreadable, the healthy jobs averaged, and the old summary.md replaced."""

    def m(acc, seed):
        return {"status": "ok", "test/acc1": acc, "test/acc5": 0.99, "params": 1000, "flops": 5e6, "seed": seed}

    _job(tmp_path, 0, ["graph=ba", "seed=0"], m(0.90, 0))
    _job(tmp_path, 1, ["graph=ba", "seed=1"], m(0.94, 1))
    _job(tmp_path, 2, ["graph=ba", "seed=2"], m(0.50, 2))
    whole = (tmp_path / "2" / "metrics.json").read_text()
    (tmp_path / "2" / "metrics.json").write_text(whole[: len(whole) // 2])
    (tmp_path / "summary.md").write_text("stale\n")
    assert main([str(tmp_path)]) == 0
    captured = capsys.readouterr()
    warnings = [line for line in captured.err.splitlines() if "unreadable" in line]
    assert len(warnings) == 1 and str(tmp_path / "2" / "metrics.json") in warnings[0], captured.err
    assert "Traceback" not in captured.err
    md = (tmp_path / "summary.md").read_text()
    assert "| graph=ba | 2 | 92.00 ± 2.83 |" in md and "| 0,1 | 2 |" in md
    assert "| 2 | graph=ba | 2 | unreadable | metrics.json is unreadable (" in md
    runs = list(csv.DictReader((tmp_path / "runs.csv").open()))
    assert [r["status"] for r in runs] == ["ok", "ok", "unreadable"]


def test_the_console_table_shows_settings_with_brackets(tmp_path, capsys):
    """Issue 28: rich read `graph.paths=[a.txt]` as markup and printed `graph.paths=`."""
    from randwire.analysis.summary import _print

    row = {"group": "graph.paths=[a.txt,b.txt],graph=file", "n": 2, "ci95": (float("nan"), float("nan"))}
    failed = [{"status": "failed", "job": 3, "seed": 1, "group": row["group"], "error": "bad [file] here"}]
    _print([row], failed, tmp_path)
    out = capsys.readouterr().out
    assert "graph.paths=[a.txt,b.txt]" in out and "bad [file] here" in out
