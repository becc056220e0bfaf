"""The engines' load boards: what an engine process has in flight per model, read by the API workers so that a
full engine refuses before any tokenising (retrieval/models/engines/load_board.py)."""

from __future__ import annotations

import asyncio
import multiprocessing
from pathlib import Path
from types import SimpleNamespace

import pytest

from encoder import OverloadedError, PoolingParams, TokenizedInput
from retrieval.models.engines import EngineClient, LoadBoard
from retrieval.models.engines.client import RemoteBatcher
from retrieval.models.engines.engine_process import _EngineServer
from retrieval.models.engines.messages import EncodeRequest, ErrorReply, decode_message, pack_rows

MODELS = ["dense", "rerank"]


def _write_in_a_child(path: str) -> None:
    writer = LoadBoard(path, MODELS, create=True)  # as an engine process does
    writer.set_limit("rerank", 7)
    writer.add("rerank", 5)
    writer.close()


def test_a_reader_sees_the_writers_counts_and_limits(tmp_path: Path) -> None:
    path = tmp_path / "engine-0.load"
    writer = LoadBoard(path, MODELS, create=True)
    reader = LoadBoard(path, MODELS)
    assert reader.room("dense") is None  # no limit published yet: unknown, so no refusal
    writer.set_limit("dense", 10)
    writer.add("dense", 4)
    assert reader.room("dense") == 6 and reader.room("rerank") is None and reader.room("other") is None
    writer.add("dense", 8)
    assert reader.room("dense") == -2  # over the limit while admitted work drains
    writer.add("dense", -12)
    assert reader.room("dense") == 10
    writer.add("other", 3)  # a model the board does not list is ignored
    for board in (reader, writer):
        board.close()


def test_another_process_writes_what_this_one_reads(tmp_path: Path) -> None:
    path = tmp_path / "engine-1.load"
    child = multiprocessing.get_context("spawn").Process(target=_write_in_a_child, args=(str(path),))
    child.start()
    child.join(60)
    assert child.exitcode == 0
    reader = LoadBoard(path, MODELS)
    assert reader.room("rerank") == 2
    reader.close()


def test_a_board_of_another_shape_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "engine-2.load"
    LoadBoard(path, MODELS, create=True).close()
    with pytest.raises(ValueError, match="bytes"):
        LoadBoard(path, [*MODELS, "third"])


def test_the_client_refuses_only_when_every_live_engine_is_full(tmp_path: Path) -> None:
    writers = [LoadBoard(tmp_path / f"e{i}.load", MODELS, create=True) for i in range(2)]
    for w in writers:
        w.set_limit("dense", 8)
    readers = [LoadBoard(tmp_path / f"e{i}.load", MODELS) for i in range(2)]
    client = EngineClient([f"ipc://{tmp_path}/e{i}" for i in range(2)], boards=readers)

    async def run() -> None:
        await client.start()
        try:
            writers[0].add("dense", 8)
            client.check_room("dense", 3)  # engine 1 has room
            writers[1].add("dense", 6)
            client.check_room("dense", 2)  # exactly fits engine 1
            with pytest.raises(OverloadedError, match="room for 2 more sequences, 3 asked"):
                client.check_room("dense", 3)
            client.check_room("rerank", 100)  # no limit published for it: the engine decides
            client._links[1].alive = False  # a dead engine's board does not count
            with pytest.raises(OverloadedError):
                client.check_room("dense", 1)
        finally:
            await client.close()

    asyncio.run(run())
    for w in writers:
        w.close()


def test_a_worker_holds_room_for_what_it_is_still_tokenising(tmp_path: Path) -> None:
    """A burst at one API worker: the engines' boards only count what was sent, so the worker counts the room it
    reserved for inputs it is still tokenising, and the rest of the burst is refused before tokenising."""
    writer = LoadBoard(tmp_path / "e0.load", MODELS, create=True)
    writer.set_limit("dense", 8)
    client = EngineClient([f"ipc://{tmp_path}/e0"], boards=[LoadBoard(tmp_path / "e0.load", MODELS)])
    batcher = RemoteBatcher(client, "dense")

    async def run() -> None:
        await client.start()
        try:
            first = batcher.reserve(6)
            with pytest.raises(OverloadedError, match="room for 2 more sequences, 3 asked"):
                batcher.reserve(3)  # 6 held here + 3 > 8, though the board still shows 8 free
            with batcher.reserve(2):
                assert batcher.stats.reserved == 8
            assert batcher.stats.reserved == 6  # an unused reservation gives its room back
            with first:  # released (`submit` takes it over instead when it sends the inputs)
                pass
            with batcher.reserve(8):
                assert batcher.stats.reserved == 8
        finally:
            await client.close()

    asyncio.run(run())
    writer.close()


class _Sock:
    def __init__(self) -> None:
        self.sent: list[object] = []

    async def send_multipart(self, parts: list[bytes], copy: bool = True) -> None:
        self.sent.append(decode_message(bytes(parts[1])))


def test_the_engine_counts_a_request_while_it_is_in_flight(tmp_path: Path) -> None:
    """In flight from admission to the answer, and released when the batcher refuses or the request fails."""
    board = LoadBoard(tmp_path / "e.load", MODELS, create=True)
    board.set_limit("dense", 16)
    release = asyncio.Event()
    outcome: list[object] = []

    async def submit(items: list[object], params: list[object]) -> list[object]:
        if outcome:
            raise outcome[0]  # type: ignore[misc]
        await release.wait()
        return []

    engine = SimpleNamespace(name="dense", batcher=SimpleNamespace(submit=submit))
    registry = SimpleNamespace(get=lambda name: engine)
    sock = _Sock()
    server = _EngineServer(registry, sock, board)  # type: ignore[arg-type]

    rows = pack_rows([TokenizedInput([1, 2, 3]) for _ in range(5)])
    request = EncodeRequest(1, "dense", rows, (PoolingParams(task="embed"),), b"\0" * 4 * 5)

    async def run() -> None:
        task = asyncio.get_running_loop().create_task(server._encode(b"w", request))
        await asyncio.sleep(0.05)
        assert board.room("dense") == 11  # five sequences in flight
        release.set()
        await task
        assert board.room("dense") == 16
        outcome.append(OverloadedError("full"))
        await server._encode(b"w", request)
        assert board.room("dense") == 16 and isinstance(sock.sent[-1], ErrorReply)

    asyncio.run(run())
    board.close()
