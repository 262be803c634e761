"""Generators from config: ER/BA/WS unchanged, WS-flex, any networkx function, hand-made graphs from files."""

import json
import re
import sys

import pytest
from helpers import ROOT, TINY, run_script

from randwire import sample_graph
from randwire.models.architecture import sample_stage_graphs
from randwire.training.config import compose_config

# Hashes of the stored graphs as the code of before the generator interface sampled them (commit 7fb6b4c).
GOLDEN = [
    ("er", 16, 0, {"p": 0.2}, "7a4c72944ac1d82eceba7abf2cbfb86e4da1e93e3b73dc1721f0c7378aa24edf"),
    ("er", 32, 7, {"p": 0.5}, "9284c50afa08862c73fab80317ed0bd514cb1d3edcc91ec06d58710a2249c8d0"),
    ("ba", 16, 0, {"m": 1}, "26e5a42adabc4d08cc3d1a4e536821cec18be939cb17dc73c4e6cd2f5ff68ba5"),
    ("ba", 32, 3, {"m": 5}, "847a5a89d5a179190eeeafff89f0bcfc3810f52fe4074765fc5868a03f5a2e02"),
    ("ws", 16, 0, {"k": 4, "p": 0.75}, "a418b4289b4a8f0f10e321db23eb3d688bd6f301c08f7af6823a7d22ba85354a"),
    ("ws", 32, 11, {"k": 6, "p": 0.1}, "6e140d0f0f48d788f2dcf4d51a3aa60d952f9ccdd756f49b4cf5f8f73486d695"),
]
GOLDEN_REGULAR_WS = [
    "51d2b403253cdcb7d1abf8f13b017383b2a950926ed45b7523f26247acc29642",
    "3a2609bb6c946517764a155f0ba1f96f4a0ae1aac89f79813d5b9630a58ff3cf",
    "714ebfefdee552398b80995924cb702db68c20bfdaaec2fe1185e3a9b20d78b4",
    "b83dcb0058436baac403860aac39318c9570b1a8c30c8076ba4c08c4462f5183",
]


@pytest.mark.parametrize("model,n,seed,params,digest", GOLDEN, ids=[f"{g[0]}-{g[1]}-{g[2]}" for g in GOLDEN])
def test_er_ba_ws_graphs_and_hashes_are_unchanged(model, n, seed, params, digest):
    assert sample_graph(model, n, seed, **params).hash == digest


def test_stage_seeds_and_stage_sizes_are_unchanged():
    assert [g.hash for g in sample_stage_graphs("regular", "ws", 32, 5, k=4, p=0.75)] == GOLDEN_REGULAR_WS


# -- WS-flex ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("k", [2.0, 3.5, 4.0, 5.25])
def test_ws_flex_has_round_nk_over_2_edges_and_k4_p0_is_the_ws_ring(k):
    for p in (0.0, 0.3):
        g = sample_graph("ws_flex", 16, 3, k=k, p=p)
        assert len(g.edges) == round(16 * k / 2)  # rewiring moves edges, never adds or drops one
        assert g.describe() == f"WS-flex({k:g}, {p:g}) N=16"
    assert sample_graph("ws_flex", 16, 0, k=4.0, p=0.0).edges == sample_graph("ws", 16, 0, k=4, p=0.0).edges


def test_ws_flex_values_are_checked():
    from randwire.models.errors import ConfigError

    with pytest.raises(ConfigError, match=r"^k=1\.5 is out of range: allowed an average degree in \[2, n - 1\]"):
        sample_graph("ws_flex", 16, 0, k=1.5, p=0.2)
    with pytest.raises(ConfigError, match=r"^k=7\.5 is out of range: allowed an average degree in \[2, 7\] for the 8"):
        sample_stage_graphs("regular", "ws_flex", 16, 0, k=7.5, p=0.2)  # the regular regime's first stage: n/2


# -- any function (graph=networkx) ------------------------------------------------------------------------


def cyclic(n, seed=None):
    import networkx as nx

    return nx.cycle_graph(n, create_using=nx.DiGraph)


def labelled(n, seed=None):
    import networkx as nx

    return nx.relabel_nodes(nx.path_graph(n), {i: f"v{i}" for i in range(n)})


def too_few(n, seed=None):
    import networkx as nx

    return nx.path_graph(n - 1)


def looped(n, seed=None):
    import networkx as nx

    g = nx.path_graph(n)
    g.add_edge(2, 2)
    return g


def reverse_dag(n, seed=0):
    """A DAG whose edges run from higher to lower labels: renumbered in topological order when stored."""
    import networkx as nx

    return nx.DiGraph([(v, v - 1) for v in range(1, n)] + [(n - 1, 0)])


NETWORKX = {"fn": "networkx.powerlaw_cluster_graph", "kwargs": {"m": 3, "p": 0.5}}


def test_a_networkx_function_gives_stored_hashed_graphs_per_seed():
    a, b = (
        sample_stage_graphs("small", "networkx", 16, 0, **NETWORKX),
        sample_stage_graphs("small", "networkx", 16, 1, **NETWORKX),
    )
    again = sample_stage_graphs("small", "networkx", 16, 0, **NETWORKX)
    assert [g.hash for g in a] == [g.hash for g in again] and [g.hash for g in a] != [g.hash for g in b]
    assert len({g.hash for g in a}) == 3  # each stage its own seed, so its own graph
    assert all(g.n == 16 and g.generator == "networkx" and g.params == NETWORKX for g in a)
    assert a[0].describe() == "powerlaw_cluster_graph(m=3, p=0.5) N=16"
    assert all(u < v for g in a for u, v in g.edges)


def test_a_function_that_seeds_numpys_legacy_rng_gets_the_stage_seeds_lower_32_bits():
    """Issue 28: stage seeds are 63-bit; numpy's RandomState (maybe_regular_expander_graph seeds one) takes
    seeds below 2**32, and such a function failed as if the user's parameters were wrong."""
    import networkx as nx

    from randwire.models.graphs import derive_stage_seed

    params = {"fn": "networkx.maybe_regular_expander_graph", "kwargs": {"d": 4}}
    graphs = sample_stage_graphs("small", "networkx", 16, 0, **params)
    for i, g in enumerate(graphs):
        seed = derive_stage_seed(0, i)
        assert seed >= 2**32 and g.seed == seed  # the stored stage seed: the 32-bit one follows from it
        assert g.params["seed_bits"] == 32  # the rule is on record with each graph
        reference = nx.maybe_regular_expander_graph(16, 4, seed=seed & 0xFFFFFFFF)
        assert g.edges == tuple(sorted((min(u, v), max(u, v)) for u, v in reference.edges()))
        assert all(d == 4 for _, d in reference.degree())
    # a function that takes any seed records no rule
    plain = sample_stage_graphs("small", "networkx", 16, 0, fn="networkx.gnp_random_graph", kwargs={"p": 0.3})
    assert all("seed_bits" not in g.params for g in plain)


def test_a_directed_acyclic_graph_keeps_its_directions_in_topological_order():
    (g, *_) = sample_stage_graphs("small", "networkx", 6, 0, fn="test_generators.reverse_dag", kwargs={})
    # 5 -> 4 -> 3 -> 2 -> 1 -> 0 and 5 -> 0, renumbered: 0 -> 1 -> ... -> 5 and 0 -> 5
    assert (
        g.edges == ((0, 1), (0, 5), (1, 2), (2, 3), (3, 4), (4, 5)) and g.input_nodes == [0] and g.output_nodes == [5]
    )


@pytest.mark.parametrize(
    "fn,kwargs,message",
    [
        (
            "test_generators.cyclic",
            {},
            "graph.fn=test_generators.cyclic gives a directed graph with a cycle (0 -> 1 -> ",
        ),
        ("test_generators.labelled", {}, "graph.fn=test_generators.labelled labels its nodes 'v0', 'v1', "),
        (
            "test_generators.too_few",
            {},
            "graph.fn=test_generators.too_few gives 7 nodes for n=8: a stage graph has exactly n",
        ),
        ("test_generators.looped", {}, "graph.fn=test_generators.looped gives self loops (e.g. (2, 2))"),
        ("networkx.__version__", {}, "fn='networkx.__version__' is not callable (it is a str)"),
        ("no_such_module.gen", {}, "fn='no_such_module.gen' is not importable: ModuleNotFoundError: No module named"),
        ("ring", {}, "fn='ring' is not allowed: an import path module.function"),
        ("networkx.powerlaw_cluster_graph", {"m": 3}, "kwargs={'m': 3} is not allowed: the arguments of networkx"),
        (
            "networkx.powerlaw_cluster_graph",
            {"m": "x", "p": 0.5},
            "graph.fn=networkx.powerlaw_cluster_graph failed for n=8",
        ),
    ],
    ids=[
        "cyclic",
        "labels",
        "node-count",
        "self-loop",
        "not-callable",
        "no-module",
        "no-path",
        "missing-arg",
        "bad-type",
    ],
)
def test_an_unusable_generator_is_one_line(fn, kwargs, message):
    from randwire.models.errors import ConfigError

    with pytest.raises(ConfigError) as info:
        sample_stage_graphs("small", "networkx", 8, 0, fn=fn, kwargs=kwargs)
    assert str(info.value).startswith(message) and "\n" not in str(info.value), str(info.value)


def test_a_generator_that_ignores_the_seed_is_said_before_training(compose_cfg, capsys):
    from randwire.training.plan import check_network_cfg

    check_network_cfg(compose_cfg(*TINY, "graph=networkx", "graph.fn=networkx.cycle_graph"))
    assert "warning: graph.fn=networkx.cycle_graph gave the same graph for two seeds" in capsys.readouterr().err
    check_network_cfg(
        compose_cfg(
            *TINY,
            "graph=networkx",
            "graph.fn=networkx.powerlaw_cluster_graph",
            "+graph.kwargs.m=2",
            "+graph.kwargs.p=0.5",
        )
    )
    assert "warning" not in capsys.readouterr().err


def test_c_auto_solves_widths_on_any_generators_graphs(compose_cfg):
    from randwire.models.complexity import Cx, network_cx
    from randwire.training.components import build_net

    cfg = compose_cfg(
        *TINY,
        "graph=networkx",
        "graph.fn=networkx.powerlaw_cluster_graph",
        "+graph.kwargs.m=2",
        "+graph.kwargs.p=0.5",
        "regime.c=auto",
        "regime.flops=3e6",
    )
    net = build_net(cfg)
    flops = network_cx(Cx(32, 32), net.spec, net.graphs).flops
    assert abs(flops / 3e6 - 1) <= 0.01 and net.graphs[0].generator == "networkx"


# -- hand-made graphs (graph=file) ----------------------------------------------------------------------


def test_file_graphs_from_stored_json_and_edge_lists(tmp_path):
    from randwire.models.errors import ConfigError

    stored = sample_graph("er", 10, 4, p=0.3)
    stored.save(tmp_path / "er.json")
    (tmp_path / "chain.txt").write_text("# a chain: a plain network\n0 1\n1 2\n2 3\n# n: 6\n")
    (tmp_path / "dag.txt").write_text("# directed\n2 1\n1 0\n")
    graphs = sample_stage_graphs(
        "small", "file", None, 0, paths=[str(tmp_path / p) for p in ("er.json", "chain.txt", "dag.txt")]
    )
    assert graphs[0].edges == stored.edges and graphs[0].params == {"file": "er.json"} and graphs[0].seed == 0
    assert graphs[1].n == 6 and graphs[1].edges == ((0, 1), (1, 2), (2, 3)) and graphs[1].output_nodes == [3, 4, 5]
    assert graphs[2].edges == ((0, 1), (1, 2)) and graphs[2].describe() == "file:dag.txt N=3"
    assert sample_stage_graphs("small", "file", None, 7, paths=[str(tmp_path / "chain.txt")]) == [graphs[1]] * 3
    (tmp_path / "bad.txt").write_text("0 1\n1 x\n")
    with pytest.raises(ConfigError, match=r"bad.txt:2: '1 x' is not an edge 'u v' of two node numbers$"):
        sample_stage_graphs("small", "file", None, 0, paths=[str(tmp_path / "bad.txt")])
    with pytest.raises(ConfigError, match=r"has the wrong number of files: 1 file \(every stage\) or 4 \(one per"):
        sample_stage_graphs("regular", "file", None, 0, paths=[str(tmp_path / "chain.txt")] * 2)
    (tmp_path / "er.json").write_text((tmp_path / "er.json").read_text().replace('"n": 10', '"n": 11'))
    with pytest.raises(ConfigError, match=r"er.json: content hash mismatch"):
        sample_stage_graphs("small", "file", None, 0, paths=[str(tmp_path / "er.json")])


# -- the three commands, end to end on experiment=cpu_budget (tiny) -------------------------------------

CPU_TINY = [
    "experiment=cpu_budget",
    "graph.n=8",
    "regime.c=8",
    "regime.head_channels=16",
    "trainer.max_epochs=1",
    "+trainer.limit_train_batches=2",
    "+trainer.limit_val_batches=1",
    "+trainer.limit_test_batches=1",
    "logger=none",
    "extras.print_config=false",
]


@pytest.mark.slow
def test_networkx_own_file_and_ws_flex_sweep_train_and_feed_the_stats_analysis(tmp_path, compose_cfg, monkeypatch):
    """The README's three commands on experiment=cpu_budget (tiny): the user's generator file and hand-made
    graphs trained in-process (the user's folder is the current one), the WS-flex sweep as a command."""
    from randwire.training.run import train as train_run

    (tmp_path / "mygens.py").write_text((ROOT / "examples" / "mygens.py").read_text())  # the README's example
    (tmp_path / "chain.txt").write_text("0 1\n1 2\n2 3\n3 4\n")
    monkeypatch.chdir(tmp_path)
    runs = {
        "nx": ["graph=networkx", "graph.fn=mygens.ring_of_cliques", "+graph.kwargs.k=4"],
        "file": ["graph=file", "graph.paths=[chain.txt]"],
    }
    for name, args in runs.items():
        assert train_run(compose_cfg(*CPU_TINY, *args, run_dir=tmp_path / name))["status"] == "ok"
        assert json.loads((tmp_path / name / "metrics.json").read_text())["status"] == "ok"
    train = [sys.executable, str(ROOT / "train.py"), *CPU_TINY]
    sweep = tmp_path / "flex"
    run_script(
        [*train, "graph=ws_flex", "graph.k=3.5", "graph.p=0.2", f"hydra.sweep.dir={sweep}", "-m", "seed=0,1"],
        cwd=tmp_path,
        timeout=300,
        expect=0,
    )
    from randwire.analysis.cli import main as analysis

    folders = [str(sweep), str(tmp_path / "nx"), str(tmp_path / "file")]
    assert analysis(["stats", *folders, "--out", str(tmp_path / "an")]) == 0
    import pandas as pd

    from randwire.analysis.tables import load_table, setting_name

    table = load_table(folders)  # as stats reads them
    names = sorted(table.apply(setting_name, axis=1).unique())  # stats.png's legend
    assert names[0] == "WS-flex(3.5, 0.2)" and names[2] == "ring_of_cliques(k=4)"
    assert re.fullmatch(r"file:chain\.txt#[0-9a-f]{8}", names[1])  # named by its content
    assert len(pd.read_csv(tmp_path / "an" / "runs.csv")) == 4
    assert analysis(["grid", *folders, "--out", str(tmp_path / "an")]) == 0
    grid = pd.read_csv(tmp_path / "an" / "grid.csv")  # the paper's order first, then the others
    assert list(grid["setting"]) == ["WS-flex(3.5, 0.2)", "ring_of_cliques(k=4)", names[1]]
    assert list(grid["n"]) == [2, 1, 1]
    assert table["stage0_avg_clustering"].notna().all() and (tmp_path / "an" / "stats.png").is_file()


@pytest.mark.parametrize(
    "content,message",
    [
        ("# only a comment\n", r"bad.txt: no edges and no '# n: N' line \(an edge list has 'u v' lines"),
        ("", r"bad.txt: no edges and no '# n: N' line"),
        ("# n: 0\n", r"bad.txt:1: '# n: 0' is not a node count \(an integer >= 1\)$"),
        ("# n: twelve\n0 1\n", r"bad.txt:1: '# n: twelve' is not a node count"),
        ("1 2\n2 3\n", r"bad.txt: node 0 of 0..3 is in no edge \(numbered from 1\? nodes are 0..n-1\): number"),
        ("0 1\n1 3\n", r"bad.txt: node 2 of 0..3 is in no edge: number the nodes 0..n-1, or keep isolated nodes with"),
    ],
    ids=["comment-only", "empty", "n-zero", "n-word", "one-based", "gap"],
)
def test_an_odd_edge_list_is_one_line(tmp_path, content, message):
    """Issue 28: these were an IndexError in the execution, a ValueError, or isolated nodes made up silently."""
    from randwire.models.errors import ConfigError

    (tmp_path / "bad.txt").write_text(content)
    with pytest.raises(ConfigError, match=message):
        sample_stage_graphs("small", "file", None, 0, paths=[str(tmp_path / "bad.txt")])
    (tmp_path / "gap.txt").write_text("# n: 4\n0 1\n1 3\n")  # said: node 2 is isolated on purpose
    assert sample_stage_graphs("small", "file", None, 0, paths=[str(tmp_path / "gap.txt")])[0].n == 4
    from randwire.training.run import train

    cfg = compose_config("train", [*TINY, "graph=file", f"graph.paths=[{tmp_path / 'bad.txt'}]"])
    cfg.paths.output_dir = str(tmp_path / "run")
    with pytest.raises(ConfigError, match=message) as info:  # train.py: this line, exit 2, nothing written
        train(cfg)
    assert "\n" not in str(info.value) and not (tmp_path / "run").exists()


def test_a_function_whose_first_parameter_is_not_n_gets_the_wrapper_that_fixes_it(tmp_path, monkeypatch):
    """Issue 28: random_regular_graph(d, n) was refused with Python's own TypeError alone."""
    from randwire.models.errors import BadValue

    with pytest.raises(BadValue) as err:
        sample_stage_graphs("small", "networkx", 16, 0, fn="networkx.random_regular_graph", kwargs={"d": 3})
    wrapper = "def f(n, d, seed=None): return networkx.random_regular_graph(d, n, seed=seed)"
    assert wrapper in str(err.value) and "\n" not in str(err.value)
    (tmp_path / "mywrap.py").write_text(f"import networkx\n\n\n{wrapper}\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    graphs = sample_stage_graphs("small", "networkx", 16, 0, fn="mywrap.f", kwargs={"d": 3})
    assert all(len(g.edges) == 16 * 3 // 2 for g in graphs)  # 3-regular on 16 nodes
