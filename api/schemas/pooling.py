"""`POST /pooling` (vLLM's PoolingCompletionRequest / PoolingResponse) plus `embedding_mode` and the BGE-M3
combined task.

``data[i].data`` is ``list[float]`` (embed, token_classify, classify), ``list[list[float]]`` (token_embed),
a base64 string of the raw tensor bytes, or -- for ``task: "embed&token_embed&token_classify"`` -- an object
``{"dense": list|base64, "colbert": list[list]|base64, "sparse": {"<token_id>": weight}}``.
"""

from __future__ import annotations

from typing import Any, Literal, get_args

import msgspec
import torch

from api.encoding import encode_tensor
from api.schemas.common import EmbedDType, EncodingRequest, UsageInfo, new_id, now, usage
from encoder import M3_TASK, EncodeResult, InvalidInputError, M3Output, PoolingParams, Task

__all__ = [
    "PoolingData",
    "PoolingRequest",
    "PoolingResponse",
    "pooling_data",
    "pooling_params",
    "pooling_response",
    "request_task",
]

_TASKS: frozenset[str] = frozenset(get_args(Task)) - {"score", "embed&token_embed"}
_REMOVED = {
    "encode": "Task `encode` was removed; use `token_embed` or `token_classify` instead.",
    "score": "Task `score` was removed; use the /score API instead.",
}


class PoolingRequest(EncodingRequest, kw_only=True):
    task: str | None = None  # embed | classify | token_embed | token_classify | plugin |
    # embed&token_embed&token_classify (BGE-M3: all three from one pass); None = the model's default task
    dimensions: int | None = None  # Matryoshka output size (embed, token_embed)
    use_activation: bool | None = None  # normalise / softmax-sigmoid / relu; None = the task's default
    embedding_mode: Literal["query", "document"] | None = None  # ColBERT encoding; None = raw per-token
    data: Any = None  # the payload of task "plugin" (IO processor plugins)
    task_adapter: str | None = msgspec.field(default=None, name="adapter")  # extension (wire name `adapter`):
    # a task LoRA adapter of jina-embeddings-v3; None = vLLM's behaviour


class PoolingData(msgspec.Struct, kw_only=True):
    index: int  # position in the request
    object: Literal["pooling"] = "pooling"
    data: Any  # list[float] | list[list[float]] | base64 str | BGE-M3 object (see the module docstring)


class PoolingResponse(msgspec.Struct, kw_only=True):
    id: str  # pool-<uuid>
    object: Literal["list"] = "list"
    created: int  # unix seconds
    model: str  # served model name
    data: list[PoolingData]  # one per input, in order
    usage: UsageInfo  # tokens read


def request_task(req: PoolingRequest) -> Task | None:
    """The request's task, checked against vLLM's names (removed tasks get vLLM's hint)."""
    task = req.task
    if task is None or task in _TASKS:
        return task  # type: ignore[return-value]
    if task in _REMOVED:
        raise InvalidInputError(_REMOVED[task], param="task")
    if task == "embed&token_embed":
        raise InvalidInputError(
            "Task `embed&token_embed` is internal to collections (dense and token vectors of one model from one "
            "pass); ask for `embed` or `token_embed`.",
            param="task",
        )
    if task == "embed&token_classify":
        raise InvalidInputError(
            "Task `embed&token_classify` is internal to IO processor plugins; use "
            "`embed&token_embed&token_classify` for dense + sparse + ColBERT from one pass.",
            param="task",
        )
    raise InvalidInputError(f"Unknown task {task!r}; expected one of {sorted(_TASKS)}", param="task")


def pooling_params(req: PoolingRequest, default_task: Task, late_interaction: bool) -> PoolingParams:
    """vLLM's `to_pooling_params`, plus the `embedding_mode` rules (token_embed of ColBERT models only)."""
    req.check_common()
    task = request_task(req) or default_task
    if req.embedding_mode is not None and (task != "token_embed" or not late_interaction):
        raise InvalidInputError(
            "`embedding_mode` applies to task `token_embed` of late-interaction (ColBERT) models only",
            param="embedding_mode",
        )
    if task == "embed&token_embed&token_classify" and req.encoding_format == "bytes":
        raise InvalidInputError(f"encoding_format `bytes` is not supported for task `{task}`", param="encoding_format")
    return PoolingParams(task, req.dimensions, req.use_activation, req.embedding_mode, adapter=req.task_adapter)


def _m3_data(out: M3Output, fmt: str, dtype: EmbedDType, order: str) -> dict[str, Any]:
    return {
        "dense": encode_tensor(torch.from_numpy(out.dense), fmt, dtype, order),
        "colbert": encode_tensor(torch.from_numpy(out.colbert), fmt, dtype, order),
        "sparse": {str(token): weight for token, weight in out.sparse.items()},
    }


def pooling_data(result: EncodeResult, req: PoolingRequest) -> list[PoolingData]:
    """One `PoolingData` per input (BGE-M3's combined task: an object of three), encoded as asked."""
    fmt, dtype, order = req.encoding_format, req.embed_dtype, req.endianness
    if result.task == M3_TASK:
        return [PoolingData(index=i, data=_m3_data(out, fmt, dtype, order)) for i, out in enumerate(result.m3)]
    return [PoolingData(index=i, data=encode_tensor(out, fmt, dtype, order)) for i, out in enumerate(result.outputs)]


def pooling_response(model: str, result: EncodeResult, prompt_tokens: int, req: PoolingRequest) -> PoolingResponse:
    return PoolingResponse(
        id=new_id("pool"),
        created=now(),
        model=model,
        data=pooling_data(result, req),
        usage=usage(prompt_tokens),
    )
