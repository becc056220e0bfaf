"""Probes: `GET /livez` (liveness), `GET /readyz` (readiness) and vLLM's `GET /health`.

Liveness says only that the process answers; an orchestrator restarts it when that fails. Readiness says it
should get traffic: 503 while models and indexes load (the server binds first), 200 once they are loaded and
every model's worker is alive, 503 again from SIGTERM on while it drains. `/health` keeps vLLM's contract and
body: an empty 200 only when every route can serve -- exactly when `/readyz` is 200 (models, collections and
indexes open, every model's worker alive) -- else an empty 503. vLLM does not answer before it can serve, so a
client polling `/health` and then calling `GET /v1/collections` must never meet "loading".
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
    status = _status(state)
    return Response(ProbeStatus(status), status_code=200 if status == "ready" else 503)


def _status(state: State) -> ProbeState:
    """The phase, or `unhealthy` when ready but a model's worker died."""
    lifecycle: Lifecycle = state.lifecycle
    status: ProbeState = lifecycle.phase
    return "unhealthy" if status == "ready" and not _workers_alive(state) else status


@get(
    "/health",
    sync_to_thread=False,
    summary="200 when every route can serve (as /readyz), else 503: loading, draining or a worker died",
    responses={
        200: ResponseSpec(None, description="Models, collections and indexes are open and every worker alive (empty)"),
        503: ResponseSpec(None, description="Loading, draining, failed, or a model's worker is not alive (empty body)"),
        **error_responses(500),
    },
)
def health(state: State) -> Response[bytes]:
    return Response(b"", status_code=200 if _status(state) == "ready" else 503)
