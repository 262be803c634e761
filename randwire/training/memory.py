"""Peak memory of one piece of work (a training step, an inference pass), on CPU and on GPU.

CUDA: the caching allocator's peak above what was allocated before. CPU: PyTorch has no allocator
statistics, and the process RSS counts everything the process ever touched (data, Python, freed pages), so
glibc's bytes in use (``mallinfo2``: malloc'd + mmap'd) are read after every aten op by a dispatch mode; the
peak above the level before. Both count activations, gradients and temporaries of that piece of work, not
the weights that were already there. The dispatch mode costs a Python call per op: measure one step, not
every step.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable

import torch

from .private_apis import torch_dispatch_mode


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (n, ctypes.c_size_t)
        for n in (
            "arena",
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",
            "usmblks",
            "fsmblks",
            "uordblks",
            "fordblks",
            "keepcost",
        )
    ]


try:
    _libc = ctypes.CDLL("libc.so.6")
    _libc.mallinfo2.restype = _MallInfo2
except (OSError, AttributeError):  # not glibc >= 2.33 (musl, macOS): no CPU measurement
    _libc = None


def cpu_heap_available() -> bool:
    return _libc is not None


def _heap_in_use() -> int:
    m = _libc.mallinfo2()
    return m.uordblks + m.hblkhd


_warmed = False


class CPUHeapPeak(torch_dispatch_mode()):
    """``with CPUHeapPeak() as p: ...`` then ``p.peak`` (bytes above the level at entry)."""

    def __enter__(self):
        global _warmed
        if _libc is None:
            raise RuntimeError("CPU heap measurement needs glibc >= 2.33 (mallinfo2)")
        if not _warmed:  # the first op under a Python dispatch mode allocates ~26 MiB once (lazy init)
            _warmed = True
            with CPUHeapPeak():
                torch.zeros(1).add(1)
        self.base = _heap_in_use()
        self.peak = 0
        return super().__enter__()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        self.peak = max(self.peak, _heap_in_use() - self.base)
        return out


class PeakMemory:
    """Peak memory above the level at ``__enter__``, on ``cuda`` (allocator) or ``cpu`` (:class:`CPUHeapPeak`).

    A context manager, and also entered and left from two different hooks (a Lightning callback's batch
    start and end). ``kind`` names the method: ``cuda`` or ``cpu_heap``.
    """

    def __init__(self, device: str) -> None:
        self.kind = "cuda" if device == "cuda" else "cpu_heap"
        self.peak_mb: float | None = None
        self._probe: CPUHeapPeak | None = None

    def __enter__(self) -> PeakMemory:
        if self.kind == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self._base = torch.cuda.memory_allocated()
        else:
            self._probe = CPUHeapPeak().__enter__()
        return self

    def __exit__(self, *exc) -> None:
        if self.kind == "cuda":
            torch.cuda.synchronize()
            self.peak_mb = (torch.cuda.max_memory_allocated() - self._base) / 2**20
        elif self._probe is not None:
            probe, self._probe = self._probe, None
            probe.__exit__(*exc)
            self.peak_mb = probe.peak / 2**20


def peak_memory_mb(fn: Callable[[], object], device: str) -> float | None:
    """Peak memory (MiB) of ``fn()`` above the memory in use before it; None where it cannot be measured."""
    if device != "cuda" and _libc is None:
        return None
    with PeakMemory(device) as probe:
        fn()
    return probe.peak_mb
