"""`retrieval serve --ray ADDRESS --engine-replicas 2` as a real process on the session's local Ray instance:
the same embeddings as the one-process server, one admission budget over both replicas (429 beyond it), and a
replica killed by Ray: its requests in flight answer 503 at once, the other replica serves meanwhile, and the
service takes the restarted replica back."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import httpx
import numpy as np
import pytest

from retrieval.config import default_model_source
from tests.api._server import LiveServer, ServerProcess, free_port, wait_until_serving
from tests.conftest import MINILM

ROOT = Path(__file__).resolve().parents[2]
TEXTS = ["a short text", "a somewhat longer text about retrieval and vectors", "x"]
QUEUE = 4  # sequences each replica admits of the slow model


@contextmanager
def _serve(ray_address: str, tmp: Path, *flags: str) -> Iterator[ServerProcess]:
    """`retrieval serve` with MiniLM and a slow null model on two replicas of the session's Ray instance."""
    source = default_model_source()
    slow_null = {"source": source, "name": "slow-null", "hf_overrides": {"architectures": ["NullModel"]}}
    slow_null |= {"max_queue": QUEUE, "max_wait_ms": 3000}  # four sequences admitted, held 3 s before running
    config = {"models": [{"source": source, "name": MINILM}, slow_null], "data_dir": str(tmp / "data")}
    (tmp / "config.json").write_text(json.dumps(config))
    port = free_port()
    cmd = [sys.executable, "-m", "api.server", "serve", "--config", str(tmp / "config.json"), "--port", str(port)]
    cmd += ["--ray", ray_address, "--engine-replicas", "2", "--engine-cpus", "0.5", *flags]
    log = tmp / "server.log"
    with log.open("wb") as err:
        proc = subprocess.Popen(cmd, cwd=ROOT, stderr=err)
    url = f"http://127.0.0.1:{port}"
    wait_until_serving(proc, url, log)
    try:
        yield ServerProcess(proc, url, log)
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def replicated(ray_address: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with _serve(ray_address, tmp_path_factory.mktemp("replicas")) as server:
        yield server


def _slow(url: str, i: int) -> httpx.Response:
    with httpx.Client(base_url=url, timeout=20) as client:  # a hang fails the test with a timeout
        return client.post("/v1/embeddings", json={"model": "slow-null", "input": f"text {i}"})


def _burst(url: str, n: int, *, spaced_s: float = 0.0) -> list[httpx.Response]:
    with ThreadPoolExecutor(n) as pool:
        futures = []
        for i in range(n):
            futures.append(pool.submit(_slow, url, i))
            time.sleep(spaced_s)
        return [f.result() for f in futures]


def _replicas() -> list[object]:
    """Handles of the server's replica actors (named actors in the service's namespace)."""
    import ray

    from retrieval.distributed.replicas import NAMESPACE

    named = ray.util.list_named_actors(all_namespaces=True)
    names = sorted(a["name"] for a in named if a["namespace"] == NAMESPACE and a["name"].startswith("engine-"))
    assert len(names) == 2, named
    return [ray.get_actor(name, namespace=NAMESPACE) for name in names]


def _wait_for_load(replicas: list[object], sequences: int) -> None:
    """Until each replica reports `sequences` of the slow model in flight (2.5 s at most: they are held 3 s)."""
    import ray

    deadline = time.monotonic() + 2.5
    while time.monotonic() < deadline:
        loads = ray.get([r.load.remote() for r in replicas], timeout=5)  # type: ignore[attr-defined]
        if all(load["slow-null"][0] == sequences for load in loads):
            return
        time.sleep(0.05)
    raise AssertionError(f"the replicas did not each get {sequences} requests: {loads}")


def _wait_until_restarted(replica: object, within_s: float) -> None:
    """Until the restarted `replica` answers `ready` (a call made while Ray is still restarting the actor fails at
    once with ActorUnavailableError rather than waiting for it, so it is asked again)."""
    import ray

    deadline = time.monotonic() + within_s
    while True:
        try:
            ray.get(replica.ready.remote(), timeout=max(1.0, deadline - time.monotonic()))  # type: ignore[attr-defined]
            return
        except ray.exceptions.ActorUnavailableError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def test_embeddings_equal_the_one_process_server(replicated: ServerProcess, minilm_server: LiveServer) -> None:
    body = {"model": MINILM, "input": TEXTS}
    with httpx.Client(timeout=30) as client:
        expected = client.post(f"{minilm_server.url}/v1/embeddings", json=body)
        answers = [client.post(f"{replicated.url}/v1/embeddings", json=body) for _ in range(4)]  # both replicas
    assert expected.status_code == 200, expected.text
    want = np.array([d["embedding"] for d in expected.json()["data"]])
    for resp in answers:
        assert resp.status_code == 200, resp.text
        np.testing.assert_allclose(np.array([d["embedding"] for d in resp.json()["data"]]), want, atol=1e-5)


def test_every_replica_full_answers_429(replicated: ServerProcess) -> None:
    answers = _burst(replicated.url, 4 * QUEUE)
    codes = sorted(r.status_code for r in answers)
    assert codes == [200] * (2 * QUEUE) + [429] * (2 * QUEUE)  # two replicas of four, the rest refused
    refused = [r for r in answers if r.status_code == 429]
    assert all(r.headers["retry-after"] == "1" for r in refused)
    assert all("the server is overloaded" in r.json()["error"]["message"] for r in refused), refused[0].text
    assert all(d["embedding"] == [0.0] * 384 for r in answers if r.status_code == 200 for d in r.json()["data"])
    again = _burst(replicated.url, 2 * QUEUE)  # at once: what was just answered no longer counts as queued
    assert [r.status_code for r in again] == [200] * (2 * QUEUE)


def test_a_killed_replica_fails_its_requests_and_comes_back(replicated: ServerProcess) -> None:
    import ray

    victim, survivor = _replicas()
    with ThreadPoolExecutor(4) as pool:
        in_flight = [pool.submit(_slow, replicated.url, i) for i in range(4)]  # two on each replica, held 3 s
        _wait_for_load([victim, survivor], 2)
        ray.kill(victim, no_restart=False)  # Ray restarts it; it loads its models again
        held = [f.result() for f in in_flight]
    assert sorted(r.status_code for r in held) == [200, 200, 503, 503]
    lost = next(r for r in held if r.status_code == 503)
    assert "engine replica" in lost.json()["error"]["message"], lost.text
    during = _burst(replicated.url, QUEUE)  # the gap: the survivor answers what fits it
    assert [r.status_code for r in during] == [200] * QUEUE
    _wait_until_restarted(victim, 60)
    ray.get(survivor.ready.remote(), timeout=5)
    deadline = time.monotonic() + 10
    while True:  # the service takes it back within its liveness poll
        after = _burst(replicated.url, 2 * QUEUE, spaced_s=0.05)
        if sorted(r.status_code for r in after) == [200] * (2 * QUEUE) or time.monotonic() > deadline:
            break
    assert sorted(r.status_code for r in after) == [200] * (2 * QUEUE)


def test_two_api_workers_share_the_replicas(ray_address: str, tmp_path: Path, minilm_server: LiveServer) -> None:
    """`--api-workers 2`: both HTTP processes feed the parent's replicas; their loads, polled by every worker,
    make one budget (requests spaced beyond the poll interval, so each worker sees the other's)."""
    with _serve(ray_address, tmp_path, "--api-workers", "2") as server:
        body = {"model": MINILM, "input": TEXTS}
        with httpx.Client(timeout=30) as client:
            want = client.post(f"{minilm_server.url}/v1/embeddings", json=body).json()["data"]
            answers = [client.post(f"{server.url}/v1/embeddings", json=body) for _ in range(4)]
        for resp in answers:
            assert resp.status_code == 200, resp.text
            got = [d["embedding"] for d in resp.json()["data"]]
            np.testing.assert_allclose(got, [d["embedding"] for d in want], atol=1e-5)
        codes = sorted(r.status_code for r in _burst(server.url, 4 * QUEUE, spaced_s=0.15))
        assert codes == [200] * (2 * QUEUE) + [429] * (2 * QUEUE)
