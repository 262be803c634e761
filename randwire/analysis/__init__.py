"""The paper's population analyses as commands over run or sweep folders (``damage`` also over
checkpoints). They read what runs wrote (``metrics.json``, ``graphs/stage*.json``, checkpoints); they never
retrain and never re-sample a graph.

    python -m randwire.analysis grid PATH... [--out DIR] [--wandb [PROJECT]]      Fig. 3   (grid.py)
    python -m randwire.analysis damage PATH... [--out DIR] [--split test]           Fig. 5   (damage.py)
    python -m randwire.analysis nodeops PATH... [--out DIR]                         Fig. 6   (nodeops.py)
    python -m randwire.analysis stats PATH... [--out DIR]                           statistics vs accuracy

``grid``: top-1 mean ± std over the instances of every generator setting (``grid.csv``: one row per
setting with failed and never-started jobs; ``grid.png``: one panel per generator, ER over P, BA over M, WS
over P with a line per K) and pycls-style error EDFs (``edf.png``: per generator, the fraction of its
trained instances with test error below x), because the paper's claim is about distributions.

``damage``: every node and every edge of every random stage of trained networks removed in turn, the
damaged network evaluated (``damage.csv``, ``damage.png``: Δ top-1 against the removed node's out-degree
or the edge target's in-degree).

``nodeops``: one accuracy series per node operation over the generator settings (``nodeops.csv``), the
Pearson r of every pair (``nodeops_pearson.csv``; the paper: 0.91-0.98) and ``nodeops.png``.

``stats``: the networkx statistics of each stage graph — average clustering and average shortest path
length of the undirected graph, degree mean/std/max, input and output nodes, DAG depth and width — joined to
each run's accuracy (``runs.csv``, one row per run), their Pearson r with test top-1 (``correlations.csv``)
and one scatter per statistic (``stats.png``).

PATHs: run folders, sweep folders or a parent of several sweeps; the jobs of a sweep that failed, were
killed or never started are counted under their setting. Reading: the shortest-path length of a
disconnected graph (possible for sparse ER) is taken on its largest connected component
(``*_connected`` says whether the whole graph was).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from .damage import damage
from .grid import grid
from .nodeops import nodeops
from .stats import stats
from .tables import _fail, job_table, load_table, run_table
from .wandb_media import log_to_wandb

__all__ = ["damage", "grid", "job_table", "load_table", "log_to_wandb", "main", "nodeops", "run_table", "stats"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m randwire.analysis", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="analysis", required=True)
    for name, what in (("grid", "Fig. 3: top-1 mean ± std per generator setting, and error EDFs"),
                       ("damage", "Fig. 5: remove each node / edge of trained networks, Δ top-1 vs degree"),
                       ("nodeops", "Fig. 6: each node operation's top-1 over generator settings, pairwise Pearson r"),
                       ("stats", "graph statistics of every run vs its accuracy")):
        p = sub.add_parser(name, help=what, description=what)
        if name == "damage":
            p.add_argument("paths", nargs="+", metavar="PATH",
                           help="checkpoint files, or run / sweep folders (each finished run's tested checkpoint)")
            p.add_argument("--split", choices=("test", "val", "train"), default="test", help="default: test")
            p.add_argument("--data-root", default=None, help="where the data is now, if it moved since training")
            p.add_argument("--batch-size", type=int, default=None, help="default: the training batch size")
        else:
            p.add_argument("paths", nargs="+", metavar="PATH", help="run folders, sweep folders, or a parent of several sweeps")
        p.add_argument("--out", type=Path, default=None, help="where to write (default: <first path>/analysis)")
        p.add_argument("--wandb", nargs="?", const="randwire", default=None, metavar="PROJECT",
                       help="also log the plots (images) and CSVs (tables) to W&B, project PROJECT (default randwire)")
    args = parser.parse_args(argv)
    if args.analysis == "damage":
        if args.batch_size is not None and args.batch_size < 1:
            _fail(f"--batch-size {args.batch_size} is not allowed: an integer >= 1")
        written = damage(args.paths, args.out, args.split, args.data_root, args.batch_size)
    else:
        written = {"grid": grid, "nodeops": nodeops, "stats": stats}[args.analysis](args.paths, args.out)
    for what, path in written.items():
        print(f"{what}: {path}")
    if args.wandb:
        folder = log_to_wandb(args.analysis, written, args.paths, args.wandb, next(iter(written.values())).parent)
        print(f"W&B run: {folder}" if folder else "W&B: disabled (WANDB_MODE=disabled)")
    return 0
