"""Wire encodings of output tensors (api/encoding.py): floats, base64 and vLLM's bytes format, checked with numpy."""

from __future__ import annotations

import base64
import sys

import numpy as np
import pytest
import torch

from api.encoding import bytes_response_parts, encode_tensor, tensor_bytes

_NP = {"float32": "f4", "float16": "f2"}


def test_float_format_is_nested_lists() -> None:
    assert encode_tensor(torch.tensor([[1.5, -2.0]]), "float") == [[1.5, -2.0]]


@pytest.mark.parametrize("dtype", ["float32", "float16"])
@pytest.mark.parametrize("endianness", ["native", "little", "big"])
def test_base64_round_trips_through_numpy(dtype: str, endianness: str) -> None:
    values = [0.5, -3.25, 1024.0, 1e-3]
    text = encode_tensor(torch.tensor(values), "base64", dtype, endianness)  # type: ignore[arg-type]
    assert isinstance(text, str)
    order = {"native": "=", "little": "<", "big": ">"}[endianness]
    decoded = np.frombuffer(base64.b64decode(text), dtype=order + _NP[dtype])
    assert decoded.tolist() == np.array(values, dtype=_NP[dtype]).tolist()


def test_big_and_little_endian_are_byte_reversals_of_each_other() -> None:
    t = torch.tensor([1.0, 2.0])
    little, big = tensor_bytes(t, "float32", "little"), tensor_bytes(t, "float32", "big")
    assert little == np.array([1.0, 2.0], "<f4").tobytes() and big == np.array([1.0, 2.0], ">f4").tobytes()
    assert tensor_bytes(t, "float32", "native") == (little if sys.byteorder == "little" else big)
    bf16 = tensor_bytes(torch.tensor([1.0]), "bfloat16", "big")
    assert bf16 == bytes([0x3F, 0x80])  # bfloat16 1.0 is the top half of float32 0x3F800000
    assert tensor_bytes(torch.tensor([1.0, -2.0]), "fp8_e4m3", "big") == bytes([0x38, 0xC0])  # one byte each


def test_bytes_format_concatenates_with_offsets_and_shapes() -> None:
    outputs = [torch.tensor([[1.0, 2.0], [3.0, 4.0]]), torch.tensor([5.0])]
    body, meta = bytes_response_parts(outputs, "float16", "little")
    assert [(m["index"], m["start"], m["end"], m["shape"]) for m in meta] == [(0, 0, 8, [2, 2]), (1, 8, 10, [1])]
    assert all(m["embed_dtype"] == "float16" and m["endianness"] == "little" for m in meta)
    first = np.frombuffer(body[0:8], "<f2").reshape(2, 2)
    assert first.tolist() == [[1.0, 2.0], [3.0, 4.0]] and np.frombuffer(body[8:10], "<f2").tolist() == [5.0]
