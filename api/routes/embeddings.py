"""`POST /v1/embeddings`."""

from __future__ import annotations

from litestar import Request, Response, post

from api.cancel import until_disconnect
from api.encoding import encode_tensor
from api.errors import ENCODE_ERRORS, error_responses
from api.responses import octet_stream
from api.schemas.common import new_id, now, usage
from api.schemas.embeddings import EmbeddingData, EmbeddingRequest, EmbeddingResponse
from encoder import PoolingParams
from retrieval import ModelRegistry

__all__ = ["create_embeddings"]


@post(
    "/v1/embeddings",
    status_code=200,
    summary="Create embeddings (OpenAI / vLLM compatible)",
    responses=error_responses(*ENCODE_ERRORS),
)
async def create_embeddings(
    request: Request, data: EmbeddingRequest, registry: ModelRegistry
) -> EmbeddingResponse | Response[bytes]:
    engine = registry.get(data.model)
    params = PoolingParams(
        task="embed", dimensions=data.dimensions, use_activation=data.use_activation, adapter=data.task_adapter
    )
    prompts = data.prompts(engine)
    result = await until_disconnect(request, engine.encode(prompts, params, data.options()))
    rid, used = new_id("embd"), usage(sum(result.prompt_tokens))
    if data.encoding_format == "bytes":
        return octet_stream(result.outputs, data.embed_dtype, data.endianness, id_=rid, model=engine.name, usage=used)
    fmt, dtype, order = data.encoding_format, data.embed_dtype, data.endianness
    items = [
        EmbeddingData(index=i, embedding=encode_tensor(v, fmt, dtype, order))  # type: ignore[arg-type]
        for i, v in enumerate(result.outputs)
    ]
    return EmbeddingResponse(rid, now(), engine.name, items, used)
