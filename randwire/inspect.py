"""See a generator's networks before spending GPU time on them.

    python -m randwire.inspect graph=ws graph.k=4 graph.p=0.75 regime=small regime.c=78 seed=0 out=inspect_out

Keys are those of the training config (``graph.*``, ``regime.*``, ``node_op``, ``seed``); choosing a group
(``graph=ba``) brings that generator's paper defaults, as in ``conf/graph/*.yaml``. Prints per-stage
node / edge / input / output counts, params and FLOPs, and writes each stage's DAG as PNG and JSON.
"""

from __future__ import annotations

import sys
from pathlib import Path

from .complexity import Cx
from .graphs import GENERATOR_PARAMS

PAPER_GRAPHS = {"er": {"p": 0.2}, "ba": {"m": 5}, "ws": {"k": 4, "p": 0.75}}
PAPER_REGIMES = {"small": {"c": 78, "image_size": 224}, "regular": {"c": 109, "image_size": 224},
                 "lowres": {"c": 78, "image_size": 32}}
USAGE = __doc__


def parse_args(argv: list[str]) -> dict:
    """Hydra-style ``key=value`` overrides on top of the paper defaults (no Hydra needed here)."""
    from omegaconf import OmegaConf

    pairs = dict(a.split("=", 1) for a in argv if "=" in a)
    bad = [a for a in argv if "=" not in a]
    if bad:
        raise ValueError(f"argument {bad[0]!r} is not a key=value override; see `python -m randwire.inspect --help`")
    graph = pairs.pop("graph", "ws")
    regime = pairs.pop("regime", "small")
    if graph not in PAPER_GRAPHS:
        raise ValueError(f"graph={graph!r} is not a known generator: allowed one of {list(PAPER_GRAPHS)}")
    if regime not in PAPER_REGIMES:
        raise ValueError(f"regime={regime!r} is not allowed: choose one of {list(PAPER_REGIMES)}")
    base = OmegaConf.create({
        "graph": {"name": graph, "n": 32, **PAPER_GRAPHS[graph]},
        "regime": {"name": regime, **PAPER_REGIMES[regime]},
        "node_op": "sep_conv", "seed": 0, "num_classes": 1000, "in_channels": 3, "out": "inspect_out",
    })
    cfg = OmegaConf.merge(base, OmegaConf.from_dotlist([f"{k}={v}" for k, v in pairs.items()]))
    known = {"graph", "regime", "node_op", "seed", "num_classes", "in_channels", "out"}
    unknown = set(cfg) - known
    if unknown:
        raise ValueError(f"unknown key {sorted(unknown)[0]!r}: allowed {sorted(known)}")
    return OmegaConf.to_container(cfg)


def stage_rows(net, image_size: int) -> list[dict]:
    """One row per random stage: counts, resolution, params and FLOPs of that stage alone."""
    cx = Cx(h=image_size, w=image_size)
    for m in net.stem:
        cx = m.complexity(cx)
    rows = []
    for i, stage in enumerate(net.stages):
        before = (cx.flops, cx.params, cx.h)
        cx = stage.complexity(cx)
        g = stage.graph
        rows.append({
            "stage": i, "graph": g.describe(), "seed": g.seed, "nodes": g.n, "edges": len(g.edges),
            "inputs": len(g.input_nodes), "outputs": len(g.output_nodes), "depth": max(g.levels()) + 1,
            "channels": f"{stage.c_in}->{stage.c_out}", "resolution": f"{before[2]}->{cx.h}",
            "params": cx.params - before[1], "flops": cx.flops - before[0], "hash": g.hash[:12],
        })
    return rows


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if any(a in ("-h", "--help") for a in argv):
        print(USAGE)
        return 0
    from .network import build_network
    from .complexity import complexity
    from .plotting import draw_stage

    try:
        cfg = parse_args(argv)
        g, r = dict(cfg["graph"]), dict(cfg["regime"])
        params = {k: g[k] for k in GENERATOR_PARAMS[g["name"]] if k in g}
        extra = set(g) - set(params) - {"name", "n"}
        if extra:
            raise ValueError(f"graph={g['name']!r} takes parameters {list(GENERATOR_PARAMS[g['name']])}, got {sorted(extra)}")
        net = build_network(
            r["name"], graph=g["name"], n=g["n"], c=r["c"], seed=cfg["seed"], node_op=cfg["node_op"],
            num_classes=cfg["num_classes"], in_channels=cfg["in_channels"], **params,
        )
        size = int(r["image_size"])
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    rows = stage_rows(net, size)
    total = complexity(net, size)
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{net.graphs[-1].describe()} · regime={r['name']} C={r['c']} · seed={cfg['seed']} · {size}²")
    for col in ("stage", "nodes", "edges", "inputs", "outputs", "depth", "channels", "resolution", "params", "flops", "hash"):
        table.add_column(col, justify="left" if col in ("channels", "resolution", "hash") else "right")
    for row in rows:
        table.add_row(*(f"{row[c] / 1e6:.3f}M" if c in ("params", "flops") else str(row[c]) for c in
                        ("stage", "nodes", "edges", "inputs", "outputs", "depth", "channels", "resolution",
                         "params", "flops", "hash")))
    console = Console()
    if not console.is_terminal:
        console = Console(width=max(console.width, 130))  # logs and pipes: do not squeeze the table
    console.print(table)
    console.print(f"whole network: params {total['params'] / 1e6:.3f}M, FLOPs {total['flops'] / 1e6:.1f}M (multiply-adds)")
    out = Path(cfg["out"])
    for i, graph in enumerate(net.graphs):
        graph.save(out / f"stage{i}.json")
        draw_stage(graph, out / f"stage{i}.png", title=f"stage {i}: {graph.describe()}  edges={len(graph.edges)}")
    console.print(f"wrote {len(net.graphs)} stage pictures and graphs to {out}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
