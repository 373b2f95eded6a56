"""How a worker allocates memory, so that an idle worker gives back what its largest batch used.

With oneDNN on (as it is for serving, :mod:`glue_tf.onednn`), TensorFlow's CPU
allocator hands every large tensor to a BFC arena that grows to the largest
working set the process has seen and never shrinks: one warm-up request of 64
rows x 128 tokens leaves its activations resident for the worker's life, in
every worker. ``TF_ONEDNN_USE_SYSTEM_ALLOCATOR=1`` sends them to ``malloc``
instead, and a fixed mmap threshold makes glibc map each block of a MiB or more
on its own and unmap it when freed (glibc's default threshold rises after the
first such free, and those blocks then stay in its heap). docs/RELIABILITY.md
("Memory per worker") has the figures and the command that measures them.

An operator's own ``TF_ONEDNN_USE_SYSTEM_ALLOCATOR`` or ``MALLOC_MMAP_THRESHOLD_``
wins: ``TF_ONEDNN_USE_SYSTEM_ALLOCATOR=0`` keeps TensorFlow's arena.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import os

SYSTEM_ALLOCATOR = "TF_ONEDNN_USE_SYSTEM_ALLOCATOR"
MMAP_THRESHOLD_BYTES = 1 << 20  # blocks at least this large are mapped on their own and unmapped when freed
_M_MMAP_THRESHOLD = -3  # mallopt's parameter number (malloc.h)


def prepare() -> str:
    """Chooses the system allocator for TensorFlow's large tensors; call before TensorFlow loads (the
    gunicorn master, whose workers inherit it). Returns the log line."""
    os.environ.setdefault(SYSTEM_ALLOCATOR, "1")
    if not uses_system_allocator():
        return f"allocator: TensorFlow's BFC arena ({SYSTEM_ALLOCATOR}={os.environ[SYSTEM_ALLOCATOR]} set outside)"
    return f"allocator: malloc for TensorFlow's tensors ({SYSTEM_ALLOCATOR}=1), blocks >= 1 MiB unmapped when freed"


def uses_system_allocator() -> bool:
    return os.environ.get(SYSTEM_ALLOCATOR, "0").strip().lower() in ("1", "true")


def _libc():
    name = ctypes.util.find_library("c")
    try:
        return ctypes.CDLL(name) if name else None
    except OSError:
        return None


def return_large_blocks() -> bool:
    """Fixes glibc's mmap threshold in this process (a worker, after the fork), so freed tensors leave the
    resident set; False where it does not apply (TensorFlow's arena, the operator's own threshold, no glibc)."""
    libc = _libc()
    if not uses_system_allocator() or "MALLOC_MMAP_THRESHOLD_" in os.environ or not hasattr(libc, "mallopt"):
        return False
    return bool(libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES))


def trim() -> None:
    """Hands the heap's free pages back to the system: after a warm-up, whose buffers are all freed."""
    gc.collect()
    libc = _libc()
    if hasattr(libc, "malloc_trim"):
        libc.malloc_trim(0)
