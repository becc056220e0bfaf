"""Admission and life cycle: starting -> ready -> draining, and a bounded number of searches in flight.

One ASGI middleware answers every request but the probes (`/livez`, `/readyz`, `/health`, `/metrics`, the docs):
while the service is still loading models and indexes, or is draining after SIGTERM, with 503 and `Retry-After`;
once `max_inflight_search` searches (search and evaluate, which hold index threads after their query is encoded)
are running, a further one at once with 429 and `Retry-After`. Encoding work (embeddings, rerank, score and the
queries of a search) is bounded by each model's batcher queue, which answers 429 the same way. The middleware
counts the requests it let through, so a drain knows when the last one has finished.
"""

from __future__ import annotations

import contextlib
import logging
import re
import time
from collections.abc import Iterator
from typing import Literal

from litestar.types import ASGIApp, Receive, Scope, Send

from api.errors import error_response

__all__ = ["PROBE_PATHS", "Lifecycle", "Phase", "is_probe"]

log = logging.getLogger(__name__)

Phase = Literal["starting", "ready", "draining", "failed"]

PROBE_PATHS = ("/livez", "/readyz", "/health", "/metrics")  # answered in every phase, never counted
_PROBE_PREFIX = "/docs"
_SEARCH = re.compile(r"^/v1/collections/[^/]+/(search|evaluate)/?$")


def is_probe(path: str) -> bool:
    """Probes and docs: open in every phase.

    >>> is_probe("/readyz"), is_probe("/docs/openapi.json"), is_probe("/v1/embeddings")
    (True, True, False)
    """
    return path in PROBE_PATHS or path.startswith(_PROBE_PREFIX)


class Lifecycle:
    """The phase of the process and the requests in flight (touched only from the event loop's thread)."""

    def __init__(self, *, max_inflight_search: int, retry_after_s: int) -> None:
        self.phase: Phase = "starting"
        self.inflight = 0  # admitted requests not yet answered
        self.inflight_search = 0  # of which search / evaluate
        self.rejected = 0  # requests answered 429 by this middleware
        self.max_inflight_search = max_inflight_search
        self.retry_after_s = retry_after_s
        self.drain_deadline: float | None = None  # monotonic time the drain gives up waiting

    @property
    def ready(self) -> bool:
        return self.phase == "ready"

    def set_ready(self) -> None:
        if self.phase == "starting":
            self.phase = "ready"
            log.info("ready: models and indexes are loaded")

    def fail(self) -> None:
        self.phase = "failed"

    def begin_drain(self, timeout_s: float) -> None:
        """Stop admitting work; `drained()` turns true once in-flight requests finish or `timeout_s` passes."""
        if self.phase == "draining":
            return
        self.phase = "draining"
        self.drain_deadline = time.monotonic() + max(0.0, timeout_s)
        log.info("draining: %d requests in flight, waiting up to %.1f s", self.inflight, timeout_s)

    def drained(self) -> bool:
        if self.phase != "draining" or self.drain_deadline is None:
            return self.phase == "failed"
        if self.inflight == 0:
            return True
        if time.monotonic() >= self.drain_deadline:
            log.warning("drain timeout: %d requests still in flight are cut off", self.inflight)
            return True
        return False

    def _refusal(self, path: str) -> tuple[int, str] | None:
        if self.phase == "starting":
            return 503, "The server is starting: models and indexes are loading; retry later"
        if self.phase != "ready":
            return 503, "The server is shutting down; retry on another replica"
        if _SEARCH.match(path) and self.inflight_search >= self.max_inflight_search:
            self.rejected += 1
            return 429, (
                f"The server is overloaded: {self.inflight_search} searches are running "
                f"(limit {self.max_inflight_search}); retry later"
            )
        return None

    @contextlib.contextmanager
    def search_slot(self) -> Iterator[bool]:
        """A search admitted outside the middleware (an MCP tool call, whose path says nothing of what it does):
        yields False, and counts a rejection, when `max_inflight_search` searches are running already."""
        if self.inflight_search >= self.max_inflight_search:
            self.rejected += 1
            yield False
            return
        self.inflight_search += 1
        try:
            yield True
        finally:
            self.inflight_search -= 1

    def middleware(self, app: ASGIApp) -> ASGIApp:
        """The admission middleware described in the module docstring."""

        async def admitted(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "http" or is_probe(scope["path"]):
                await app(scope, receive, send)
                return
            refusal = self._refusal(scope["path"])
            if refusal is not None:
                status, message = refusal
                headers = {"Retry-After": str(self.retry_after_s)}
                response = error_response(status, message, headers=headers)
                await response.to_asgi_response(app=None, request=None)(scope, receive, send)  # type: ignore[arg-type]
                return
            await self._run(app, scope, receive, send)

        return admitted

    async def _run(self, app: ASGIApp, scope: Scope, receive: Receive, send: Send) -> None:
        search = _SEARCH.match(scope["path"]) is not None
        self.inflight += 1
        self.inflight_search += search
        try:
            await app(scope, receive, send)
        finally:
            self.inflight -= 1
            self.inflight_search -= search
