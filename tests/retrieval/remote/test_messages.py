"""The engine wire: packed rows and tensors survive msgpack and a real ZeroMQ ipc round trip unchanged."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest
import torch
import zmq
import zmq.asyncio
from hypothesis import given, settings
from hypothesis import strategies as st

from encoder import InvalidInputError, OverloadedError, PoolingParams, TokenizedInput
from retrieval.models.engines.client import raise_reply
from retrieval.models.engines.engine_process import error_reply
from retrieval.models.engines.messages import (
    EncodeReply,
    EncodeRequest,
    decode_message,
    encode_message,
    pack_rows,
    pack_tensors,
    unpack_rows,
    unpack_tensors,
)

_row = st.lists(st.integers(0, 2**31 - 1), min_size=1, max_size=20)


@settings(max_examples=50, deadline=None)
@given(st.lists(_row, min_size=1, max_size=8), st.booleans())
def test_rows_round_trip(ids: list[list[int]], with_types: bool) -> None:
    items = [TokenizedInput(x, token_type_ids=[i % 2 for i in x] if with_types else None) for x in ids]
    request = EncodeRequest(7, "m", pack_rows(items), (PoolingParams(task="embed"),), b"\0" * 4 * len(items))
    decoded = decode_message(encode_message(request))
    assert isinstance(decoded, EncodeRequest)
    back = unpack_rows(decoded.rows)
    assert [r.input_ids for r in back] == ids  # the reference: the lists we started from
    assert [r.token_type_ids for r in back] == [it.token_type_ids for it in items]
    assert decoded.params == (PoolingParams(task="embed"),)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_tensors_round_trip(dtype: torch.dtype) -> None:
    outputs = [torch.randn(4).to(dtype), torch.randn(3, 2).to(dtype), torch.randn(1).to(dtype)]
    reply = decode_message(encode_message(EncodeReply(1, pack_tensors(outputs))))
    assert isinstance(reply, EncodeReply)
    back = unpack_tensors(reply.outputs)
    assert [b.dtype for b in back] == [dtype] * 3
    assert all(torch.equal(a, b) for a, b in zip(outputs, back, strict=True))


def test_images_and_non_tensor_outputs_are_refused() -> None:
    with pytest.raises(InvalidInputError):
        pack_rows([TokenizedInput([1, 2], extras={"pixel_values": 1})])
    with pytest.raises(TypeError):
        pack_tensors([np.zeros(3)])


def test_overloaded_reply_becomes_overloaded_error() -> None:
    reply = decode_message(encode_message(error_reply(3, OverloadedError("full", retry_after=2))))
    with pytest.raises(OverloadedError) as caught:
        raise_reply(reply)  # type: ignore[arg-type]
    assert caught.value.retry_after == 2


async def _echo_over_ipc(address: str, items: list[TokenizedInput]) -> list[torch.Tensor]:
    """A ROUTER answers each request with the row lengths as float32 tensors; a DEALER sends one."""
    ctx = zmq.asyncio.Context()
    router, dealer = ctx.socket(zmq.ROUTER), ctx.socket(zmq.DEALER)
    router.bind(address)
    dealer.connect(address)
    try:
        request = EncodeRequest(5, "m", pack_rows(items), (PoolingParams(),), b"\0" * 4 * len(items))
        await dealer.send(encode_message(request))
        identity, payload = await router.recv_multipart()
        got = decode_message(payload)
        assert isinstance(got, EncodeRequest)
        rows = unpack_rows(got.rows)
        outputs = [torch.tensor([float(len(r)), float(sum(r.input_ids))]) for r in rows]
        await router.send_multipart([identity, encode_message(EncodeReply(got.id, pack_tensors(outputs)))])
        reply = decode_message(await dealer.recv())
        assert isinstance(reply, EncodeReply) and reply.id == 5
        return unpack_tensors(reply.outputs)
    finally:
        router.close(0)
        dealer.close(0)
        ctx.term()


def test_zmq_ipc_round_trip(tmp_path: Path) -> None:
    items = [TokenizedInput([101, 5, 6, 102]), TokenizedInput([101, 102])]
    back = asyncio.run(_echo_over_ipc(f"ipc://{tmp_path}/engine", items))
    assert [b.tolist() for b in back] == [[4.0, 214.0], [2.0, 203.0]]
