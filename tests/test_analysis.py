"""Analyses over run folders: graph statistics joined to accuracy (issue 11 item 5)."""

import json

import networkx as nx
import numpy as np
import pandas as pd
import pytest

from randwire.analysis import main
from randwire.network import sample_stage_graphs


def _run(folder, generator, params, seed, acc, status="ok"):
    graphs = sample_stage_graphs("small", generator, 16, seed, **params)
    for i, g in enumerate(graphs):
        g.save(folder / "graphs" / f"stage{i}.json")
    record = {"status": status, "seed": seed, "group": f"graph={generator}", "test/acc1": acc if status == "ok" else None}
    (folder / "metrics.json").write_text(json.dumps(record))
    return graphs


def test_stats_joins_networkx_statistics_to_accuracy(tmp_path, capsys):
    sweeps = tmp_path / "grid"
    made = {}
    for j, (gen, params, acc) in enumerate([("er", {"p": 0.2}, 0.61), ("er", {"p": 0.2}, 0.64),
                                            ("ws", {"k": 4, "p": 0.75}, 0.70), ("ws", {"k": 4, "p": 0.75}, 0.69)]):
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
    assert corr.loc["mean_avg_clustering", "pearson_r"] == pytest.approx(expected) and corr.loc["mean_avg_clustering", "runs"] == 4
    assert (tmp_path / "out" / "stats.png").stat().st_size > 20_000


def test_stats_bad_paths_are_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["stats", str(tmp_path / "nowhere")])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err == f"error: {str(tmp_path / 'nowhere')!r} is not a folder (give run or sweep folders)\n"
    (tmp_path / "empty").mkdir()
    with pytest.raises(SystemExit) as exit_info:
        main(["grid", str(tmp_path / "empty")])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.startswith("error: no runs (folders with metrics.json) under")


def test_grid_means_equal_their_run_folders_and_plots_are_written(tmp_path, capsys):
    """Issue 11 item 1: one row per generator setting with the mean and sample std of its instances'
    top-1 (failed runs counted, not averaged), Fig. 3 panels and error EDFs, across several sweep folders."""
    settings = {("er", (("p", 0.2),)): [0.61, 0.65], ("er", (("p", 0.4),)): [0.58, 0.60, 0.62],
                ("ba", (("m", 2),)): [0.66, 0.70], ("ws", (("k", 4), ("p", 0.75))): [0.71, 0.69],
                ("ws", (("k", 2), ("p", 0.5))): [0.64]}
    for j, ((gen, params), accs) in enumerate(settings.items()):
        for seed, acc in enumerate(accs):
            _run(tmp_path / f"sweep_{gen}" / f"{j}_{seed}", gen, dict(params), seed=seed, acc=acc)
    _run(tmp_path / "sweep_ba" / "failed", "ba", {"m": 2}, seed=7, acc=None, status="diverged")
    assert main(["grid", str(tmp_path / "sweep_er"), str(tmp_path / "sweep_ba"), str(tmp_path / "sweep_ws"),
                 "--out", str(tmp_path / "out")]) == 0
    grid = pd.read_csv(tmp_path / "out" / "grid.csv").set_index("setting")
    assert sorted(grid.index) == ["BA(2)", "ER(0.2)", "ER(0.4)", "WS(2, 0.5)", "WS(4, 0.75)"]
    for (gen, params), accs in settings.items():
        name = {"er": f"ER({dict(params).get('p')})", "ba": f"BA({dict(params).get('m')})"}.get(
            gen, f"WS({dict(params).get('k')}, {dict(params).get('p')})")
        row = grid.loc[name]
        assert row["n"] == len(accs) and row["top1_mean"] == pytest.approx(100 * np.mean(accs))
        if len(accs) > 1:
            assert row["top1_std"] == pytest.approx(100 * np.std(accs, ddof=1))
    assert grid.loc["BA(2)", "failed"] == 1 and grid.loc["ER(0.2)", "failed"] == 0
    for name in ("grid.png", "edf.png", "runs.csv"):
        assert (tmp_path / "out" / name).stat().st_size > 1000
    assert "edf: " in capsys.readouterr().out
