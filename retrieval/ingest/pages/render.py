"""Render a PDF's pages in a separate worker process, with memory, time and size limits, as a bounded stream.

The worker (:mod:`retrieval.ingest.pages.render_worker`) is forked from a forkserver that has imported it once, so a
file's worker starts in milliseconds and a crash in PDFium (or an allocation over its ``RLIMIT_AS``) ends only
the worker. The worker writes into a queue of ``queue_pages`` slots and blocks when it is full: however long
the PDF, at most that many rendered pages wait between the worker and the consumer.

Failures are typed per file (``param="file"``, ``received=<name>``): :class:`CorruptFileError` when PDFium
cannot read it or the worker dies; :class:`LimitExceededError` for the page cap, an absurd page size, the
worker's memory cap, and the time limits (per page, and per file), after which the worker is killed.
"""

from __future__ import annotations

import multiprocessing
import queue
import time
from collections.abc import Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from retrieval.errors import CorruptFileError, LimitExceededError, RetrievalError
from retrieval.ingest.pages import render_worker
from retrieval.ingest.pages.render_worker import RenderOptions

__all__ = ["PageRenderer", "RenderLimits", "RenderOptions", "RenderedPage"]

_POLL_S = 0.1  # how often a waiting consumer checks that the worker is still alive


@dataclass(frozen=True, slots=True)
class RenderLimits:
    """Time limits and the hand-over bound, enforced by the parent (the worker cannot police its own clock)."""

    page_timeout_s: float = 60.0  # longest wait for one page (the worker is killed after it)
    file_timeout_s: float = 3600.0  # longest time for a whole file
    queue_pages: int = 4  # rendered pages that may wait for the consumer


@dataclass(frozen=True, slots=True)
class RenderedPage:
    """One rendered page, as the worker sent it."""

    number: int  # 1-based page number
    text: str  # the page's text layer ("" for a scan), line ends as "\n"
    png: bytes  # the page image, PNG
    thumbnail: bytes  # a JPEG thumbnail, longest side RenderOptions.thumbnail_px
    width: int  # page image width in pixels
    height: int  # page image height in pixels
    seconds: float  # worker time spent rendering and encoding this page


def _context() -> Any:
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload([render_worker.__name__])
    return ctx


class PageRenderer:
    """Iterate the rendered pages of one PDF; use as a context manager so the worker never outlives it.

    ``pages`` is known once the first page (or the error) arrived: the worker checks the whole file before it
    renders anything, so a refused file costs no rendering.
    """

    def __init__(self, name: str, data: bytes, opts: RenderOptions, limits: RenderLimits = RenderLimits()) -> None:
        self.name = name  # the file name, for errors
        self.pages = 0  # page count, set once the worker has checked the file
        self._opts, self._limits = opts, limits
        ctx = _context()
        self._queue = ctx.Queue(maxsize=limits.queue_pages)
        self._proc = ctx.Process(target=render_worker.work, args=(data, opts, self._queue), daemon=True)
        self._started = 0.0
        self._done = 0  # pages received so far

    def __enter__(self) -> PageRenderer:
        self._proc.start()
        self._started = time.monotonic()
        return self

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def stop(self) -> None:
        """Kill the worker if it still runs (a consumer blocked on it then fails within a poll interval)."""
        if self._proc.is_alive():
            self._proc.kill()
        self._proc.join(timeout=5)

    def close(self) -> None:
        """Kill the worker if it still runs, and release the queue."""
        self.stop()
        self._queue.close()
        self._queue.cancel_join_thread()

    def __iter__(self) -> Iterator[RenderedPage]:
        while True:
            msg = self._next()
            if msg[0] == "meta":
                self.pages = int(msg[1])
            elif msg[0] == "page":
                _, index, text, png, thumb, width, height, seconds = msg
                self._done = index + 1
                yield RenderedPage(index + 1, text, png, thumb, width, height, seconds)
            elif msg[0] == "done":
                return
            else:
                raise self._error(msg)

    def _next(self) -> tuple[Any, ...]:
        """The next message; kills the worker and raises when it is late or gone."""
        waited_from = time.monotonic()
        while True:
            try:
                msg: tuple[Any, ...] = self._queue.get(timeout=_POLL_S)
                return msg
            except queue.Empty:
                pass
            now = time.monotonic()
            if now - self._started > self._limits.file_timeout_s:
                self.stop()
                limit = self._limits.file_timeout_s
                raise self._limit("The render time in seconds of the file", now - self._started, limit)
            if now - waited_from > self._limits.page_timeout_s:
                self.stop()
                what = f"The render time in seconds of page {self._done + 1}"
                raise self._limit(what, now - waited_from, self._limits.page_timeout_s)
            if not self._proc.is_alive() and self._queue.empty():
                raise self._died()

    def _limit(self, what: str, received: float, allowed: float) -> LimitExceededError:
        err = LimitExceededError(f"{what} of PDF `{self.name}`", int(received), int(allowed), param="file")
        err.received = self.name  # every per-file error names the file; the figures are in the message
        return err

    def _died(self) -> RetrievalError:
        self._proc.join(timeout=5)
        code = self._proc.exitcode
        how = f"was killed by signal {-code}" if code is not None and code < 0 else f"exited with code {code}"
        msg = f"PDF `{self.name}` cannot be rendered: the render worker {how}"
        return CorruptFileError(msg, param="file", received=self.name)

    def _error(self, msg: tuple[Any, ...]) -> RetrievalError:
        _, kind, message, received, allowed = msg
        if kind == "limit":
            return self._limit(message, received, allowed)
        return CorruptFileError(f"PDF `{self.name}`: {message}", param="file", received=self.name)
