"""The inspect command: a table per stage and a picture + graph file per stage, or one clear error."""

import json

from randwire import StageGraph, build_network
from randwire.inspect import main


def test_inspect_prints_stages_and_writes_pictures(tmp_path, capsys):
    out = tmp_path / "insp"
    rc = main(["graph=ba", "graph.m=3", "graph.n=12", "regime=regular", "regime.c=16", "seed=2", f"out={out}"])
    assert rc == 0
    text = capsys.readouterr().out
    assert "BA(3) N=12" in text and "whole network: params" in text
    net = build_network("regular", graph="ba", n=12, c=16, seed=2, m=3)
    for i, g in enumerate(net.graphs):
        assert (out / f"stage{i}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert StageGraph.load(out / f"stage{i}.json") == g
        assert json.loads((out / f"stage{i}.json").read_text())["hash"] == g.hash
    assert f"{len(net.graphs[0].edges)}" in text


def test_inspect_bad_value_is_one_line_and_nonzero(tmp_path, capsys):
    rc = main(["graph=ws", "graph.k=5", f"out={tmp_path / 'x'}"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and err == "error: k=5 is out of range: allowed an even integer in [2, n) = [2, 32)"
    assert not (tmp_path / "x").exists()
    assert main(["graph=foo"]) == 2
    assert "graph='foo' is not a known generator" in capsys.readouterr().err
