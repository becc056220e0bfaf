"""`POST /classify`."""

from __future__ import annotations

from litestar import Request, post

from api.cancel import until_disconnect
from api.errors import ENCODE_ERRORS, error_responses
from api.schemas.classify import ClassificationRequest, ClassificationResponse, classification_response
from encoder import PoolingParams
from retrieval import ModelRegistry

__all__ = ["create_classify"]


@post(
    "/classify", status_code=200, summary="Classify texts (vLLM compatible)", responses=error_responses(*ENCODE_ERRORS)
)
async def create_classify(
    request: Request, data: ClassificationRequest, registry: ModelRegistry
) -> ClassificationResponse:
    engine = registry.get(data.model)
    params = PoolingParams(task="classify", use_activation=data.use_activation)
    work = engine.encode(data.prompts(engine), params, data.options())
    result = await until_disconnect(request, work)
    id2label = getattr(engine.info.config, "id2label", None) or {}
    return classification_response(engine.name, result.outputs, id2label, sum(result.prompt_tokens))
