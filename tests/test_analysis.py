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


def test_stats_bad_paths_are_one_line(tmp_path):
    with pytest.raises(SystemExit, match=r"^error: '.*nowhere' is not a folder"):
        main(["stats", str(tmp_path / "nowhere")])
    (tmp_path / "empty").mkdir()
    with pytest.raises(SystemExit, match=r"^error: no runs \(folders with metrics.json\) under"):
        main(["stats", str(tmp_path / "empty")])
