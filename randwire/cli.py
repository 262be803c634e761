"""What the entry points share: Hydra's composition errors and the framework's own as one line, exit 2."""

from __future__ import annotations

import os
import sys
from typing import Callable


def multirun_flag_first(argv: list[str]) -> list[str]:
    """`python train.py graph=ba -m seed=0,1` must work as written: argparse stops matching Hydra's
    positional overrides at the first option, so move -m/--multirun in front of them."""
    flags = [a for a in argv[1:] if a in ("-m", "--multirun")]
    return [argv[0], *flags, *(a for a in argv[1:] if a not in ("-m", "--multirun"))]


def run_app(app: Callable[[], object]) -> None:
    """Run a ``@hydra.main`` app; a config Hydra cannot compose (a value of the wrong type, an unknown key
    or group option) is one line on stderr and exit code 2, like every other bad value."""
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from .config import composition_error_line

    os.environ["HYDRA_FULL_ERROR"] = "1"  # Hydra re-raises instead of printing its own multi-line report
    try:
        app()
    except (HydraException, OmegaConfBaseException) as err:
        print(f"error: {composition_error_line(err)}", file=sys.stderr)
        sys.exit(2)


def report(err: BaseException) -> None:
    """A rejected config, data or checkpoint inside a job: one line, exit code 2."""
    print(f"error: {err}", file=sys.stderr)
    sys.exit(2)
