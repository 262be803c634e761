"""One process per run folder: a lock the kernel releases when its holder dies. No dependencies."""

from __future__ import annotations

import os
from pathlib import Path

LOCK_FILE = ".lock"


def _holder(fd: int) -> dict:
    import json

    os.lseek(fd, 0, os.SEEK_SET)
    text = os.read(fd, 4096).decode(errors="replace").strip()
    try:
        record = json.loads(text) if text else {}
    except ValueError:
        record = {}
    return record if isinstance(record, dict) else {}


def _describe(holder: dict) -> str:
    job = f", Slurm job {holder['slurm_job']}" if holder.get("slurm_job") else ""
    return f"host {holder.get('host', '?')}, pid {holder.get('pid', '?')}{job}, since {holder.get('since', '?')}"


def slurm_job_id() -> str | None:
    """This process's Slurm job (``<array job>_<task>`` for an array task, as submitit names them)."""
    if os.environ.get("SLURM_ARRAY_JOB_ID"):
        return f"{os.environ['SLURM_ARRAY_JOB_ID']}_{os.environ.get('SLURM_ARRAY_TASK_ID')}"
    return os.environ.get("SLURM_JOB_ID")


def _same_slurm_job(holder: dict) -> bool:
    """The holder is this very Slurm job in an earlier allocation (a requeue after its node was lost,
    while the shared filesystem still holds the dead node's lock): a job never runs twice at once."""
    mine = slurm_job_id()
    return mine is not None and holder.get("slurm_job") == mine


def is_locked(folder: str | os.PathLike) -> bool:
    """Does a live process hold ``folder``'s lock right now?"""
    import fcntl

    try:
        fd = os.open(Path(folder) / LOCK_FILE, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)


class FolderLock:
    """One process per run folder, for the life of the run: ``flock`` on ``<folder>/.lock``, which the
    kernel (or the NFS server, when the client's lease ends) releases when the holder dies, so a rerun
    after SIGKILL or a Slurm requeue takes the folder over. The file names the holder (host, pid, Slurm
    job, start) for the one line a second process gets; a holder that ended cleanly empties it, so a
    non-empty file found unlocked is a run that died, said once."""

    def __init__(self, folder: str | os.PathLike) -> None:
        self.folder = Path(folder)
        self.fd: int | None = None

    def acquire(self) -> FolderLock:
        import fcntl
        import json
        import socket
        import sys
        import time

        from .errors import FolderInUse

        self.folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.folder / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            if not _same_slurm_job(holder):
                os.close(fd)
                raise FolderInUse(
                    f"{self.folder} is in use by another run ({_describe(holder)}): wait for it to "
                    f"end, or give this run another folder (hydra.run.dir / hydra.sweep.dir)"
                ) from None
            print(
                f"note: {self.folder}: taking over from this Slurm job's earlier allocation ({_describe(holder)})",
                file=sys.stderr,
                flush=True,
            )
        else:
            holder = _holder(fd)
            if holder:
                print(
                    f"note: {self.folder}: the run that held it ended without releasing it ({_describe(holder)}); "
                    f"taking it over",
                    file=sys.stderr,
                    flush=True,
                )
        me = {
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "slurm_job": slurm_job_id(),
            "since": time.strftime("%Y-%m-%d %H:%M:%S"),
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(me) + "\n").encode(), 0)
        self.fd = fd
        return self

    def release(self) -> None:
        import fcntl

        if self.fd is not None:
            os.ftruncate(self.fd, 0)  # ended cleanly: nothing to take over
            # Unlocked outright, not only closed: processes forked meanwhile (data-loader workers, still
            # alive after an interrupted fit in a notebook or test) share the lock and would keep it.
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None

    def __enter__(self) -> FolderLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
