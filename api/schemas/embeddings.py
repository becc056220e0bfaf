"""`POST /v1/embeddings` (vLLM's EmbeddingCompletionRequest / EmbeddingResponse)."""

from __future__ import annotations

from typing import Literal

import msgspec

from api.schemas.common import EncodingRequest, UsageInfo

__all__ = ["EmbeddingData", "EmbeddingRequest", "EmbeddingResponse"]


class EmbeddingRequest(EncodingRequest, kw_only=True):
    """`input` (completion form) or `messages` (chat form); see PromptRequest."""

    dimensions: int | None = None  # Matryoshka output size
    use_activation: bool | None = None  # L2-normalise (default True)
    task_adapter: str | None = msgspec.field(default=None, name="adapter")  # extension (wire name `adapter`):
    # a task LoRA adapter of jina-embeddings-v3; None = vLLM's behaviour


class EmbeddingData(msgspec.Struct):
    index: int  # position in the request
    embedding: list[float] | str  # floats, or base64 of raw bytes
    object: Literal["embedding"] = "embedding"


class EmbeddingResponse(msgspec.Struct):
    id: str  # embd-<uuid>
    created: int  # unix seconds
    model: str  # served model name
    data: list[EmbeddingData]  # one per input, in order
    usage: UsageInfo  # token counts
    object: Literal["list"] = "list"
