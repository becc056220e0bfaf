"""`retrieval serve --api-workers 2` as a real process tree: same embeddings as one process, a shared
admission budget (429s), store routes answered through any worker, 503 once the engine dies, clean SIGTERM."""

from __future__ import annotations

import base64
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pytest

from encoder import PoolingParams
from retrieval import ModelRegistry
from retrieval.config import default_model_source
from tests.api._server import ServerProcess, free_port, wait_until_serving

ROOT = Path(__file__).resolve().parents[2]
TEXTS = ["a short text", "a somewhat longer text about retrieval and vectors", "x"]


def _children(pid: int) -> list[int]:
    """Pids whose parent is `pid`, read from /proc (the independent reference for 'no children left')."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    tmp = tmp_path_factory.mktemp("workers")
    source = default_model_source()
    slow_null = {"source": source, "name": "slow-null", "hf_overrides": {"architectures": ["NullModel"]}}
    slow_null |= {"max_queue": 4, "max_wait_ms": 3000}  # four sequences admitted, held 3 s before running
    config = {"models": [{"source": source, "name": "minilm"}, slow_null], "data_dir": str(tmp / "data")}
    (tmp / "config.json").write_text(json.dumps(config))
    port = free_port()
    cmd = [sys.executable, "-m", "api.server", "serve", "--config", str(tmp / "config.json"), "--port", str(port)]
    log = tmp / "server.log"
    with log.open("wb") as err:
        proc = subprocess.Popen([*cmd, "--api-workers", "2", "--log-level", "info"], cwd=ROOT, stderr=err)
    url = f"http://127.0.0.1:{port}"
    wait_until_serving(proc, url, log)
    try:
        yield ServerProcess(proc, url, log)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_embeddings_match_the_in_process_engine(tree: ServerProcess, minilm_registry: ModelRegistry) -> None:
    body = {"model": "minilm", "input": TEXTS, "encoding_format": "base64"}
    with httpx.Client(base_url=tree.url, timeout=30) as client:
        answers = [client.post("/v1/embeddings", json=body) for _ in range(4)]  # reaches both workers
    expected = minilm_registry.default.encode_sync(TEXTS, PoolingParams(task="embed")).outputs
    for resp in answers:
        assert resp.status_code == 200, resp.text
        got = [np.frombuffer(base64.b64decode(d["embedding"]), dtype=np.float32) for d in resp.json()["data"]]
        for g, e in zip(got, expected, strict=True):
            np.testing.assert_allclose(g, e.numpy(), atol=1e-5)


def test_shared_budget_answers_429_beyond_it(tree: ServerProcess) -> None:
    def one(i: int) -> httpx.Response:
        with httpx.Client(base_url=tree.url, timeout=30) as client:
            return client.post("/v1/embeddings", json={"model": "slow-null", "input": f"text {i}"})

    with ThreadPoolExecutor(12) as pool:
        answers = list(pool.map(one, range(12)))
    codes = sorted(r.status_code for r in answers)
    assert codes == [200] * 4 + [429] * 8  # the engine's queue of 4 is shared by both workers
    assert all(r.headers["retry-after"] == "1" for r in answers if r.status_code == 429)
    assert all(d["embedding"] == [0.0] * 384 for r in answers if r.status_code == 200 for d in r.json()["data"])


def test_store_routes_answer_through_every_worker(tree: ServerProcess) -> None:
    with httpx.Client(base_url=tree.url, timeout=30) as client:
        resp = client.post("/v1/collections", json={"name": "shared", "dense_model": "minilm"})
        assert resp.status_code in (200, 201), resp.text
        docs = [{"id": "a", "text": "the cat sat on the mat"}, {"id": "b", "text": "stock markets fell today"}]
        assert client.post("/v1/collections/shared/documents", json={"documents": docs}).status_code == 200
        for _ in range(6):  # new connections land on either worker; each sees the one store
            with httpx.Client(base_url=tree.url, timeout=30) as fresh:
                hits = fresh.post("/v1/collections/shared/search", json={"query": "a cat on a mat", "top_k": 1})
                assert hits.status_code == 200, hits.text
                assert hits.json()["data"][0]["id"] == "a"


def test_export_import_and_mcp_answer_through_every_worker(tree: ServerProcess) -> None:
    """The routes of issue 22 live in worker 0 too: an archive streams out and back in, and /mcp answers (the
    client's Host travels with a forwarded request: the MCP endpoint checks it against DNS rebinding)."""
    with httpx.Client(base_url=tree.url, timeout=30) as client:
        resp = client.post("/v1/collections", json={"name": "moving", "dense_model": "minilm"})
        assert resp.status_code == 201, resp.text
        docs = [{"id": "a", "text": "the cat sat on the mat"}, {"id": "b", "text": "stock markets fell today"}]
        assert client.post("/v1/collections/moving/documents", json={"documents": docs}).status_code == 200
    tools = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}

    def one(i: int) -> None:
        with httpx.Client(base_url=tree.url, timeout=30) as fresh:  # concurrent connections reach both workers
            archive = fresh.get("/v1/collections/moving/export")
            assert archive.status_code == 200, archive.text
            made = fresh.post(
                "/v1/collections/import",
                params={"name": f"moved-{i}"},
                content=archive.content,
                headers={"Content-Type": "application/x-tar"},
            )
            assert made.status_code == 201 and made.json()["documents"] == 2, made.text
            listed = fresh.post("/mcp", json=tools, headers={"Accept": "application/json, text/event-stream"})
            assert listed.status_code == 200, listed.text
            assert "search" in [t["name"] for t in listed.json()["result"]["tools"]]

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(one, range(8)))


def test_dead_engine_gives_503_then_sigterm_leaves_no_children(tree: ServerProcess) -> None:
    children = _children(tree.proc.pid)
    engine_pid = int(re.findall(r"engine process 0 ready \(pid (\d+)\)", tree.log.read_text())[0])
    assert engine_pid in children and len(children) >= 3  # the engine and two API workers
    os.kill(engine_pid, signal.SIGKILL)
    start = time.monotonic()
    with httpx.Client(base_url=tree.url, timeout=30) as client:
        resp = client.post("/v1/embeddings", json={"model": "minilm", "input": "after the engine died"})
        assert resp.status_code == 503, resp.text  # not a hang: the liveness check fails it
        assert time.monotonic() - start < 20
        time.sleep(0.6)
        assert client.get("/health").status_code == 503
    tree.proc.send_signal(signal.SIGTERM)
    assert tree.proc.wait(timeout=30) == 0
    deadline = time.monotonic() + 5  # a child may take a moment to notice its parent is gone
    while any(_alive(pid) for pid in children) and time.monotonic() < deadline:
        time.sleep(0.1)
    left = {pid: Path(f"/proc/{pid}/cmdline").read_bytes() for pid in children if _alive(pid)}
    assert left == {}
