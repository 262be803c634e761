"""W&B as ``conf/logger/wandb.yaml`` builds it, and the setting / sweep names that group runs.

W&B groups runs by ``group``: here the setting (the command-line overrides minus the seed) plus the sweep
it belongs to, so the UI shows mean ± std per setting and a repeated command never merges two sweeps.
"""

from __future__ import annotations

import netrc
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .private_apis import forget_wandb_run_id
from .records import group_name, sweep_name


def _wandb_logged_in() -> bool:
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        return netrc.netrc().authenticators("api.wandb.ai") is not None
    except (FileNotFoundError, netrc.NetrcParseError, OSError):
        return False


def _server_reachable(timeout_s: float = 3.0) -> tuple[bool, str]:
    """Can a TCP connection to the W&B server be opened (WANDB_BASE_URL, default api.wandb.ai:443)?"""
    import socket
    from urllib.parse import urlparse

    url = os.environ.get("WANDB_BASE_URL") or "https://api.wandb.ai"
    parsed = urlparse(url)
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        with socket.create_connection((parsed.hostname or "api.wandb.ai", port), timeout=timeout_s):
            return True, url
    except OSError:
        return False, url


_ANNOUNCED: set[str] = set()  # each reason is said once per process (a sweep's jobs share it)


def _say_once(line: str) -> None:
    if line not in _ANNOUNCED:
        _ANNOUNCED.add(line)
        print(line, file=sys.stderr)


def wandb_mode(mode: str | None = "auto", announce: bool = False) -> str:
    """WANDB_MODE wins; else the config's mode; ``auto`` = online only when credentials exist. An online
    mode whose server cannot be reached within seconds falls back to offline (W&B itself would wait ~100 s
    and then fail the run). With ``announce``, the reason for offline is said once, on stderr."""
    mode = os.environ.get("WANDB_MODE") or mode or "auto"
    if mode == "auto":
        mode = "online" if _wandb_logged_in() else "offline"
        if mode == "offline" and announce:
            _say_once(
                "note: W&B logs offline: no login found (WANDB_API_KEY or `wandb login`); "
                "sync later with `wandb sync <run>/wandb/offline-run-*`"
            )
    if mode == "online":
        reachable, url = _server_reachable()
        if not reachable:
            if announce:
                _say_once(
                    f"warning: W&B server {url} is not reachable: logging offline instead "
                    f"(sync later with `wandb sync <run>/wandb/offline-run-*`)"
                )
            mode = "offline"
    return mode


def wandb_logger(
    project: str,
    save_dir: str,
    seed: int | None = None,
    entity: str | None = None,
    mode: str = "auto",
    job_type: str = "train",
    tags: Sequence[str] = (),
    log_graphs: bool = True,
    log_checkpoints: bool = False,
    log_predictions: bool = True,
    group: str | None = None,
):
    """A Lightning ``WandbLogger`` that reattaches to the run folder's W&B run on resume
    (``wandb_id.txt``); ``log_graphs`` / ``log_checkpoints`` / ``log_predictions`` (a detector's picture of
    test predictions) are read by the run at its end."""
    from pytorch_lightning.loggers import WandbLogger

    mode = wandb_mode(mode, announce=True)
    id_file = Path(save_dir) / "wandb_id.txt"
    run_id = id_file.read_text().strip() if id_file.exists() else None
    setting, sweep = group_name(), sweep_name()
    logger = WandbLogger(
        project=project,
        entity=entity,
        group=group or (f"{setting}@{sweep}" if sweep else setting),
        name=f"{setting}|seed={seed}"[:120],
        job_type=job_type,
        tags=[*map(str, tags), *([f"sweep:{sweep}"] if sweep else [])],
        save_dir=str(save_dir),
        id=run_id,
        offline=mode == "offline",
        mode="disabled" if mode == "disabled" else None,
        log_model=False,
        resume="allow" if run_id else None,
    )
    logger.randwire_options = {
        "log_graphs": bool(log_graphs),
        "log_checkpoints": bool(log_checkpoints),
        "log_predictions": bool(log_predictions),
    }
    return logger


def log_run_artifacts(
    loggers: Sequence[Any], run_dir: Path, num_stages: int, pictures: dict[str, str] | None = None
) -> None:
    """Stage pictures as media; stage graphs and (optionally) checkpoints as W&B artifacts; ``pictures``
    (``{"test/predictions": path}``, a detector's) as media where ``log_predictions``."""
    for logger in loggers:
        options = getattr(logger, "randwire_options", None)
        if options is None:
            continue
        import wandb

        run = logger.experiment
        if pictures and options.get("log_predictions", True):
            run.log({key: wandb.Image(path) for key, path in pictures.items()})
        if options["log_graphs"]:
            drawn = [run_dir / "graphs" / f"stage{i}.png" for i in range(num_stages)]
            if all(path.is_file() for path in drawn):  # extras.draw_graphs
                run.log({f"graphs/stage{i}": wandb.Image(str(path)) for i, path in enumerate(drawn)})
            art = wandb.Artifact(f"graphs-{run.id}", type="stage-graphs")
            for i in range(num_stages):
                art.add_file(str(run_dir / "graphs" / f"stage{i}.json"))
            run.log_artifact(art)
        ckpts = sorted((run_dir / "checkpoints").glob("*.ckpt")) if (run_dir / "checkpoints").is_dir() else []
        if options["log_checkpoints"] and ckpts:
            art = wandb.Artifact(f"checkpoints-{run.id}", type="model")
            for path in ckpts:
                art.add_file(str(path))
            run.log_artifact(art)


def _attach(logger, tries: int = 10, wait_s: float = 2.0):
    """Start (or reattach to) the W&B run. After a kill, a W&B service can still hold the run id ("run ID
    ... is in use"): wait for it; if it never frees it, log to a new W&B run and say so (the results in
    the run folder are not affected)."""
    import time

    for attempt in range(tries):
        try:
            return logger.experiment
        except Exception as err:  # wandb raises its own ServerResponseError
            if "in use" not in str(err):
                raise
            if attempt < tries - 1:
                time.sleep(wait_s)
    old = forget_wandb_run_id(logger)
    run = logger.experiment
    print(
        f"warning: W&B run {old} is still held by another process: this run logs to a new W&B run {run.id}",
        file=sys.stderr,
    )
    return run


def wandb_record(loggers: Sequence[Any], run_dir: Path) -> dict[str, Any] | None:
    """The W&B run of this job (id, project, group, job type, tags), written to ``wandb_id.txt`` at once so
    a rerun in the same folder (resume, requeue) reattaches to it; None without a W&B logger."""
    for logger in loggers:
        if getattr(logger, "randwire_options", None) is None:
            continue
        run = _attach(logger)
        (run_dir / "wandb_id.txt").write_text(run.id + "\n")
        return {
            "id": run.id,
            "project": run.project,
            "group": run.group,
            "job_type": run.job_type,
            "tags": list(run.tags or []),
            "offline": bool(getattr(run.settings, "_offline", False)),
        }
    return None


def finish_wandb(loggers: Sequence[Any], run_dir: Path) -> None:
    """``wandb.finish()`` after every job, or all seeds of a multirun land in one run (LHT #289).

    Best effort: Slurm signals every process of a job step, W&B's service process too, so after a
    preemption or ``scancel`` finishing can fail (``ConnectionResetError: Connection lost``). What was
    logged is in the run's files already; the job's own outcome (interrupted, with its checkpoint) stands."""
    for logger in loggers:
        if getattr(logger, "randwire_options", None) is not None:
            import wandb

            run = wandb.run
            if run is not None:
                (run_dir / "wandb_id.txt").write_text(run.id + "\n")
            try:
                wandb.finish()
            except Exception as err:  # the service is gone: nothing more can be sent to it
                print(
                    f"warning: the W&B run {run.id if run else ''} could not be closed ({type(err).__name__}: "
                    f"{' '.join(str(err).split())[:120]}); what it logged is in {run_dir / 'wandb'} "
                    f"(`wandb sync` it)",
                    file=sys.stderr,
                    flush=True,
                )
                try:
                    wandb.teardown()  # the next job of the sweep starts a new service
                except Exception:
                    pass
