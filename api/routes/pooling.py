"""`POST /pooling`: every pooling task (vLLM compatible), ColBERT `embedding_mode`, BGE-M3 all-in-one."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, post

from api.cancel import until_disconnect
from api.errors import ENCODE_ERRORS, error_responses
from api.responses import octet_stream
from api.schemas.common import new_id, now, usage
from api.schemas.plugin import IOProcessorResponse
from api.schemas.pooling import PoolingRequest, PoolingResponse, pooling_params, pooling_response
from encoder import InvalidInputError
from retrieval import ModelRegistry
from retrieval.models.serving.plugins import available_plugins

__all__ = ["create_pooling", "handle_plugin_request"]


async def handle_plugin_request(request: Request, data: PoolingRequest, registry: ModelRegistry) -> IOProcessorResponse:
    """`task: "plugin"`: hand `data.data` to the IO processor plugin chosen with `--io-processor-plugin`."""
    plugin = request.app.state.io_processor
    if plugin is None:
        raise InvalidInputError(
            "no IO processor plugin is configured; start the server with --io-processor-plugin NAME "
            f"(installed: {', '.join(available_plugins()) or 'none'})",
            param="task",
        )
    engine = registry.get(data.model)
    result = await until_disconnect(request, plugin.process(engine, data.data, data.token_options()))
    return IOProcessorResponse(request_id=data.request_id or new_id("pool"), created_at=now(), data=result.data)


@post(
    "/pooling",
    status_code=200,
    summary="Pool hidden states: embed, token_embed, token_classify, classify",
    responses=error_responses(*ENCODE_ERRORS),
)
async def create_pooling(
    request: Request, data: PoolingRequest, registry: ModelRegistry
) -> PoolingResponse | IOProcessorResponse | Response[Any]:
    if data.task == "plugin":
        return await handle_plugin_request(request, data, registry)
    engine = registry.get(data.model)
    params = pooling_params(data, engine.default_task, engine.late_interaction)
    work = engine.encode(data.prompts(engine), params, data.options())
    result = await until_disconnect(request, work)
    tokens = sum(result.prompt_tokens)
    if data.encoding_format == "bytes":
        rid, used = new_id("pool"), usage(tokens)
        return octet_stream(result.outputs, data.embed_dtype, data.endianness, id_=rid, model=engine.name, usage=used)
    return pooling_response(engine.name, result, tokens, data)
