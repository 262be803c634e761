"""``python -m randwire.analysis <grid|damage|nodeops|stats|power> PATH...``: the analyses as one command."""

from __future__ import annotations

import argparse
from pathlib import Path

from .damage import damage
from .grid import grid
from .nodeops import nodeops
from .power import power
from .stats import stats
from .tables import fail
from .wandb_media import log_to_wandb


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m randwire.analysis", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="analysis", required=True)
    for name, what in (
        ("grid", "Fig. 3: top-1 mean ± std per generator setting, and error EDFs"),
        ("damage", "Fig. 5: remove each node / edge of trained networks, Δ top-1 vs degree"),
        ("nodeops", "Fig. 6: each node operation's top-1 over generator settings, pairwise Pearson r"),
        ("stats", "graph statistics of every run vs its accuracy"),
        ("power", "instances per setting needed to tell apart a difference, at the observed std"),
    ):
        p = sub.add_parser(name, help=what, description=what)
        if name == "damage":
            p.add_argument(
                "paths",
                nargs="+",
                metavar="PATH",
                help="checkpoint files, or run / sweep folders (each finished run's tested checkpoint)",
            )
            p.add_argument("--split", choices=("test", "val", "train"), default="test", help="default: test")
            p.add_argument("--data-root", default=None, help="where the data is now, if it moved since training")
            p.add_argument("--batch-size", type=int, default=None, help="default: the training batch size")
        elif name == "power":
            p.add_argument("paths", nargs="+", metavar="PATH", help="sweep folders (their std over instances)")
            p.add_argument("--diff", type=float, required=True, help="the difference of top-1 to resolve (points)")
            p.add_argument("--alpha", type=float, default=0.05, help="the test's level (default 0.05)")
            p.add_argument("--power", type=float, default=0.8, help="the chance to resolve it (default 0.8)")
        else:
            p.add_argument(
                "paths", nargs="+", metavar="PATH", help="run folders, sweep folders, or a parent of several sweeps"
            )
        p.add_argument("--out", type=Path, default=None, help="where to write (default: <first path>/analysis)")
        p.add_argument(
            "--wandb",
            nargs="?",
            const="randwire",
            default=None,
            metavar="PROJECT",
            help="also log the plots (images) and CSVs (tables) to W&B, project PROJECT (default randwire)",
        )
    args = parser.parse_args(argv)
    if args.analysis == "damage":
        if args.batch_size is not None and args.batch_size < 1:
            fail(f"--batch-size {args.batch_size} is not allowed: an integer >= 1")
        written = damage(args.paths, args.out, args.split, args.data_root, args.batch_size)
    elif args.analysis == "power":
        _check_power_options(args)
        written = power(args.paths, args.out, args.diff, args.alpha, args.power)
    else:
        written = {"grid": grid, "nodeops": nodeops, "stats": stats}[args.analysis](args.paths, args.out)
    for what, path in written.items():
        print(f"{what}: {path}")
    if args.wandb:
        folder = log_to_wandb(args.analysis, written, args.paths, args.wandb, next(iter(written.values())).parent)
        print(f"W&B run: {folder}" if folder else "W&B: disabled (WANDB_MODE=disabled)")
    return 0


def _check_power_options(args) -> None:
    """One line for a difference <= 0, or an alpha or power outside (0, 1)."""
    for key, value, ok in (
        ("--diff", args.diff, args.diff > 0),
        ("--alpha", args.alpha, 0 < args.alpha < 1),
        ("--power", args.power, 0 < args.power < 1),
    ):
        if not ok:
            fail(f"{key} {value:g} is not allowed: {'> 0 (points)' if key == '--diff' else 'in (0, 1)'}")
