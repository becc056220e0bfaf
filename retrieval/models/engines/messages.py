"""The wire between API workers and an engine process: tagged msgspec structs in msgpack.

Tokenised inputs travel packed (one int32 buffer per field plus the row lengths) and outputs as raw tensor
bytes with their shapes: no per-token or per-float Python objects are built on either side.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Literal

import msgspec
import numpy as np
import torch

from encoder import InvalidInputError, PoolingParams, TokenizedInput

__all__ = [
    "Cancel",
    "EncodeReply",
    "EncodeRequest",
    "ErrorKind",
    "ErrorReply",
    "Message",
    "PackedRows",
    "PackedTensors",
    "Ping",
    "Pong",
    "decode_message",
    "encode_message",
    "pack_rows",
    "pack_tensors",
    "unpack_rows",
    "unpack_tensors",
]

ErrorKind = Literal["overloaded", "invalid", "unsupported", "not_found", "shutdown", "internal"]
_OPTIONAL_FIELDS = ("token_type_ids", "attention_mask", "keep_mask")  # per-token lists besides input_ids
_DTYPES: dict[str, torch.dtype] = {  # wire name -> tensor dtype of outputs that travel
    "float32": torch.float32,
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
    "int64": torch.int64,
}


class PackedRows(msgspec.Struct, frozen=True):
    """Tokenised inputs of one job: every per-token field concatenated, row by row."""

    lengths: bytes  # int32 (n,): tokens of each row
    input_ids: bytes  # int32 (sum(lengths),)
    optional: dict[str, bytes] = {}  # field name -> int32 (sum(lengths),), for fields every row has


class PackedTensors(msgspec.Struct, frozen=True):
    """One output tensor per row, concatenated in row order."""

    dtype: str  # a key of _DTYPES
    shapes: list[tuple[int, ...]]  # shape of each row's tensor
    data: bytearray  # raw native-endian bytes; mutable so tensors view it without a copy


class EncodeRequest(msgspec.Struct, frozen=True, tag="encode"):
    """Run `rows` through model `model`; row i uses `params[param_index[i]]`."""

    id: int  # the sender's request number (unique per worker connection)
    model: str  # served model name
    rows: PackedRows  # tokenised inputs
    params: tuple[PoolingParams, ...]  # the distinct resolved params of the job
    param_index: bytes  # int32 (n,): which params each row uses


class Cancel(msgspec.Struct, frozen=True, tag="cancel"):
    """The client went away: skip request `id` if it has not run."""

    id: int  # the EncodeRequest's id


class Ping(msgspec.Struct, frozen=True, tag="ping"):
    """Liveness probe; answered with a Pong at once."""

    id: int  # echoed back


class Pong(msgspec.Struct, frozen=True, tag="pong"):
    """The engine's event loop is alive."""

    id: int  # the Ping's id


class EncodeReply(msgspec.Struct, frozen=True, tag="result"):
    """Outputs of request `id`, one per row."""

    id: int  # the EncodeRequest's id
    outputs: PackedTensors  # the rows' tensors


class ErrorReply(msgspec.Struct, frozen=True, tag="error"):
    """Request `id` failed; `kind` picks the typed error the worker raises."""

    id: int  # the EncodeRequest's id
    kind: ErrorKind  # overloaded -> 429, invalid -> 400, unsupported -> 501, shutdown -> 503, ...
    message: str  # for a person
    retry_after: int = 1  # seconds, for `overloaded`


Message = EncodeRequest | Cancel | Ping | Pong | EncodeReply | ErrorReply

_ENCODER = msgspec.msgpack.Encoder()
_DECODER = msgspec.msgpack.Decoder(Message)


def encode_message(message: Message) -> bytes:
    return _ENCODER.encode(message)


def decode_message(payload: bytes) -> Message:
    return _DECODER.decode(payload)


def _int32(values: Sequence[int]) -> bytes:
    return np.asarray(values, dtype=np.int32).tobytes()


def pack_rows(items: Sequence[TokenizedInput]) -> PackedRows:
    """Tokenised inputs -> one int32 buffer per field. Rows with `extras` (images) cannot travel.

    >>> packed = pack_rows([TokenizedInput([101, 7, 102]), TokenizedInput([101, 102])])
    >>> [len(r) for r in unpack_rows(packed)], unpack_rows(packed)[1].input_ids
    ([3, 2], [101, 102])
    """
    if any(it.extras for it in items):
        raise InvalidInputError(
            "image inputs are not served with --api-workers above 1 or --engine-replicas", param="input"
        )
    optional: dict[str, bytes] = {}
    for name in _OPTIONAL_FIELDS:
        present = [getattr(it, name) is not None for it in items]
        if all(present) and items:
            optional[name] = _int32([v for it in items for v in getattr(it, name)])
        elif any(present):
            raise InvalidInputError(f"rows of one job disagree on {name}", param="input")
    ids = np.fromiter((v for it in items for v in it.input_ids), dtype=np.int32)
    return PackedRows(_int32([len(it.input_ids) for it in items]), ids.tobytes(), optional)


def unpack_rows(rows: PackedRows) -> list[TokenizedInput]:
    """The inverse of :func:`pack_rows`."""
    lengths = np.frombuffer(rows.lengths, dtype=np.int32)
    bounds = np.concatenate([[0], np.cumsum(lengths)]).tolist()
    fields = {"input_ids": rows.input_ids, **rows.optional}
    lists = {k: np.frombuffer(v, dtype=np.int32).tolist() for k, v in fields.items()}
    return [TokenizedInput(**{k: v[a:b] for k, v in lists.items()}) for a, b in itertools.pairwise(bounds)]


def pack_tensors(outputs: Sequence[object]) -> PackedTensors:
    """One tensor per row (any shape, one dtype) -> raw bytes; other output types are refused (TypeError)."""
    tensors: list[torch.Tensor] = []
    for o in outputs:
        if not isinstance(o, torch.Tensor):
            raise TypeError(f"only tensor outputs travel between processes, not {type(o).__name__}")
        tensors.append(o.detach().cpu().contiguous())
    dtype = str(tensors[0].dtype).removeprefix("torch.") if tensors else "float32"
    if dtype not in _DTYPES or any(t.dtype != tensors[0].dtype for t in tensors):
        raise TypeError(f"outputs of dtype {dtype} (or mixed dtypes) do not travel")
    data = bytearray(b"".join(t.reshape(-1).view(torch.uint8).numpy().tobytes() for t in tensors))
    return PackedTensors(dtype, [tuple(t.shape) for t in tensors], data)


def unpack_tensors(packed: PackedTensors) -> list[torch.Tensor]:
    """Tensors viewing `packed.data` (no copy); the inverse of :func:`pack_tensors`."""
    torch_dtype = _DTYPES[packed.dtype]
    if not packed.shapes:
        return []
    flat = torch.frombuffer(packed.data, dtype=torch_dtype) if packed.data else torch.empty(0, dtype=torch_dtype)
    sizes = [int(np.prod(s)) for s in packed.shapes]
    return [chunk.view(shape) for chunk, shape in zip(flat.split(sizes), packed.shapes, strict=True)]
