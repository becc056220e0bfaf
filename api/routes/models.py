"""`GET /v1/models` (the probes, `/health` included, are in `api.routes.probes`)."""

from __future__ import annotations

from typing import Any, Literal

import msgspec
from litestar import get

from api.errors import error_responses
from api.schemas.common import now
from retrieval import ModelRegistry

__all__ = ["list_models"]


class ModelCard(msgspec.Struct):
    id: str  # served model name
    created: int  # unix seconds
    root: str | None  # where the weights came from
    max_model_len: int | None  # tokens per input
    object: Literal["model"] = "model"
    owned_by: str = "vllm"  # vLLM's value, kept for client compatibility
    parent: str | None = None  # base model (unused)
    permission: list[dict[str, Any]] = []  # OpenAI legacy field


class ModelList(msgspec.Struct):
    data: list[ModelCard]  # every served model
    object: Literal["list"] = "list"


@get("/v1/models", sync_to_thread=False, summary="List served models", responses=error_responses(401, 500))
def list_models(registry: ModelRegistry) -> ModelList:
    created = now()
    return ModelList([ModelCard(e.name, created, e.info.spec.source, e.info.max_model_len) for e in registry])
