"""Out-of-memory handling for separations: recognising it, and capping a CPU job's memory.

On CPU, a worker that runs out of memory is normally killed by the kernel (the job is then
retried elsewhere, and fails the same way). With ``STEMBOT_JOB_MEMORY_MB`` set, the worker
lowers its own RLIMIT_DATA while a separation runs, so an allocation beyond the cap fails
inside torch instead, as a catchable error, and the worker can retry smaller or fail cleanly.
"""

from __future__ import annotations

import contextlib
import logging
import resource
from collections.abc import Iterator
from pathlib import Path

import torch

log = logging.getLogger(__name__)

_CPU_OOM = ("can't allocate memory", "not enough memory")


def is_out_of_memory(exc: BaseException) -> bool:
    """torch's CUDA OOM, its CPU allocator failing, or Python's MemoryError."""
    if isinstance(exc, torch.OutOfMemoryError | MemoryError):
        return True
    return isinstance(exc, RuntimeError) and any(m in str(exc) for m in _CPU_OOM)


def data_size() -> int | None:
    """This process' data segment (what RLIMIT_DATA limits), in bytes; None off Linux."""
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("VmData:"):
            return int(line.split()[1]) * 1024
    return None


@contextlib.contextmanager
def memory_cap(extra_mb: int | None) -> Iterator[None]:
    """Let the process' data segment grow by at most ``extra_mb`` MiB inside the block."""
    current = data_size() if extra_mb is not None else None
    if extra_mb is None or current is None:
        if extra_mb is not None:
            log.warning("STEMBOT_JOB_MEMORY_MB needs Linux (/proc/self/status): not applied")
        yield
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_DATA)
    limit = current + extra_mb * 1024 * 1024
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    if soft != resource.RLIM_INFINITY:
        limit = min(limit, soft)
    resource.setrlimit(resource.RLIMIT_DATA, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_DATA, (soft, hard))


def release(device: str) -> None:
    """Give back what a failed attempt left cached, before the next one."""
    if device.startswith("cuda") and torch.cuda.is_available():
        torch.cuda.empty_cache()
