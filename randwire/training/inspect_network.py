"""See a generator's networks before spending GPU time on them: the network train.py would train.

    python -m randwire.training.inspect_network experiment=paper_small seed=0 out=inspect_out
    python -m randwire.training.inspect_network experiment=cpu_budget graph=ba graph.m=5 regime=small

Takes train.py's overrides (groups such as ``graph=ba``, presets such as ``experiment=paper_small``, keys
such as ``graph.k=6``) and composes the same ``conf/``, so it shows exactly the network train.py would
build, at ``data.image_size``; ``out=DIR`` is inspect's own. Prints per-stage node / edge / input / output
counts, params and FLOPs, and writes each stage's DAG as PNG and JSON. Loads no data.
"""

from __future__ import annotations

import sys
from pathlib import Path

from ..models.complexity import Cx

USAGE = __doc__
PROG = "python -m randwire.training.inspect_network"


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
        rows.append(
            {
                "stage": i,
                "graph": g.describe(),
                "seed": g.seed,
                "nodes": g.n,
                "edges": len(g.edges),
                "inputs": len(g.input_nodes),
                "outputs": len(g.output_nodes),
                "depth": max(g.levels()) + 1,
                "channels": f"{stage.c_in}->{stage.c_out}",
                "resolution": f"{before[2]}->{cx.h}",
                "params": cx.params - before[1],
                "flops": cx.flops - before[0],
                "hash": g.hash[:12],
            }
        )
    return rows


COLUMNS = ("stage", "nodes", "edges", "inputs", "outputs", "depth", "channels", "resolution", "params", "flops", "hash")


def _network(overrides: list[str]):
    """The config and network train.py would build from these overrides; a bad one raises one line."""
    from ..models.errors import ConfigError
    from .components import build_net
    from .config import compose_config
    from .plan import check_network_cfg

    bad = next((a for a in overrides if "=" not in a), None)
    if bad is not None:
        raise ConfigError(f"argument {bad!r} is not a key=value override; see `{PROG} --help`")
    cfg = compose_config("train", overrides)
    return cfg, build_net(cfg, check_network_cfg(cfg))


def _print_table(cfg, net) -> None:
    from rich.table import Table

    from ..models.complexity import complexity
    from .cli import wide_console

    size, r = int(cfg.data.image_size), cfg.regime
    stem = net.spec.stem_channels
    table = Table(
        title=f"{net.graphs[-1].describe()} · regime={r.name} C={net.spec.c}{' (auto)' if r.c == 'auto' else ''}"
        f"{f' conv1 {stem}' if stem else ''} · node_op={cfg.node_op.name} · "
        f"seed={cfg.seed} · {size}² · {cfg.data.num_classes} classes"
    )
    for col in COLUMNS:
        table.add_column(col, justify="left" if col in ("channels", "resolution", "hash") else "right")
    for row in stage_rows(net, size):
        table.add_row(*(f"{row[c] / 1e6:.3f}M" if c in ("params", "flops") else str(row[c]) for c in COLUMNS))
    total = complexity(net, size)
    console = wide_console()
    console.print(table)
    console.print(
        f"whole network: params {total['params']:,} ({total['params'] / 1e6:.3f}M), "
        f"FLOPs {total['flops']:,} ({total['flops'] / 1e6:.1f}M multiply-adds)"
    )


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if any(a in ("-h", "--help") for a in argv):
        print(USAGE)
        return 0
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from ..models.errors import ConfigError
    from ..models.plotting import draw_stage
    from .config import composition_error_line

    out = Path(next((a.split("=", 1)[1] for a in argv if a.startswith("out=")), "inspect_out"))
    try:
        cfg, net = _network([a for a in argv if not a.startswith("out=")])
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except (HydraException, OmegaConfBaseException) as err:
        print(f"error: {composition_error_line(err)}", file=sys.stderr)
        return 2
    _print_table(cfg, net)
    for i, graph in enumerate(net.graphs):
        graph.save(out / f"stage{i}.json")
        draw_stage(graph, out / f"stage{i}.png", title=f"stage {i}: {graph.describe()}  edges={len(graph.edges)}")
    print(f"wrote {len(net.graphs)} stage pictures and graphs to {out}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
