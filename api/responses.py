"""Responses shared by the pooling endpoints."""

from __future__ import annotations

import json

import torch
from litestar import Response

from api.encoding import bytes_response_parts
from api.schemas.common import EmbedDType, UsageInfo

__all__ = ["octet_stream"]


def octet_stream(
    outputs: list[torch.Tensor],
    embed_dtype: EmbedDType,
    endianness: str,
    *,
    id_: str,
    model: str,
    usage: UsageInfo,
) -> Response[bytes]:
    """`encoding_format: "bytes"`: raw tensors in one body, layout in the `metadata` header (JSON)."""
    body, items = bytes_response_parts(outputs, embed_dtype, endianness)
    meta = {
        "id": id_,
        "model": model,
        "data": items,
        "usage": {"prompt_tokens": usage.prompt_tokens, "total_tokens": usage.total_tokens},
    }
    return Response(content=body, media_type="application/octet-stream", headers={"metadata": json.dumps(meta)})
