"""This process's memory as the kernel counts it (``/proc/self/status``), in bytes; standard library only, so a
benchmark peer's own virtualenv can import it.

``rss`` = ``anon`` (heap, the memory an index must keep) + ``file`` (pages of mapped files: shared libraries and
memory-mapped data, which the kernel may drop and read again) + ``shmem``; ``peak`` is the high-water mark of
``rss`` (``VmHWM``).
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["memory"]

_FIELDS = {"VmRSS": "rss", "RssAnon": "anon", "RssFile": "file", "RssShmem": "shmem", "VmHWM": "peak"}


def memory() -> dict[str, int]:
    """``{"rss", "anon", "file", "shmem", "peak"}`` of this process, in bytes."""
    out = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in _FIELDS:
            out[_FIELDS[key]] = int(rest.split()[0]) * 1024
    return out
