"""This process's memory as the kernel counts it (``/proc/self/status``), in bytes; standard library only, so a
benchmark peer's own virtualenv can import it.

``rss`` = ``anon`` (heap, the memory an index must keep) + ``file`` (pages of mapped files: shared libraries and
memory-mapped data, which the kernel may drop and read again) + ``shmem``; ``peak`` is the high-water mark of
``rss`` (``VmHWM``).
"""

from __future__ import annotations

import threading
from pathlib import Path

__all__ = ["PeakAnon", "memory"]

_FIELDS = {"VmRSS": "rss", "RssAnon": "anon", "RssFile": "file", "RssShmem": "shmem", "VmHWM": "peak"}


def memory() -> dict[str, int]:
    """``{"rss", "anon", "file", "shmem", "peak"}`` of this process, in bytes."""
    out = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in _FIELDS:
            out[_FIELDS[key]] = int(rest.split()[0]) * 1024
    return out


class PeakAnon:
    """Samples ``anon`` every ``interval_s`` while running (``with PeakAnon() as p: ...; p.peak``): the kernel keeps
    no high-water mark of anonymous memory alone, and ``peak`` also counts mapped-file pages."""

    def __init__(self, interval_s: float = 0.05) -> None:
        self.interval_s = interval_s  # sampling period
        self.peak = memory()["anon"]  # highest anonymous RSS seen, bytes
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.peak = max(self.peak, memory()["anon"])

    def __enter__(self) -> PeakAnon:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, memory()["anon"])
