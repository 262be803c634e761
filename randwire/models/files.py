"""Writing a run's files: whole or not at all, and a full disk named as such. No dependencies.

Every file a run or an analysis leaves (metrics, configs, stage graphs, checkpoints) goes through
:func:`atomic_write`: a temporary file in the destination folder, renamed over the old one, so a kill or a
full disk mid-write leaves the previous file whole and no temporary file behind.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

# The OS errors that only a write can meet: the place cannot take the file (full, over quota, read-only).
WRITE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG}


def os_error_in(err: BaseException) -> OSError | None:
    """The OSError behind ``err``: itself, or one it was raised from (torch.save turns ENOSPC into
    ``RuntimeError: [enforce fail at inline_container.cc] unexpected pos``, with the OSError as context)."""
    seen: set[int] = set()
    while err is not None and id(err) not in seen:
        if isinstance(err, OSError) and err.errno is not None:
            return err
        seen.add(id(err))
        err = err.__cause__ or (None if err.__suppress_context__ else err.__context__)
    return None


def disk_error(err: BaseException) -> OSError | None:
    """The OSError behind ``err`` if it is a write that the disk refused (see ``WRITE_ERRNOS``), else None."""
    found = os_error_in(err)
    return found if found is not None and found.errno in WRITE_ERRNOS else None


def write_error_line(err: OSError, path: str | os.PathLike | None = None) -> str:
    """``no space left on device while writing <file>``: what a user needs from a failed write."""
    reason = (os.strerror(err.errno) if err.errno else str(err)).lower()
    where = path if path is not None else err.filename
    return f"{reason} while writing {where}" if where else reason


def atomic_write(
    path: str | os.PathLike, content: str | bytes | Callable[[BinaryIO], None], fsync: bool = False
) -> Path:
    """Write ``content`` (text, bytes, or a function that writes to a binary file) to ``path`` atomically.
    A failed write removes its temporary file; a disk error (also one wrapped by torch) is re-raised as an
    ``OSError`` whose filename is ``path``, so its one line names the file the user knows."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as f:
            if callable(content):
                content(f)
            else:
                f.write(content.encode() if isinstance(content, str) else content)
            f.flush()
            if fsync:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as err:
        tmp.unlink(missing_ok=True)
        disk = disk_error(err)
        if disk is not None:
            raise OSError(disk.errno, os.strerror(disk.errno), str(path)) from None
        raise
    return path
