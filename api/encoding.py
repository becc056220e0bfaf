"""Turn output tensors into wire values: float lists, base64 of raw bytes, or one octet stream."""

from __future__ import annotations

import base64
import sys
from typing import Any

import torch

from api.schemas.common import EmbedDType

__all__ = ["TORCH_DTYPES", "bytes_response_parts", "encode_tensor", "tensor_bytes"]

TORCH_DTYPES: dict[EmbedDType, torch.dtype] = {
    "float32": torch.float32,
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
    "fp8_e4m3": torch.float8_e4m3fn,
    "fp8_e5m2": torch.float8_e5m2,
}


def tensor_bytes(t: torch.Tensor, embed_dtype: EmbedDType, endianness: str) -> bytes:
    """Raw bytes of `t` cast to `embed_dtype`, byte-swapped when `endianness` differs from this machine's."""
    cast = t.detach().to(TORCH_DTYPES[embed_dtype]).contiguous()
    size = cast.element_size()
    raw = cast.view(torch.uint8).numpy()
    if size > 1 and endianness in ("big", "little") and endianness != sys.byteorder:
        raw = raw.reshape(-1, size)[:, ::-1].reshape(-1)
    return raw.tobytes()


def encode_tensor(
    t: torch.Tensor, encoding_format: str, embed_dtype: EmbedDType = "float32", endianness: str = "native"
) -> list[float] | list[list[float]] | str:
    """`float` -> nested lists; `base64` -> base64 text of the raw bytes (OpenAI's client decodes float32)."""
    if encoding_format == "base64":
        return base64.b64encode(tensor_bytes(t, embed_dtype, endianness)).decode("ascii")
    return t.tolist()  # type: ignore[no-any-return,unused-ignore]


def bytes_response_parts(
    outputs: list[torch.Tensor], embed_dtype: EmbedDType, endianness: str
) -> tuple[bytes, list[dict[str, Any]]]:
    """vLLM's `bytes` format: one body of concatenated tensors + per-item {index, embed_dtype, endianness,
    start, end, shape} metadata (sent as JSON in the `metadata` response header)."""
    chunks: list[bytes] = []
    meta: list[dict[str, Any]] = []
    offset = 0
    for i, t in enumerate(outputs):
        raw = tensor_bytes(t, embed_dtype, endianness)
        meta.append(
            {
                "index": i,
                "embed_dtype": embed_dtype,
                "endianness": endianness,
                "start": offset,
                "end": offset + len(raw),
                "shape": list(t.shape),
            }
        )
        chunks.append(raw)
        offset += len(raw)
    return b"".join(chunks), meta
