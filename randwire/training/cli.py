"""What the entry points share: Hydra's composition errors and the framework's own as one line, exit 2."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path

from ..models.errors import one_line
from .private_apis import hydra_job_dir


def multirun_flag_first(argv: list[str]) -> list[str]:
    """`python train.py graph=ba -m seed=0,1` must work as written: argparse stops matching Hydra's
    positional overrides at the first option, so move -m/--multirun in front of them."""
    flags = [a for a in argv[1:] if a in ("-m", "--multirun")]
    return [argv[0], *flags, *(a for a in argv[1:] if a not in ("-m", "--multirun"))]


class _SaidOnce(logging.Filter):
    """Drops submitit's ``Bypassing sacct error`` records (each one reaches three handlers: submitit's
    stdout and stderr ones and Hydra's log) and says what they mean once, in one line."""

    said = False

    def filter(self, record: logging.LogRecord) -> bool:
        if "Bypassing sacct error" not in record.getMessage():
            return True
        if not _SaidOnce.said:
            _SaidOnce.said = True
            print(
                "warning: sacct fails here (no Slurm job accounting?): the sweep learns that a job ended from "
                "the job's own result file (said once)",
                file=sys.stderr,
                flush=True,
            )
        return False


def _say_sacct_trouble_once() -> None:
    """submitit polls ``sacct`` for job states and, on a cluster without accounting, logs the same
    ``Bypassing sacct error ... status may be inaccurate`` on every poll: said once per sweep."""
    logger = logging.getLogger("submitit")
    if not any(isinstance(f, _SaidOnce) for f in logger.filters):
        logger.addFilter(_SaidOnce())


def wide_console():
    """A rich Console for tables and trees. Where output goes to a log or a pipe rich assumes 80 columns
    and squeezes every table; there it gets at least 130."""
    from rich.console import Console

    out = Console()
    return out if out.is_terminal else Console(width=max(out.width, 130))


def run_app(app: Callable[[], object]) -> None:
    """Run a ``@hydra.main`` app; a config Hydra cannot compose (a value of the wrong type, an unknown key
    or group option) is one line on stderr and exit code 2, like every other bad value."""
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from .config import composition_error_line, group_override_line
    from .errors import SlurmRefused

    os.environ["HYDRA_FULL_ERROR"] = "1"  # Hydra re-raises instead of printing its own multi-line report
    _say_sacct_trouble_once()
    import warnings

    # conf/hydra/launcher/submitit_*.yaml extend the plugin's schema of the same name on purpose (the names
    # users know); Hydra 1.3 still does this and warns on every launch.
    warnings.filterwarnings(
        "ignore", message=r"\s*'hydra/launcher/submitit_\w+' is validated against ConfigStore schema"
    )
    try:
        app()
    except (HydraException, OmegaConfBaseException) as err:
        print(f"error: {composition_error_line(err)}", file=sys.stderr)
        sys.exit(2)
    except SlurmRefused as err:  # the launcher's: a request Slurm rejects or can never start
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    except ValueError as err:  # `node_op=0`: Hydra's own check of a group override, outside its exceptions
        line = group_override_line(err, sys.argv[1:])
        if line is None:
            raise
        print(f"error: {line}", file=sys.stderr)
        sys.exit(2)
    except OSError as err:  # Hydra could not create the run or sweep folder (read-only, full, not a folder)
        from ..models.files import disk_error, write_error_line

        disk = disk_error(err)
        if disk is not None:  # Hydra's own files (.hydra/, the log): the folder it was making
            folder = hydra_job_dir(err)
            print(
                f"error: {write_error_line(disk, err.filename or folder)} (free some space, or set "
                f"hydra.run.dir / hydra.sweep.dir to another place)",
                file=sys.stderr,
            )
            if folder is not None:
                _discard_if_empty(Path(folder))
        else:
            print(
                f"error: cannot write the output folder {err.filename or ''}: {err.strerror or err} "
                f"(set hydra.run.dir / hydra.sweep.dir, or paths.log_dir, to a writable place)",
                file=sys.stderr,
            )
        sys.exit(2)


def discard_rejected_run(cfg) -> None:
    """A single run rejected before it started leaves no folder behind: Hydra creates the run folder (its
    ``.hydra/`` and log) before the job starts, so remove it when that is all it holds."""
    try:
        run_dir = Path(cfg.paths.output_dir)
    except Exception:
        return
    from .distributed import is_child_rank

    if not is_child_rank():
        _discard_if_empty(run_dir)


def _discard_if_empty(run_dir: Path) -> None:
    """Remove a run folder that holds only what Hydra writes (and its parents this run made)."""
    import shutil

    from .folder_lock import LOCK_FILE, is_locked

    if (
        run_dir.is_dir()
        and not is_locked(run_dir)
        and {p.name for p in run_dir.iterdir()} <= {".hydra", "train.log", LOCK_FILE}
    ):
        shutil.rmtree(run_dir, ignore_errors=True)
        cwd = Path.cwd().resolve()
        for parent in run_dir.resolve().parents:  # outputs/randwire/ too, when this run made them
            if parent == cwd or cwd not in parent.parents or any(parent.iterdir()):
                break
            parent.rmdir()


def in_multirun() -> bool:
    try:
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode

        return HydraConfig.get().mode == RunMode.MULTIRUN
    except Exception:
        return False


def record_failed_job(cfg, err: BaseException, traceback: bool = False) -> None:
    """A job of a sweep that failed: its reason on stderr and in its ``metrics.json`` (status, one line),
    the full traceback in its log when the error was not one of ours."""
    import logging

    from .errors import TrainingDiverged
    from .records import write_failure

    line = one_line(err)
    if traceback:
        logging.getLogger("randwire").exception("job failed")
        line = f"{type(err).__name__}: {line}"
    print(f"error: job failed: {line}", file=sys.stderr)
    run_dir = Path(cfg.paths.output_dir)
    if isinstance(err, TrainingDiverged) and (run_dir / "metrics.json").exists():
        return  # train() already recorded the divergence with its step and epoch
    write_failure(run_dir, cfg, line)


def hand_over_interrupt(err) -> None:
    """After a signal checkpoint, the signal goes to whoever had it before the run: under submitit its
    handler requeues the job and exits (SIGUSR2) or logs and returns (SIGTERM); then exit with the
    signal's code (128 + signum), as the signal would have."""
    import signal

    print(f"{err}", file=sys.stderr, flush=True)
    handler = signal.getsignal(err.signum)
    if callable(handler) and err.signum != signal.SIGINT:  # Python's own SIGINT handler raises KeyboardInterrupt
        handler(err.signum, None)
    sys.exit(128 + err.signum)


def report(err: BaseException) -> None:
    """A rejected config, data or checkpoint inside a job: one line, exit code 2."""
    print(f"error: {err}", file=sys.stderr)
    sys.exit(2)
