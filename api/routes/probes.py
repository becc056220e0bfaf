"""Probes: `GET /livez` (liveness), `GET /readyz` (readiness) and vLLM's `GET /health`.

Liveness says only that the process answers; an orchestrator restarts it when that fails. Readiness says it
should get traffic: 503 while models and indexes load (the server binds first), 200 once they are loaded and
every model's worker is alive, 503 again from SIGTERM on while it drains. `/health` keeps vLLM's contract: an
empty 200 when every model's worker is alive, an empty 503 otherwise, including while the models still load
(vLLM does not listen before that, so a client polling it waits for the same moment).
"""

from __future__ import annotations

from typing import Literal

import msgspec
from litestar import Response, get
from litestar.datastructures import State
from litestar.openapi.datastructures import ResponseSpec

from api.errors import error_responses
from api.lifecycle import Lifecycle
from retrieval import ModelRegistry

__all__ = ["ProbeStatus", "health", "livez", "readyz"]

ProbeState = Literal["alive", "ready", "starting", "draining", "failed", "unhealthy"]


class ProbeStatus(msgspec.Struct):
    status: ProbeState  # the process's phase as a probe reports it


def _workers_alive(state: State) -> bool | None:
    """Every model's worker thread alive; None while the models are not loaded yet."""
    registry: ModelRegistry | None = state.get("registry")
    return None if registry is None else all(e.healthy for e in registry)


@get(
    "/livez",
    sync_to_thread=False,
    summary="Liveness: 200 while the process answers",
    responses=error_responses(500),
)
def livez() -> ProbeStatus:
    return ProbeStatus("alive")


@get(
    "/readyz",
    sync_to_thread=False,
    summary="Readiness: 200 once models and indexes are loaded, 503 while starting, draining or unhealthy",
    responses={
        503: ResponseSpec(ProbeStatus, description="Not ready: starting, draining, failed or unhealthy"),
        **error_responses(500),
    },
)
def readyz(state: State) -> Response[ProbeStatus]:
    lifecycle: Lifecycle = state.lifecycle
    status: ProbeState = lifecycle.phase
    if status == "ready" and not _workers_alive(state):
        status = "unhealthy"
    return Response(ProbeStatus(status), status_code=200 if status == "ready" else 503)


@get(
    "/health",
    sync_to_thread=False,
    summary="200 when every model's worker is alive, else 503 (also while the models load)",
    responses={
        200: ResponseSpec(None, description="Every model's worker is alive (empty body)"),
        503: ResponseSpec(None, description="A model's worker is not alive, or the models are loading (empty body)"),
        **error_responses(500),
    },
)
def health(state: State) -> Response[bytes]:
    return Response(b"", status_code=200 if _workers_alive(state) else 503)
