"""Hydra configs, Lightning training, evaluate, and seeding (issue: the experiment framework)."""

import json
import sys
from pathlib import Path

import pytest
import torch
from helpers import CONF, ROOT, TINY, TINY_WITH_CHECKPOINTS, run_script
from omegaconf import OmegaConf

from randwire.models.errors import ConfigError
from randwire.training.checkpoints import load_checkpoint
from randwire.training.components import build_net
from randwire.training.errors import CheckpointError
from randwire.training.evaluate import evaluate
from randwire.training.plan import check_network_cfg
from randwire.training.run import train

GROUPS = {p.name: sorted(f.stem for f in p.glob("*.yaml")) for p in Path(CONF).iterdir() if p.is_dir()}


def test_every_group_option_and_experiment_composes(compose_cfg, tmp_path):
    assert set(GROUPS) >= {
        "graph",
        "regime",
        "node_op",
        "optimizer",
        "scheduler",
        "data",
        "trainer",
        "logger",
        "callbacks",
        "execution",
        "experiment",
        "paths",
        "debug",
        "hparams_search",
    }
    assert GROUPS["graph"] == ["ba", "er", "file", "networkx", "ws", "ws_flex"] and len(GROUPS["node_op"]) == 4
    (tmp_path / "chain.txt").write_text("0 1\n1 2\n")
    required = {  # the generators with no default: a function, or files
        "graph=networkx": ["graph.fn=networkx.powerlaw_cluster_graph", "+graph.kwargs.m=2", "+graph.kwargs.p=0.5"],
        "graph=file": [f"graph.paths=[{tmp_path / 'chain.txt'}]"],
    }
    for group, options in GROUPS.items():
        for option in options:
            cfg = compose_cfg(f"{group}={option}", *required.get(f"{group}={option}", []))
            OmegaConf.to_container(cfg, resolve=False)
            check_network_cfg(cfg)
    for exp in GROUPS["experiment"]:
        cfg = compose_cfg(f"experiment={exp}")
        check_network_cfg(cfg)


@pytest.mark.parametrize(
    "exp,c,epochs,dropout,edge_drop",
    [
        ("paper_small", 78, 250, 0.0, 0.0),
        ("paper_regular_c109", 109, 100, 0.2, 0.1),
        ("paper_regular_c154", 154, 100, 0.2, 0.1),
    ],
)
def test_paper_presets_match_the_paper(compose_cfg, exp, c, epochs, dropout, edge_drop):
    cfg = compose_cfg(f"experiment={exp}")
    assert (cfg.graph.name, cfg.graph.n, cfg.graph.k, cfg.graph.p) == ("ws", 32, 4, 0.75)
    assert cfg.regime.c == c and cfg.trainer.max_epochs == epochs
    assert cfg.regime.dropout == dropout and cfg.regime.edge_drop == edge_drop
    assert cfg.data.name == "imagenet" and cfg.data.batch_size == 256 and cfg.data.image_size == 224
    o = cfg.optimizer
    assert (o._target_, o.lr, o.momentum, o.weight_decay) == ("torch.optim.SGD", 0.1, 0.9, 5e-5)
    assert cfg.scheduler._target_ == "randwire.training.schedules.WarmupCosine" and cfg.scheduler.warmup_epochs == 0
    assert cfg.model.label_smoothing == 0.1


def test_command_line_group_choice_beats_the_preset(compose_cfg):
    cfg = compose_cfg("graph=ba", "graph.m=5", "regime=small", "experiment=cpu_budget")
    assert (cfg.graph.name, cfg.graph.m, cfg.graph.n, cfg.regime.name, cfg.regime.c) == ("ba", 5, 16, "small", 16)
    assert cfg.data.name == "mnist5k" and cfg.trainer.accelerator == "cpu"


@pytest.mark.parametrize("graph,extra", [("er", []), ("ba", ["graph.m=2"]), ("ws", [])])
@pytest.mark.parametrize("regime", ["small", "regular", "lowres"])
def test_fast_dev_run_fit_per_generator_and_regime(compose_cfg, tmp_path, graph, extra, regime):
    n = ["graph.n=10"] if regime == "regular" else []
    cfg = compose_cfg(*TINY, f"graph={graph}", *extra, *n, f"regime={regime}", "+trainer.fast_dev_run=true")
    metrics = train(cfg)
    assert metrics["test/acc1"] is not None and 0 <= metrics["test/acc1"] <= 1
    run = Path(cfg.paths.output_dir)
    assert len(list((run / "graphs").glob("stage*.json"))) == (4 if regime == "regular" else 3)
    assert json.loads((run / "metrics.json").read_text())["graph_hashes"] == metrics["graph_hashes"]


def test_seed_zero_really_seeds(compose_cfg, tmp_path):
    a = build_net(compose_cfg(*TINY, "seed=0"))
    b = build_net(compose_cfg(*TINY, "seed=0"))
    c = build_net(compose_cfg(*TINY, "seed=1"))
    assert [g.hash for g in a.graphs] == [g.hash for g in b.graphs]
    assert [g.hash for g in a.graphs] != [g.hash for g in c.graphs]
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    assert not torch.equal(a.head.fc.weight, c.head.fc.weight)


def _short_fit(compose_cfg, run_dir, *extra):
    cfg = compose_cfg(
        *TINY_WITH_CHECKPOINTS,
        "+trainer.limit_train_batches=2",
        "+trainer.limit_val_batches=2",
        *extra,
        run_dir=run_dir,
    )
    return cfg, train(cfg)


def test_two_trainings_with_seed_zero_end_with_identical_weights(compose_cfg, tmp_path):
    _short_fit(compose_cfg, tmp_path / "a", "seed=0")
    _short_fit(compose_cfg, tmp_path / "b", "seed=0")
    _short_fit(compose_cfg, tmp_path / "c", "seed=1")
    sd = {k: torch.load(tmp_path / k / "checkpoints" / "last.ckpt", weights_only=False)["state_dict"] for k in "abc"}
    assert all(torch.equal(sd["a"][k], sd["b"][k]) for k in sd["a"])
    assert sd["a"].keys() != sd["c"].keys() or any(not torch.equal(sd["a"][k], sd["c"][k]) for k in sd["a"])


def test_where_val_is_the_test_split_the_final_weights_are_tested(compose_cfg, tmp_path):
    """Issue 11 item 6: with data.test=null (ImageNet's layout: val is the test set) testing the
    best-validation checkpoint would report a maximum over epochs of test accuracy; the final model is
    tested, and metrics.json says which and why. The number equals evaluate.py on last.ckpt."""
    _, metrics = _short_fit(compose_cfg, tmp_path / "run", "trainer.max_epochs=2", "data.test=null")
    assert metrics["test_checkpoint"] == "final weights"
    assert metrics["test_checkpoint_why"].startswith("the final weights: validation is the test split here")
    assert (tmp_path / "run" / "checkpoints" / "best.ckpt").exists()  # there was a best one, not used
    last = tmp_path / "run" / "checkpoints" / "last.ckpt"
    result = evaluate(compose_cfg(f"ckpt={last}", "split=test", config="evaluate"))
    assert result["acc1"] == pytest.approx(metrics["test/acc1"], abs=1e-7)
    assert result["loss"] == pytest.approx(metrics["test/loss"], abs=1e-5)


@pytest.mark.slow
def test_checkpoint_stores_graphs_and_evaluate_reproduces_test_accuracy(compose_cfg, tmp_path):
    cfg, metrics = _short_fit(compose_cfg, tmp_path / "run", "trainer.max_epochs=2", "data.num_samples=128")
    ckpt = Path(metrics["test_checkpoint"])
    assert ckpt.name == "best.ckpt" and (ckpt.parent / "last.ckpt").exists()
    assert metrics["test_checkpoint_why"].startswith("the best-validation checkpoint (validation is a held-out split")
    stored = torch.load(ckpt, weights_only=False)["randwire"]
    assert [g["hash"] for g in stored["net_spec"]["graphs"]] == metrics["graph_hashes"]
    eval_cfg = compose_cfg(f"ckpt={ckpt}", "batch_size=7", "accelerator=cpu", "data.num_workers=0", config="evaluate")
    result = evaluate(eval_cfg)
    assert abs(result["acc1"] - metrics["test/acc1"]) < 1e-6
    assert abs(result["acc5"] - metrics["test/acc5"]) < 1e-6
    assert abs(result["loss"] - metrics["test/loss"]) < 1e-4
    assert result["graph_hashes"] == metrics["graph_hashes"]
    assert json.loads((tmp_path / "run" / "eval_test.json").read_text())["acc1"] == result["acc1"]
    assert result["precision"] == "32-true" and result["execution"]["mode"] == "fast"
    # evaluate at another input size, without retraining (the paper's 320² test)
    bigger = evaluate(OmegaConf.merge(eval_cfg, {"image_size": 48}))
    assert bigger["image_size"] == 48 and bigger["complexity_flops"] > result["complexity_flops"]
    assert (tmp_path / "run" / "eval_test_48.json").exists()
    # the plain per-node loop gives the same numbers; bf16 autocast runs and says so in its result
    plain = evaluate(
        compose_cfg(
            f"ckpt={ckpt}",
            "batch_size=7",
            "accelerator=cpu",
            "data.num_workers=0",
            "execution=reference",
            f"out={tmp_path / 'plain.json'}",
            config="evaluate",
        )
    )
    assert plain["execution"]["mode"] == "reference"
    assert plain["acc1"] == result["acc1"] and abs(plain["loss"] - result["loss"]) < 1e-5
    half = evaluate(OmegaConf.merge(eval_cfg, {"precision": "bf16-mixed", "out": str(tmp_path / "bf16.json")}))
    assert half["precision"] == "bf16-mixed" and half["samples"] == result["samples"]
    assert abs(half["loss"] - result["loss"]) < 0.05 * result["loss"]
    # compiled: the smaller last batch is zero-padded to the compiled shape, and its padding discarded
    assert result["samples"] % 7 != 0
    compiled = evaluate(OmegaConf.merge(eval_cfg, {"execution": {"compile": True}, "out": str(tmp_path / "c.json")}))
    assert compiled["samples"] == result["samples"] and compiled["acc1"] == result["acc1"]
    assert abs(compiled["loss"] - result["loss"]) < 1e-4
    with pytest.raises(ConfigError, match=r"execution.schedule='x' is not allowed"):  # before loading anything
        evaluate(OmegaConf.merge(eval_cfg, {"ckpt": str(tmp_path / "none.ckpt"), "execution": {"schedule": "x"}}))
    with pytest.raises(
        ConfigError, match=r"precision='fp8' is not allowed: one of \['32-true', 'bf16-mixed', '16-mixed'\]"
    ):
        evaluate(OmegaConf.merge(eval_cfg, {"precision": "fp8"}))


def test_resume_continues_from_last_checkpoint(compose_cfg, tmp_path):
    _, first = _short_fit(compose_cfg, tmp_path / "run", "trainer.max_epochs=1")
    _, second = _short_fit(compose_cfg, tmp_path / "run", "trainer.max_epochs=2")
    assert first["global_step"] == 2 and second["global_step"] == 4  # the second run did only epoch 2


def test_bad_checkpoints_fail_with_one_clear_line(tmp_path):
    with pytest.raises(CheckpointError, match="no such checkpoint file"):
        load_checkpoint(tmp_path / "none.ckpt")
    (tmp_path / "junk.ckpt").write_bytes(b"\x00garbage")
    with pytest.raises(CheckpointError, match="junk.ckpt.*not a readable checkpoint"):
        load_checkpoint(tmp_path / "junk.ckpt")
    torch.save({"state_dict": {"w": torch.zeros(1)}}, tmp_path / "foreign.ckpt")
    with pytest.raises(CheckpointError, match="foreign.ckpt.*not a randwire checkpoint"):
        load_checkpoint(tmp_path / "foreign.ckpt")


def test_wandb_offline_run_is_written_and_finished(compose_cfg, tmp_path, monkeypatch):
    import wandb

    seen = {}
    finish = wandb.finish

    def capture_then_finish(*args, **kwargs):
        if wandb.run is not None:
            seen.update(config=dict(wandb.run.config), job_type=wandb.run.job_type, tags=list(wandb.run.tags))
        return finish(*args, **kwargs)

    monkeypatch.setattr(wandb, "finish", capture_then_finish)
    cfg = compose_cfg(*TINY, "logger=wandb", "+trainer.fast_dev_run=true", "tags=[ablation]", run_dir=tmp_path / "run")
    metrics = train(cfg)
    assert wandb.run is None  # finished: the next job of a multirun gets its own run
    assert list((tmp_path / "run" / "wandb").glob("offline-run-*"))
    run_id = (tmp_path / "run" / "wandb_id.txt").read_text().strip()
    assert metrics["wandb"]["id"] == run_id and metrics["wandb"]["job_type"] == "train"
    assert metrics["wandb"]["group"] == "defaults" and metrics["tags"] == ["ablation"]
    assert seen["job_type"] == "train" and seen["tags"] == ["ablation"]
    # the W&B config is the resolved Hydra config, once: no edge lists, no second copy
    resolved = OmegaConf.to_container(cfg, resolve=True)
    assert set(seen["config"]) == set(resolved) | {
        "complexity/params",
        "complexity/flops",
        "graph_hashes",
        "provenance",
    }
    assert seen["config"]["provenance"]["packages"]["torch"] and "world_size" in seen["config"]["provenance"]
    assert seen["config"]["graph"] == resolved["graph"] and seen["config"]["optimizer"] == resolved["optimizer"]
    assert "net_spec" not in str(seen["config"]) and "run_config" not in seen["config"]
    assert seen["config"]["complexity/flops"] == metrics["flops"]


def test_lightning_model_summary_counts_the_network_flops(compose_cfg):
    """Lightning's summary used to print 0 FLOPs; it counts torch's way: 2 per multiply-add."""
    from pytorch_lightning.utilities.model_summary import summarize

    from randwire.training.components import build_module

    cfg = compose_cfg(*TINY)
    module = build_module(cfg, build_net(cfg), {})
    assert summarize(module, max_depth=1).total_flops == 2 * module.cx["flops"]


@pytest.mark.slow
def test_cli_bad_value_exits_nonzero_with_one_line(tmp_path):
    proc = run_script([sys.executable, "train.py", "graph.k=5", f"hydra.run.dir={tmp_path}/run"], timeout=120, expect=2)
    assert (
        proc.stderr.strip().splitlines()[-1]
        == "error: graph.k=5 is out of range: allowed an even integer in [2, n) = [2, 32)"
    )
    assert not (tmp_path / "run" / "checkpoints").exists()


@pytest.mark.slow
def test_default_config_trains_on_the_embedded_digits(compose_cfg, tmp_path):
    """The README's first command in miniature: default config (mnist5k, lowres, fast execution)."""
    cfg = compose_cfg(
        "logger=csv",
        "~callbacks.progress_bar",
        "~callbacks.model_summary",
        "trainer.max_epochs=3",
        run_dir=tmp_path / "run",
    )
    assert (cfg.data.name, cfg.regime.name, cfg.execution.mode, cfg.graph.name) == ("mnist5k", "lowres", "fast", "ws")
    metrics = train(cfg)
    assert metrics["test/acc1"] > 0.8  # 3 of the default 15 epochs: well on the way (15 give 98.4%)
    assert metrics["peak_train_memory_mb"] > 0 and metrics["flops"] == 8834560
    assert (tmp_path / "run" / "csv" / "metrics.csv").exists()
    assert (tmp_path / "run" / "checkpoints" / "best.ckpt").exists()
    for i in range(3):  # extras.draw_graphs (the default): each stage graph's picture beside its JSON
        assert (tmp_path / "run" / "graphs" / f"stage{i}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_evaluate_cli_on_a_foreign_checkpoint_is_one_line(tmp_path):
    torch.save({"state_dict": {}}, tmp_path / "foreign.ckpt")
    proc = run_script(
        [sys.executable, str(ROOT / "evaluate.py"), f"ckpt={tmp_path / 'foreign.ckpt'}"],
        cwd=tmp_path,
        timeout=120,
        expect=2,
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["foreign.ckpt"]  # nothing written (no evaluate.log)
    assert (
        proc.stderr.strip()
        == f"error: ckpt='{tmp_path / 'foreign.ckpt'}': not a randwire checkpoint (it stores no RandWire graphs)"
    )


def test_val_acc1_best_is_the_best_epoch_without_checkpointing(compose_cfg, tmp_path):
    import csv

    cfg = compose_cfg(*TINY, "logger=csv", "trainer.max_epochs=3", run_dir=tmp_path / "run")
    assert "model_checkpoint" not in cfg.callbacks  # callbacks=none: no checkpoint callback to ask for a best score
    metrics = train(cfg)
    rows = list(csv.DictReader((tmp_path / "run" / "csv" / "metrics.csv").open()))
    per_epoch = [float(r["val/acc1"]) for r in rows if r.get("val/acc1")]
    assert len(per_epoch) == 3
    assert metrics["val/acc1_best"] == pytest.approx(max(per_epoch))


def test_ckpt_path_starts_from_a_checkpoint_of_the_same_graphs_only(compose_cfg, tmp_path):
    from randwire.training.errors import CheckpointError

    _, first = _short_fit(compose_cfg, tmp_path / "a", "trainer.max_epochs=1")
    start = tmp_path / "a" / "checkpoints" / "last.ckpt"
    _, cont = _short_fit(compose_cfg, tmp_path / "b", "trainer.max_epochs=2", f"ckpt_path={start}")
    assert first["global_step"] == 2 and cont["global_step"] == 4  # continued: only epoch 2 ran in b
    assert cont["graph_hashes"] == first["graph_hashes"]
    with pytest.raises(
        CheckpointError,
        match=r"ckpt_path='.*last.ckpt': its stored graphs are not this run's "
        r"\(graph=ws, seed=1\)",
    ):
        _short_fit(compose_cfg, tmp_path / "c", "seed=1", f"ckpt_path={start}")
    assert not (tmp_path / "c").exists()


def test_local_site_settings_are_loaded_last(tmp_path):
    from randwire.training.config import compose_config

    site = tmp_path / "site"
    (site / "local").mkdir(parents=True)
    (site / "local" / "default.yaml").write_text("# @package _global_\npaths:\n  data_dir: /datasets\ntags: [site]\n")
    cfg = compose_config("train", [f"hydra.searchpath=[file://{site}]", "experiment=cpu_budget"])
    assert cfg.paths.data_dir == "/datasets" and list(cfg.tags) == ["site"]
    assert compose_config("train", []).paths.data_dir == "data" and list(compose_config("train", []).tags) == []


@pytest.mark.parametrize(
    "preset,key,value",
    [
        ("fdr", "fast_dev_run", True),
        ("overfit", "overfit_batches", 3),
        ("limit", "limit_train_batches", 5),
        ("profiler", "profiler", "simple"),
    ],
)
def test_debug_presets(compose_cfg, preset, key, value):
    cfg = compose_cfg(f"debug={preset}")
    assert cfg.trainer[key] == value and cfg.trainer.accelerator == "cpu" and cfg.data.num_workers == 0
    assert list(cfg.tags) == ["debug"] and list(cfg.logger) == ["csv"]


def test_debug_fast_dev_run_trains_one_batch(compose_cfg, tmp_path):
    cfg = compose_cfg(*TINY, "debug=fdr", "logger=none", run_dir=tmp_path / "run")
    metrics = train(cfg)
    assert (
        metrics["global_step"] == 1 and metrics["tags"] == ["debug"] and metrics["test_checkpoint"] == "final weights"
    )


def test_divergence_stops_the_run_at_the_step_and_records_it(compose_cfg, tmp_path):
    from randwire.training.errors import TrainingDiverged

    cfg = compose_cfg(*TINY, "callbacks=default", "optimizer.lr=1e6", "trainer.max_epochs=3", run_dir=tmp_path / "run")
    # the loss turns NaN, or (thread count decides) BN statistics turn inf first, seen before validation
    with pytest.raises(
        TrainingDiverged,
        match=r"^training diverged: (loss=nan at step \d+ \(epoch 0, batch \d+\)|"
        r"\S+ is not finite before validation \(step \d+, epoch 0\))",
    ):
        train(cfg)
    record = json.loads((tmp_path / "run" / "metrics.json").read_text())  # valid JSON: no bare NaN
    assert record["status"] == "diverged" and record["epochs"] == 0 and record["global_step"] <= 4  # 4 per epoch
    assert record["error"].startswith("training diverged") and record["seed"] == 0
    assert not (tmp_path / "run" / "checkpoints" / "best.ckpt").exists()


def test_divergence_guard_stops_a_non_finite_state_behind_a_finite_loss():
    """A huge step can leave BN's running variance at inf after the epoch's last (finite) loss: the
    state is checked before validation picks a best checkpoint, and at the epoch's end."""
    from types import SimpleNamespace

    from randwire.training.callbacks import DivergenceGuard
    from randwire.training.errors import TrainingDiverged

    module = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 1), torch.nn.BatchNorm2d(2))
    trainer = SimpleNamespace(sanity_checking=False, global_step=4, current_epoch=0, state=SimpleNamespace(fn="fit"))
    DivergenceGuard().on_validation_start(trainer, module)  # finite: nothing happens
    module[1].running_var[1] = float("inf")
    with pytest.raises(
        TrainingDiverged,
        match=r"^training diverged: 1.running_var is not finite before validation "
        r"\(step 4, epoch 0\); lower optimizer.lr",
    ):
        DivergenceGuard().on_validation_start(trainer, module)
    with pytest.raises(TrainingDiverged, match=r"is not finite at the end of the epoch"):
        DivergenceGuard().on_train_epoch_end(trainer, module)


def test_last_checkpoint_is_the_last_epoch_even_when_nothing_improves(compose_cfg, tmp_path):
    """Issue 9 item 3: with Lightning 2.6 a monitored save_last refreshed last.ckpt only on improvement."""
    cfg, metrics = _short_fit(compose_cfg, tmp_path / "run", "trainer.max_epochs=3", "optimizer.lr=1e-12")
    ckpts = tmp_path / "run" / "checkpoints"
    last = torch.load(ckpts / "last.ckpt", weights_only=True)
    best = torch.load(ckpts / "best.ckpt", weights_only=True)
    assert (last["epoch"], last["global_step"]) == (2, 6) and metrics["global_step"] == 6
    assert best["epoch"] == 0  # val top-1 never improved after epoch 0 (lr 1e-12): best stays there
    _, again = _short_fit(compose_cfg, tmp_path / "run", "trainer.max_epochs=4", "optimizer.lr=1e-12")
    assert again["global_step"] == 8  # the rerun continued from epoch 3, not from the best epoch


def test_resume_refuses_a_checkpoint_of_another_run_and_touches_nothing(compose_cfg, tmp_path):
    """Issue 9 item 2: seed=2 into a seed-0 folder, or a changed lr, is one line; the folder stays as it was."""
    from randwire.training.errors import CheckpointError

    run = tmp_path / "run"
    _short_fit(compose_cfg, run, "trainer.max_epochs=1")
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    with pytest.raises(
        CheckpointError, match=r"^resume='.*last.ckpt': its stored graphs are not this run's \(graph=ws, seed=2\)"
    ):
        _short_fit(compose_cfg, run, "trainer.max_epochs=2", "seed=2")
    with pytest.raises(
        CheckpointError,
        match=r"^resume='.*last.ckpt' was trained with another config: "
        r"optimizer.lr=0.1 there, 0.2 here; allowed to change on resume: trainer.max_epochs",
    ):
        _short_fit(compose_cfg, run, "trainer.max_epochs=2", "optimizer.lr=0.2")
    assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file()} == before


def test_unreadable_last_checkpoint_falls_back_to_the_newest_readable_one(compose_cfg, tmp_path, capsys):
    run = tmp_path / "run"
    _short_fit(compose_cfg, run, "trainer.max_epochs=1")
    last = run / "checkpoints" / "last.ckpt"
    last.write_bytes(last.read_bytes()[:1000])  # a kill mid-write, as Lightning's in-place writer left it
    _, again = _short_fit(compose_cfg, run, "trainer.max_epochs=2")
    err = capsys.readouterr().err
    assert "warning: resume='" in err and "last.ckpt': not a readable checkpoint" in err
    assert again["global_step"] == 4 and torch.load(last, weights_only=True)["epoch"] == 1  # from best.ckpt (epoch 0)


def test_checkpoints_are_written_atomically(tmp_path):
    from randwire.training.checkpoint_io import AtomicCheckpointIO

    io, path = AtomicCheckpointIO(), tmp_path / "last.ckpt"
    io.save_checkpoint({"epoch": 1, "w": torch.ones(3)}, path)
    with pytest.raises((__import__("pickle").PicklingError, AttributeError), match="pickle"):  # local: AttributeError
        io.save_checkpoint({"epoch": 2, "bad": lambda: 0}, path)  # dies half-way through the write
    assert torch.load(path, weights_only=True)["epoch"] == 1  # the previous checkpoint is whole
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.ckpt"]  # no temporary file left


def test_training_writes_its_checkpoints_through_the_atomic_writer(compose_cfg, tmp_path, monkeypatch):
    from randwire.training.checkpoint_io import AtomicCheckpointIO

    written = []
    save = AtomicCheckpointIO.save_checkpoint
    monkeypatch.setattr(
        AtomicCheckpointIO,
        "save_checkpoint",
        lambda self, ckpt, path, storage_options=None: (
            written.append(Path(path).name),
            save(self, ckpt, path, storage_options),
        ),
    )
    _short_fit(compose_cfg, tmp_path / "run", "trainer.max_epochs=2")
    assert written.count("last.ckpt") == 2 and "best.ckpt" in written


def test_one_line_per_epoch_when_not_on_a_terminal(compose_cfg, tmp_path, capsys):
    """Issue 9 item 13: under Slurm or nohup there is no progress bar; the log still shows each epoch."""
    cfg = compose_cfg(*TINY, "trainer.max_epochs=2", run_dir=tmp_path / "run")
    train(cfg)
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("epoch ")]
    assert [line.split()[1] for line in lines] == ["1/2", "2/2"]
    assert all(k in lines[0] for k in ("train/loss ", "val/loss ", "val/acc1 ", "lr ", " img/s", "ETA "))
    assert lines[1].endswith("ETA 0m00s")


def test_wandb_without_a_network_falls_back_to_offline_within_seconds(compose_cfg, tmp_path, monkeypatch, capsys):
    """Issue 9 item 10: an API key but no route to the server (a closed local port here)."""
    import time

    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    monkeypatch.setenv("WANDB_BASE_URL", "http://127.0.0.1:9")
    start = time.time()
    metrics = train(compose_cfg(*TINY, "logger=wandb", "+trainer.fast_dev_run=true", run_dir=tmp_path / "run"))
    assert time.time() - start < 60 and metrics["wandb"]["offline"] is True
    err = capsys.readouterr().err
    assert err.count("warning: W&B server http://127.0.0.1:9 is not reachable: logging offline instead") == 1
    assert list((tmp_path / "run" / "wandb").glob("offline-run-*"))


def test_wandb_says_once_why_it_is_offline(monkeypatch, capsys):
    from randwire.training import loggers

    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setattr(loggers, "_wandb_logged_in", lambda: False)
    monkeypatch.setattr(loggers, "_ANNOUNCED", set())
    assert [loggers.wandb_mode("auto", announce=True) for _ in range(3)] == ["offline"] * 3
    assert capsys.readouterr().err.count("note: W&B logs offline: no login found") == 1
