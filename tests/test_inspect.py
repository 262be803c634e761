"""The inspect command: composes train.py's conf/ and shows the network train.py would train."""

import json

import pytest

from randwire import StageGraph
from randwire.training.inspect_network import main


def test_inspect_prints_stages_and_writes_pictures(compose_cfg, tmp_path, capsys):
    from randwire.training.components import build_net

    out = tmp_path / "insp"
    args = ["graph=ba", "graph.m=3", "graph.n=12", "regime=regular", "regime.c=16", "seed=2"]
    assert main([*args, f"out={out}"]) == 0
    text = capsys.readouterr().out
    assert "BA(3) N=12" in text and "whole network: params" in text
    net = build_net(compose_cfg(*args))  # what train.py would build from the same overrides
    for i, g in enumerate(net.graphs):
        assert (out / f"stage{i}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert StageGraph.load(out / f"stage{i}.json") == g
        assert json.loads((out / f"stage{i}.json").read_text())["hash"] == g.hash
    assert f"{len(net.graphs[0].edges)}" in text


def test_inspect_reads_the_presets_of_conf(tmp_path, capsys):
    """experiment=paper_small is the paper's small network: 224², 1000 classes, C=78 (Table 2: ~5.6M, ~583M)."""
    assert main(["experiment=paper_small", f"out={tmp_path}"]) == 0
    text = capsys.readouterr().out
    assert "regime=small C=78" in text and "224²" in text and "1000 classes" in text
    params = int(text.split("whole network: params ")[1].split(" ")[0].replace(",", ""))
    assert abs(params - 5.6e6) / 5.6e6 < 0.03


@pytest.mark.slow
def test_inspect_shows_what_train_measures(compose_cfg, tmp_path, capsys):
    """`inspect experiment=cpu_budget graph=ba` prints the params and FLOPs of the equivalent train.py run."""
    from randwire.training.run import train

    overrides = ["experiment=cpu_budget", "graph=ba"]
    assert main([*overrides, f"out={tmp_path / 'insp'}"]) == 0
    text = capsys.readouterr().out
    line = text.split("whole network: ")[1].splitlines()[0]
    params = int(line.split("params ")[1].split(" ")[0].replace(",", ""))
    flops = int(line.split("FLOPs ")[1].split(" ")[0].replace(",", ""))
    cfg = compose_cfg(
        *overrides,
        "logger=none",
        "callbacks=none",
        "extras.print_config=false",
        "+trainer.fast_dev_run=true",
        run_dir=tmp_path / "run",
    )
    metrics = json.loads(json.dumps(train(cfg)))
    assert (params, flops) == (metrics["params"], metrics["flops"])
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["flops"] == flops
