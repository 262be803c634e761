"""Analyses over run folders: graph statistics joined to accuracy (issue 11 item 5)."""

import json
import re

import networkx as nx
import numpy as np
import pandas as pd
import pytest

from randwire.analysis.cli import main
from randwire.models.architecture import sample_stage_graphs


def _run(folder, generator, params, seed, acc, status="ok", **extra):
    graphs = sample_stage_graphs("small", generator, 16, seed, **params)
    for i, g in enumerate(graphs):
        g.save(folder / "graphs" / f"stage{i}.json")
    record = {
        "status": status,
        "seed": seed,
        "group": f"graph={generator}",
        "test/acc1": acc if status == "ok" else None,
        **extra,
    }
    (folder / "metrics.json").write_text(json.dumps(record))
    return graphs


def test_stats_joins_networkx_statistics_to_accuracy(tmp_path, capsys):
    sweeps = tmp_path / "grid"
    made = {}
    for j, (gen, params, acc) in enumerate(
        [
            ("er", {"p": 0.2}, 0.61),
            ("er", {"p": 0.2}, 0.64),
            ("ws", {"k": 4, "p": 0.75}, 0.70),
            ("ws", {"k": 4, "p": 0.75}, 0.69),
        ]
    ):
        made[j] = _run(sweeps / f"sweep_{gen}" / str(j), gen, params, seed=j, acc=acc)
    _run(sweeps / "sweep_ws" / "9", "ws", {"k": 4, "p": 0.75}, seed=9, acc=None, status="failed")
    assert main(["stats", str(sweeps), "--out", str(tmp_path / "out")]) == 0
    assert "plot: " + str(tmp_path / "out" / "stats.png") in capsys.readouterr().out
    runs = pd.read_csv(tmp_path / "out" / "runs.csv")
    assert len(runs) == 5 and sorted(runs["status"]) == ["failed", "ok", "ok", "ok", "ok"]
    row = runs[runs["run"].str.endswith("/2")].iloc[0]
    g = made[2][1].to_undirected_networkx()
    assert row["stage1_avg_clustering"] == pytest.approx(nx.average_clustering(g))
    assert row["stage1_depth"] == max(made[2][1].levels()) + 1 and row["stage1_inputs"] == len(made[2][1].input_nodes)
    ok = runs[runs["status"] == "ok"]
    corr = pd.read_csv(tmp_path / "out" / "correlations.csv").set_index("statistic")
    expected = np.corrcoef(ok["mean_avg_clustering"], ok["test_acc1"])[0, 1]
    assert (
        corr.loc["mean_avg_clustering", "pearson_r"] == pytest.approx(expected)
        and corr.loc["mean_avg_clustering", "runs"] == 4
    )
    assert (tmp_path / "out" / "stats.png").stat().st_size > 20_000


def test_stats_bad_paths_are_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["stats", str(tmp_path / "nowhere")])
    assert exit_info.value.code == 2
    assert (
        capsys.readouterr().err == f"error: {str(tmp_path / 'nowhere')!r} is not a folder (give run or sweep folders)\n"
    )
    (tmp_path / "empty").mkdir()
    with pytest.raises(SystemExit) as exit_info:
        main(["grid", str(tmp_path / "empty")])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.startswith("error: no runs (folders with metrics.json) under")


def test_grid_means_equal_their_run_folders_and_plots_are_written(tmp_path, capsys):
    """Issue 11 item 1: one row per generator setting with the mean and sample std of its instances'
    top-1 (failed runs counted, not averaged), Fig. 3 panels and error EDFs, across several sweep folders."""
    settings = {
        ("er", (("p", 0.2),)): [0.61, 0.65],
        ("er", (("p", 0.4),)): [0.58, 0.60, 0.62],
        ("ba", (("m", 2),)): [0.66, 0.70],
        ("ws", (("k", 4), ("p", 0.75))): [0.71, 0.69],
        ("ws", (("k", 2), ("p", 0.5))): [0.64],
    }
    for j, ((gen, params), accs) in enumerate(settings.items()):
        for seed, acc in enumerate(accs):
            _run(tmp_path / f"sweep_{gen}" / f"{j}_{seed}", gen, dict(params), seed=seed, acc=acc)
    _run(tmp_path / "sweep_ba" / "failed", "ba", {"m": 2}, seed=7, acc=None, status="diverged")
    assert (
        main(
            [
                "grid",
                str(tmp_path / "sweep_er"),
                str(tmp_path / "sweep_ba"),
                str(tmp_path / "sweep_ws"),
                "--out",
                str(tmp_path / "out"),
            ]
        )
        == 0
    )
    grid = pd.read_csv(tmp_path / "out" / "grid.csv").set_index("setting")
    assert sorted(grid.index) == ["BA(2)", "ER(0.2)", "ER(0.4)", "WS(2, 0.5)", "WS(4, 0.75)"]
    for (gen, params), accs in settings.items():
        name = {"er": f"ER({dict(params).get('p')})", "ba": f"BA({dict(params).get('m')})"}.get(
            gen, f"WS({dict(params).get('k')}, {dict(params).get('p')})"
        )
        row = grid.loc[name]
        assert row["n"] == len(accs) and row["top1_mean"] == pytest.approx(100 * np.mean(accs))
        if len(accs) > 1:
            assert row["top1_std"] == pytest.approx(100 * np.std(accs, ddof=1))
    assert grid.loc["BA(2)", "failed"] == 1 and grid.loc["ER(0.2)", "failed"] == 0
    er = grid.loc["ER(0.4)"]  # issue 29: a t-interval over its 3 instances, and every pair compared
    assert er["ci_low"] < er["top1_mean"] < er["ci_high"] and np.isnan(grid.loc["WS(2, 0.5)", "ci_low"])
    pairs = pd.read_csv(tmp_path / "out" / "grid_pairs.csv")
    assert len(pairs) == 10 and {"diff", "ci_low", "ci_high", "p_value", "p_holm", "verdict"} <= set(pairs)
    assert (pairs["verdict"] == "too few instances").sum() == 4  # WS(2, 0.5) has one instance
    verdicts = (tmp_path / "out" / "grid_verdicts.md").read_text()
    assert (
        "- ER: best ER(0.2); indistinguishable from it: ER(0.4); ~" in verdicts
        and "- BA: BA(2) (one setting)" in verdicts
    )
    assert "~11 instances each would resolve its 3-point gap to ER(0.4) at this std" in verdicts
    assert "- 3 of 6 compared pairs ran the same seeds (common random numbers" in verdicts  # seeds {0, 1} thrice
    assert (  # the hint also beside the best of all (pooled std of 61, 65 and 71, 69: sqrt(5) points)
        "- best of all: WS(4, 0.75); indistinguishable from: ER(0.2), BA(2); ~3 instances each would resolve "
        "its 7-point gap to ER(0.2) at this std" in verdicts
    )
    assert (
        "- WS: best WS(4, 0.75); no setting is indistinguishable from it; too few instances to tell: WS(2, 0.5)"
        in verdicts
    )
    for name in ("grid.png", "edf.png", "runs.csv"):
        assert (tmp_path / "out" / name).stat().st_size > 1000
    assert "edf: " in capsys.readouterr().out


def test_analysis_plots_and_tables_go_to_wandb_when_asked(tmp_path, capsys, monkeypatch):
    """Issue 11: plots as W&B images and CSVs as W&B tables (offline here: the files W&B would sync)."""
    monkeypatch.setenv("WANDB_MODE", "offline")
    for seed, acc in enumerate([0.61, 0.65]):
        _run(tmp_path / "sweep" / str(seed), "er", {"p": 0.2}, seed=seed, acc=acc)
    assert main(["grid", str(tmp_path / "sweep"), "--out", str(tmp_path / "out"), "--wandb", "proj"]) == 0
    (run,) = (tmp_path / "out" / "wandb").glob("offline-run-*")
    assert f"W&B run: {run}" in capsys.readouterr().out
    media = run / "files" / "media"
    assert sorted(p.name.split("_")[1] for p in (media / "images" / "grid").glob("plot_*.png")) == ["edf", "grid"]
    tables = {
        p.name.split("_")[1]: json.loads(p.read_text()) for p in (media / "table" / "grid").glob("table_*.table.json")
    }
    assert sorted(tables) == ["grid", "pairs", "runs"]
    grid_rows = pd.read_csv(tmp_path / "out" / "grid.csv")
    assert tables["grid"]["columns"] == list(grid_rows.columns) and len(tables["grid"]["data"]) == 1
    assert tables["grid"]["data"][0][tables["grid"]["columns"].index("top1_mean")] == pytest.approx(63.0)


# -- graph damage (Fig. 5) -------------------------------------------------------------------------------


def test_damage_follows_the_dag_removing_what_loses_its_last_input():
    from randwire.models.graphs import StageGraph
    from randwire.models.lesions import Damage, all_damages, damage_stage

    # 0 -> 2, 1 -> 2, 1 -> 3, 2 -> 4, 3 -> 4; inputs 0, 1; outputs 4 (node 4 reads 2 and 3)
    g = StageGraph("er", {"p": 0.5}, 0, 5, ((0, 2), (1, 2), (1, 3), (2, 4), (3, 4)))
    intact = damage_stage(g, Damage(0))
    assert intact.alive == (True,) * 5 and intact.kept == ((), (), (0, 1), (0,), (0, 1)) and intact.outputs == (4,)
    no1 = damage_stage(g, Damage(0, "node", node=1))  # 3 loses its only input and goes too; 2 keeps 0
    assert no1.alive == (True, False, True, False, True) and no1.kept[2] == (0,) and no1.kept[4] == (0,)
    cut = damage_stage(g, Damage(0, "edge", edge=(1, 3)))  # 3's only input: 3 is gone, 4 keeps 2
    assert cut.alive == (True, True, True, False, True) and cut.kept[4] == (0,) and cut.has_path
    assert damage_stage(g, Damage(0, "edge", edge=(2, 4))).kept[4] == (1,)
    assert not damage_stage(g, Damage(0, "node", node=4)).has_path  # the only output node
    assert Damage(0, "node", node=1).degree(g) == 2 and Damage(0, "edge", edge=(3, 4)).degree(g) == 2
    assert len(all_damages([g, g])) == 2 * (5 + 5)
    with pytest.raises(ValueError, match=r"edge \(0, 1\) is not an edge of this stage"):
        damage_stage(g, Damage(0, "edge", edge=(0, 1)))


def test_damage_of_nothing_is_the_network_and_a_damage_equals_evaluating_the_damaged_network(tiny_run, tmp_path):
    """Issue 11 item 3: the intact row equals evaluate.py on the same checkpoint; removing an edge into a
    node with several inputs gives the Δ of evaluating a checkpoint whose weight of that edge is zero
    (sigmoid(-1e4) == 0), through the ordinary (fast) forward; a node that feeds only such nodes likewise."""
    import torch

    from randwire.training.config import compose_config
    from randwire.training.evaluate import evaluate

    run, metrics = tiny_run
    assert main(["damage", str(run), "--out", str(tmp_path / "out")]) == 0
    table = pd.read_csv(tmp_path / "out" / "damage.csv")
    ckpt = table["checkpoint"].iloc[0]
    assert ckpt == metrics["test_checkpoint"]
    graphs = [json.loads(p.read_text()) for p in sorted((run / "graphs").glob("stage*.json"))]
    n_nodes, n_edges = sum(g["n"] for g in graphs), sum(len(g["edges"]) for g in graphs)
    assert (table["kind"] == "node").sum() == n_nodes and (table["kind"] == "edge").sum() == n_edges
    intact = table[table["kind"] == "none"].iloc[0]
    base = evaluate(compose_config("evaluate", [f"ckpt={ckpt}", f"out={tmp_path / 'e0.json'}"]))
    assert intact["acc1"] == pytest.approx(base["acc1"], abs=1e-9) and intact["delta_acc1"] == 0
    assert intact["acc1"] > 0.5  # it learned something, so a damage can cost accuracy

    state = torch.load(ckpt, weights_only=True)
    stage_graphs = [
        __import__("randwire.models.graphs", fromlist=["StageGraph"]).StageGraph.from_dict(g) for g in graphs
    ]

    def evaluate_with_zero_weights(edges_by_stage, name):  # edges: (stage, u, v) into multi-input nodes
        damaged = {**state, "state_dict": dict(state["state_dict"])}
        for s, u, v in edges_by_stage:
            preds = stage_graphs[s].predecessors()[v]
            key = f"net.stages.{s}.nodes.{v}.edge_logits"
            logits = damaged["state_dict"][key].clone()
            logits[preds.index(u)] = -1e4
            damaged["state_dict"][key] = logits
        torch.save(damaged, tmp_path / f"{name}.ckpt")
        r = evaluate(compose_config("evaluate", [f"ckpt={tmp_path / name}.ckpt", f"out={tmp_path / name}.json"]))
        return 100 * (r["acc1"] - base["acc1"])

    edges = table[(table["kind"] == "edge") & (table["degree"] > 1)]
    worst = edges.loc[edges["delta_acc1"].idxmin()]
    assert worst["delta_acc1"] < 0  # a damage that costs accuracy: the comparison below is not 0 == 0
    s, u, v = int(worst["stage"]), int(worst["edge_from"]), int(worst["edge_to"])
    assert evaluate_with_zero_weights([(s, u, v)], "edge") == pytest.approx(worst["delta_acc1"], abs=1e-9)

    nodes = table[table["kind"] == "node"]
    for _, row in nodes.iterrows():  # a node that is no output and feeds only multi-input nodes
        s, x = int(row["stage"]), int(row["node"])
        succ = stage_graphs[s].successors()[x]
        if succ and all(len(stage_graphs[s].predecessors()[w]) > 1 for w in succ) and row["delta_acc1"] != 0:
            direct = evaluate_with_zero_weights([(s, x, w) for w in succ], "node")
            assert direct == pytest.approx(row["delta_acc1"], abs=1e-9)
            break
    else:
        pytest.fail("no node with only multi-input successors and a non-zero Δ in the tiny network")
    assert (tmp_path / "out" / "damage.png").stat().st_size > 10_000


def test_damage_bad_inputs_are_one_line(tmp_path, capsys):
    import torch

    torch.save({"state_dict": {}}, tmp_path / "foreign.ckpt")
    for args, expected in (
        (
            [str(tmp_path / "nowhere.ckpt")],
            f"error: {str(tmp_path / 'nowhere.ckpt')!r} does not exist (give a checkpoint file, or run or sweep folders)",
        ),
        (
            [str(tmp_path / "foreign.ckpt")],
            f"error: ckpt={str(tmp_path / 'foreign.ckpt')!r}: not a randwire checkpoint (it stores no RandWire graphs)",
        ),
        (
            [str(tmp_path / "foreign.ckpt"), "--batch-size", "0"],
            "error: --batch-size 0 is not allowed: an integer >= 1",
        ),
    ):
        with pytest.raises(SystemExit) as exit_info:
            main(["damage", *args, "--out", str(tmp_path / "out")])
        assert exit_info.value.code == 2
        assert capsys.readouterr().err.strip() == expected
    assert not (tmp_path / "out" / "damage.csv").exists()


def test_nodeops_series_and_their_pearson_correlations(tmp_path, capsys):
    """Issue 11 item 4: one accuracy series per node operation over the generator settings (mean of its
    instances), and the Pearson r of every pair equal to numpy's on the same series."""
    rng = np.random.default_rng(0)
    settings = [("er", {"p": 0.2}), ("ba", {"m": 5}), ("ws", {"k": 4, "p": 0.75}), ("ws", {"k": 2, "p": 0.5})]
    base = {"sep_conv": 0.70, "conv": 0.66, "max_pool": 0.60}
    expected = {op: [] for op in base}
    for j, (gen, params) in enumerate(settings):
        for op, level in base.items():
            accs = level + 0.02 * j * (1 + 0.5 * (op == "conv")) + rng.normal(0, 0.01, 2)
            expected[op].append(100 * accs.mean())
            for seed, acc in enumerate(accs):
                _run(
                    tmp_path / f"sweep_{gen}" / f"{j}_{op}_{seed}",
                    gen,
                    params,
                    seed=seed,
                    acc=float(acc),
                    node_op=op,
                    flops=580e6,
                )
    _run(tmp_path / "sweep_ba" / "dead", "ba", {"m": 5}, seed=3, acc=None, status="diverged", node_op="conv")
    assert main(["nodeops", str(tmp_path), "--out", str(tmp_path / "out")]) == 0
    table = pd.read_csv(tmp_path / "out" / "nodeops.csv")
    assert len(table) == 4 * 3 and set(table["node_op"]) == set(base)
    assert table.set_index(["setting", "node_op"]).loc[("BA(5)", "conv"), "failed"] == 1
    order = ["ER(0.2)", "BA(5)", "WS(2, 0.5)", "WS(4, 0.75)"]  # the paper's order: ER, BA, WS, then K, M, P
    assert list(dict.fromkeys(table["setting"])) == order
    names = ["ER(0.2)", "BA(5)", "WS(4, 0.75)", "WS(2, 0.5)"]  # the order the runs were made in
    pearson = pd.read_csv(tmp_path / "out" / "nodeops_pearson.csv").set_index(["node_op_a", "node_op_b"])
    assert list(pearson.index) == [("sep_conv", "conv"), ("sep_conv", "max_pool"), ("conv", "max_pool")]
    for a, b in pearson.index:
        series = table.pivot(index="setting", columns="node_op", values="top1_mean").loc[names]
        assert series[a].to_numpy() == pytest.approx(expected[a])
        assert pearson.loc[(a, b), "pearson_r"] == pytest.approx(np.corrcoef(expected[a], expected[b])[0, 1])
        assert pearson.loc[(a, b), "settings"] == 4
    assert (tmp_path / "out" / "nodeops.png").stat().st_size > 10_000
    assert "nodeops: " + str(tmp_path / "out" / "nodeops.csv") in capsys.readouterr().out
    pairs = pd.read_csv(tmp_path / "out" / "nodeops_pairs.csv")  # issue 29: the ops of one setting compared
    assert len(pairs) == 4 * 3 and set(pairs["test"]) == {"paired t"}  # every op ran seeds 0 and 1
    first = pairs.iloc[0]
    assert (first["a"], first["b"]) == ("ER(0.2) · sep_conv", "ER(0.2) · conv")
    assert first["diff"] == pytest.approx(expected["sep_conv"][0] - expected["conv"][0])


def test_grid_and_summary_over_several_sweeps_list_killed_and_never_started_jobs_per_setting(tmp_path, capsys):
    """Issue 11 item 8: a grid over a parent of two sweeps; a killed job (folder, no metrics.json) and a
    never-started one (planned in multirun.yaml, no folder) are counted under their setting, which comes from
    the saved config or, for the never-started job, from composing its overrides."""
    import yaml

    from randwire.analysis.summary import main as summary_main

    ba = tmp_path / "grid" / "ba"
    ba.mkdir(parents=True)
    (ba / "multirun.yaml").write_text(
        yaml.safe_dump(
            {
                "hydra": {
                    "sweeper": {
                        "_target_": "hydra._internal.core_plugins.basic_sweeper.BasicSweeper",
                        "max_batch_size": None,
                        "params": None,
                    },
                    "overrides": {"task": ["graph=ba", "graph.n=16", "graph.m=2,3", "seed=0,1"]},
                }
            }
        )
    )
    for num, (m, seed, acc) in enumerate([(2, 0, 0.81), (2, 1, 0.85)]):
        job = ba / str(num)
        _run(job, "ba", {"m": m}, seed=seed, acc=acc, overrides=["graph.m=2", "graph.n=16", "graph=ba"])
        (job / ".hydra").mkdir()
        (job / ".hydra" / "overrides.yaml").write_text(
            yaml.safe_dump(["graph=ba", "graph.n=16", "graph.m=2", f"seed={seed}"])
        )
    killed = ba / "2"
    (killed / ".hydra").mkdir(parents=True)
    (killed / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(["graph=ba", "graph.n=16", "graph.m=3", "seed=0"]))
    (killed / "config.yaml").write_text(yaml.safe_dump({"graph": {"name": "ba", "n": 16, "m": 3}}))
    _run(tmp_path / "grid" / "er" / "0", "er", {"p": 0.2}, seed=0, acc=0.7, overrides=["graph.p=0.2", "graph=er"])

    assert main(["grid", str(tmp_path / "grid"), "--out", str(tmp_path / "out")]) == 0
    grid = pd.read_csv(tmp_path / "out" / "grid.csv").set_index("setting")
    assert grid.loc["BA(2)", ["n", "failed", "never_started"]].tolist() == [2, 0, 0]
    assert grid.loc["BA(3)", ["n", "failed", "never_started"]].tolist() == [0, 1, 1]  # job 2 killed, job 3 planned
    assert grid.loc["ER(0.2)", "n"] == 1
    runs = pd.read_csv(tmp_path / "out" / "runs.csv")
    assert sorted(runs["status"]) == ["missing", "never started", "ok", "ok", "ok"]

    assert summary_main([str(tmp_path / "grid")]) == 0
    md = (tmp_path / "grid" / "summary.md").read_text()
    assert "| graph.m=2,graph.n=16,graph=ba | 2 | 83.00 ± 2.83 |" in md
    assert "| ba/3 | graph.m=3,graph.n=16,graph=ba | 1 | never started |" in md
    assert "| ba/2 | graph.m=3,graph.n=16,graph=ba | 0 | missing |" in md
    tidy = pd.read_csv(tmp_path / "grid" / "runs.csv")
    assert len(tidy) == 5 and set(tidy["job"]) == {"ba/0", "ba/1", "ba/2", "ba/3", "er/0"}
    assert tidy.set_index("job").loc["ba/0", "mean_depth"] > 1  # graph statistics joined per job
    assert "written: " in capsys.readouterr().out


def test_long_override_lists_keep_a_readable_distinct_setting_name():
    from omegaconf import OmegaConf

    from randwire.training.records import group_name

    ov = [
        "data.batch_size=16",
        "data.num_samples=64",
        "data=synthetic",
        "extras.print_config=False",
        "graph.k=4",
        "graph.n=8",
        "logger=csv",
        "optimizer.lr=0.1",
        "regime.c=8",
        "regime.head_channels=32",
        "trainer.max_epochs=2",
    ]

    def name(overrides):
        return group_name(OmegaConf.create({"overrides": [*overrides, "seed=3"]}))

    assert name(ov[:3]) == "data.batch_size=16,data.num_samples=64,data=synthetic"  # short: as it is
    long_a, long_b = name(ov), name([*ov[:-1], "trainer.max_epochs=3"])
    assert long_a.startswith("batch_size=16,num_samples=64,data=synthetic,print_config=False,k=4,n=8,logger=csv,lr=0.1")
    assert len(long_a) <= 100 and long_a != long_b and "…#" in long_a


def test_the_analysis_command_lists_its_analyses_and_answers_bad_paths_in_one_line(tmp_path):
    import subprocess
    import sys

    from helpers import ROOT, run_script

    env = {k: v for k, v in __import__("os").environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    help_text = subprocess.run(
        [sys.executable, "-m", "randwire.analysis", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    ).stdout
    assert "{grid,damage,nodeops,stats,power}" in help_text
    proc = run_script(
        [sys.executable, "-m", "randwire.analysis", "nodeops", str(tmp_path / "none")],
        timeout=120,
        env=env,
        expect=None,
    )
    assert (
        proc.returncode == 2
        and proc.stderr == f"error: {str(tmp_path / 'none')!r} is not a folder (give run or sweep folders)\n"
    )


def test_a_corrupt_stage_graph_costs_its_statistics_not_the_summary(tmp_path, capsys):
    from randwire.analysis.summary import main as summary_main

    for seed, acc in enumerate([0.61, 0.65]):
        _run(tmp_path / "sweep" / str(seed), "er", {"p": 0.2}, seed=seed, acc=acc, overrides=["graph=er"])
    (tmp_path / "sweep" / "1" / "graphs" / "stage1.json").write_text("{not json")
    assert summary_main([str(tmp_path / "sweep")]) == 0
    err = capsys.readouterr().err
    assert err.startswith(f"warning: {tmp_path / 'sweep' / '1'}/graphs: ") and "graph statistics are left out" in err
    runs = pd.read_csv(tmp_path / "sweep" / "runs.csv").set_index("job")
    assert runs.loc[0, "mean_depth"] > 1 and pd.isna(runs.loc[1, "mean_depth"]) and runs.loc[1, "test_acc1"] == 0.65
    assert "| graph=er | 2 | 63.00 ± 2.83 |" in (tmp_path / "sweep" / "summary.md").read_text()


@pytest.mark.parametrize("analysis", ["grid", "stats", "nodeops"])
def test_a_truncated_metrics_json_costs_its_run_not_the_analysis(tmp_path, capsys, analysis):
    sweep = tmp_path / "sweep"
    for j, acc in enumerate([0.61, 0.64, 0.5]):
        _run(sweep / str(j), "er", {"p": 0.2}, seed=j, acc=acc, node_op="sep_conv")
    cut = sweep / "2" / "metrics.json"
    cut.write_text(cut.read_text()[:20])
    assert main([analysis, str(sweep), "--out", str(tmp_path / "out")]) == 0
    err = capsys.readouterr().err
    assert err.count("unreadable") == 1 and str(cut) in err and "Traceback" not in err
    runs = pd.read_csv(tmp_path / "out" / "runs.csv")
    assert sorted(runs["status"]) == ["ok", "ok", "unreadable"]
    if analysis == "grid":
        grid = pd.read_csv(tmp_path / "out" / "grid.csv")
        assert grid.loc[0, "n"] == 2 and grid.loc[0, "failed"] == 1
        assert grid.loc[0, "top1_mean"] == pytest.approx(62.5)


def test_plots_say_counts_right_and_no_edf_line_hides_another(tmp_path, monkeypatch):
    """Issue 17 item 6: ER and BA with the same errors drew one step over the other; '1 instances'; a single
    node op was said to lack shared settings."""

    import randwire.analysis.grid as grid_module
    import randwire.analysis.nodeops as nodeops_module

    figures = {}
    for module in (grid_module, nodeops_module):
        monkeypatch.setattr(module, "save_figure", lambda fig, path: figures.__setitem__(path.name, fig))
    for j, (gen, params) in enumerate([("er", {"p": 0.2}), ("ba", {"m": 3}), ("ba", {"m": 3})]):
        _run(tmp_path / "sweep" / str(j), gen, params, seed=j, acc=0.5, node_op="sep_conv")
    assert main(["grid", str(tmp_path / "sweep"), "--out", str(tmp_path / "out")]) == 0
    titles = [ax.get_title() for ax in figures["grid.png"].axes if ax.get_title()]
    assert "ER  (1 instance)" in titles and "BA  (2 instances)" in titles
    lines = figures["edf.png"].axes[0].get_lines()
    assert [line.get_label() for line in lines] == ["ER (n=1)", "BA (n=2)"]
    assert len(figures["edf.png"].axes[0].collections) == 1  # a bootstrap band where there are 2+ instances
    assert lines[0].get_linestyle() != lines[1].get_linestyle() and lines[0].get_linewidth() > lines[1].get_linewidth()
    assert main(["nodeops", str(tmp_path / "sweep"), "--out", str(tmp_path / "out")]) == 0
    assert figures["nodeops.png"].axes[0].get_title().endswith("Pearson r: needs 2+ node operations")


def test_two_file_sweeps_with_other_graphs_are_two_settings_and_two_edf_curves(tmp_path, monkeypatch):
    """Issue 28: settings are named by content. Two sweeps whose files are both called stage0.json but hold
    other graphs were one row (n=2, averaged) and one curve; two networkx functions shared one curve. A file
    job that failed before storing graphs is named from its files (not file:None)."""
    import randwire.analysis.grid as grid_module

    figures = {}
    monkeypatch.setattr(grid_module, "save_figure", lambda fig, path: figures.__setitem__(path.name, fig))
    for name, p in (("a", 0.2), ("b", 0.5)):
        (tmp_path / name).mkdir()
        sample_stage_graphs("small", "er", 16, 0, p=p)[0].save(tmp_path / name / "stage0.json")
        for seed in range(2):
            paths = [str(tmp_path / name / "stage0.json")]
            _run(tmp_path / f"sweep_{name}" / str(seed), "file", {"paths": paths}, seed=seed, acc=0.5 + 0.1 * seed)
    for j, fn in enumerate(("networkx.path_graph", "networkx.cycle_graph")):
        _run(tmp_path / "sweep_nx" / str(j), "networkx", {"fn": fn, "kwargs": {}}, seed=0, acc=0.4)
    folders = [str(tmp_path / f"sweep_{name}") for name in ("a", "b", "nx")]
    assert main(["grid", *folders, "--out", str(tmp_path / "out")]) == 0
    grid = pd.read_csv(tmp_path / "out" / "grid.csv")
    files = grid[grid["generator"] == "file"]
    assert len(files) == 2 and list(files["n"]) == [2, 2] and files["setting"].nunique() == 2
    assert all(re.fullmatch(r"file:stage0\.json#[0-9a-f]{8}", name) for name in files["setting"])
    labels = sorted(line.get_label() for line in figures["edf.png"].axes[0].get_lines())
    assert len(labels) == 4 and labels[2:] == ["networkx:cycle_graph (n=1)", "networkx:path_graph (n=1)"]
    assert {label.split(" ")[0] for label in labels[:2]} == set(files["setting"])
    from randwire.models.graph_files import file_set_name, file_set_name_of_paths

    paths = [str(tmp_path / "a" / "stage0.json")]  # a job that stored no graphs: named from its config's files
    assert "file:" + file_set_name_of_paths(paths) == files["setting"].iloc[0]
    assert file_set_name_of_paths(paths) == file_set_name(sample_stage_graphs("small", "file", None, 0, paths=paths))
    assert file_set_name_of_paths([str(tmp_path / "gone.json")]) == "gone.json"  # files gone: the names


@pytest.mark.parametrize("regime,size,mflops", [("lowres", 28, 5.6), ("small", 64, 1.7)])
def test_the_cpu_preset_keeps_each_regime_cheap(regime, size, mflops):
    """experiment=cpu_budget on lowres was 64² (26M multiply-adds, a 1.1 GB step): 28² there now."""
    from randwire.models.architecture import NetworkSpec
    from randwire.models.complexity import Cx, network_cx
    from randwire.training.config import compose_config

    cfg = compose_config("train", ["experiment=cpu_budget", f"regime={regime}"])
    assert cfg.data.image_size == size
    graphs = sample_stage_graphs(regime, "ws", cfg.graph.n, 0, k=4, p=0.75)
    spec = NetworkSpec(regime, cfg.regime.c, num_classes=10, in_channels=1, head_channels=cfg.regime.head_channels)
    flops = network_cx(Cx(h=size, w=size), spec, graphs).flops
    assert flops / 1e6 == pytest.approx(mflops, abs=0.1)


def test_power_says_how_many_instances_resolve_a_difference_at_the_observed_std(tmp_path, capsys):
    """Issue 29 item 2: at a std of 1 point, 1 point needs ~17 instances per setting (t-test, alpha 0.05,
    power 0.8; the textbook number for d = 1); a bad option is one line."""
    for seed, acc in enumerate([0.60, 0.61, 0.62]):  # sample std 1 point
        _run(tmp_path / "sweep" / str(seed), "er", {"p": 0.2}, seed=seed, acc=acc)
    assert main(["power", str(tmp_path / "sweep"), "--diff", "1", "--out", str(tmp_path / "out")]) == 0
    assert (
        "to tell apart 1 points at the pooled std over instances 1 (alpha 0.05, power 0.8, two-sided t-test): ~17"
        in (capsys.readouterr().out)
    )
    power = pd.read_csv(tmp_path / "out" / "power.csv").set_index("setting")
    assert power.loc["(pooled)", "needed"] == 17 and power.loc["ER(0.2)", "n"] == 3
    with pytest.raises(SystemExit) as info:
        main(["power", str(tmp_path / "sweep"), "--diff", "0"])
    assert info.value.code == 2 and capsys.readouterr().err == "error: --diff 0 is not allowed: > 0 (points)\n"
