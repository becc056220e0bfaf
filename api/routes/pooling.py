"""`POST /pooling`: every pooling task (vLLM compatible), ColBERT `embedding_mode`, BGE-M3 all-in-one."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, post

from api.cancel import until_disconnect
from api.responses import octet_stream
from api.schemas.common import new_id, parse_prompts, usage
from api.schemas.pooling import PoolingRequest, PoolingResponse, pooling_params, pooling_response
from encoder import InvalidInputError
from retrieval import ModelRegistry

__all__ = ["create_pooling", "handle_plugin_request"]


async def handle_plugin_request(data: PoolingRequest, registry: ModelRegistry) -> Response[Any]:
    """Hook for `task: "plugin"` (vLLM's IO processor plugins, `{data: ..., task: "plugin"}`).

    Dispatch to the configured plugin here; until one exists every plugin request is a 400.
    """
    raise InvalidInputError("no IO processor plugin is configured", param="task")


@post("/pooling", status_code=200, summary="Pool hidden states: embed, token_embed, token_classify, classify")
async def create_pooling(
    request: Request, data: PoolingRequest, registry: ModelRegistry
) -> PoolingResponse | Response[Any]:
    if data.task == "plugin":
        return await handle_plugin_request(data, registry)
    engine = registry.get(data.model)
    params = pooling_params(data, engine.adapter.default_task, engine.adapter.late_interaction)
    work = engine.encode(parse_prompts(data.input), params, data.token_options())
    result = await until_disconnect(request, work)
    tokens = sum(result.prompt_tokens)
    if data.encoding_format == "bytes":
        rid, used = new_id("pool"), usage(tokens)
        return octet_stream(
            result.outputs, data.embed_dtype, data.endianness, id_=rid, model=engine.name, usage=used
        )
    return pooling_response(engine.name, result.outputs, tokens, data)
