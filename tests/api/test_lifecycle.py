"""Readiness and graceful shutdown of the real server process.

The server binds before it loads: `/livez` answers at once, `/readyz` (and vLLM's `/health`) are 503 and work
requests get 503 with `Retry-After` until models and indexes are loaded. On SIGTERM readiness turns false, new
requests get 503 with `Retry-After`, the requests in flight finish, the snapshots are saved and the process
exits 0; a drain that outlasts `--drain-timeout` is cut off and still exits 0.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from api.lifecycle import Lifecycle
from retrieval.store.backup import STORE_FILE
from tests.api._crash import ForkLauncher, ServerProcess

TEXT = "a long sentence about graceful shutdown of a retrieval service that keeps every acknowledged write " * 3


@pytest.fixture(scope="module")
def launcher(minilm_path: Path) -> Iterator[ForkLauncher]:
    forks = ForkLauncher(minilm_path)
    yield forks
    forks.close()


def _listening(proc: ServerProcess) -> str:
    """Start the process but return as soon as it listens (before it is ready)."""
    proc.data_dir.mkdir(parents=True, exist_ok=True)
    config = proc.data_dir.parent / "config.json"
    config.write_text(json.dumps(proc.config))
    proc.starts += 1
    proc.log = proc.data_dir.parent / f"server-{proc.starts}.log"
    argv = ["serve", "--model", f"tiny={proc.model}", "--data-dir", str(proc.data_dir), "--port", "0"]
    proc.pid = proc.launcher.start([*argv, "--config", str(config), *proc.flags], proc.log)
    proc.url = f"http://127.0.0.1:{proc._wait_listening(time.monotonic() + 120)}"
    return proc.url


def test_readiness_is_false_until_models_and_indexes_are_loaded(
    launcher: ForkLauncher, minilm_path: Path, tmp_path: Path
) -> None:
    proc = ServerProcess(launcher, minilm_path, tmp_path / "data")
    # Hold the store's write lock, as another process would: opening the store (part of loading) waits for it, so
    # the server is deterministically still starting while we look, however fast it loads on this machine.
    proc.data_dir.mkdir(parents=True)
    holder = sqlite3.connect(proc.data_dir / STORE_FILE, isolation_level=None)
    holder.execute("PRAGMA journal_mode=WAL")
    holder.execute("BEGIN EXCLUSIVE")
    url = _listening(proc)
    seen: list[tuple[int, int, int]] = []
    health: list[tuple[int, int]] = []  # (/health, /readyz just after): vLLM's probe says ready only when it is
    held = 0  # observations made while the lock was held, known once it is released
    with httpx.Client(base_url=url, timeout=30) as c:
        held_until = time.monotonic() + 1.5
        while True:
            polled = c.get("/health").status_code
            ready = c.get("/readyz")
            health.append((polled, ready.status_code))
            if polled == 200:  # a client polling /health may use every route now
                assert c.get("/v1/collections").status_code == 200
            embed = c.post("/v1/embeddings", json={"input": "x"})
            seen.append((c.get("/livez").status_code, ready.status_code, embed.status_code))
            if not held and time.monotonic() > held_until:
                holder.rollback()
                holder.close()
                held = len(seen)
            if ready.status_code == 200:
                break
            assert ready.json() == {"status": "starting"} and embed.status_code in (503, 200)
            if embed.status_code == 503:
                assert embed.headers["retry-after"] == "1" and "starting" in embed.json()["error"]["message"]
    assert held >= 2, seen
    assert all(entry[:2] == (200, 503) for entry in seen[:held]), seen[:held]  # alive, not ready
    assert all(live == 200 for live, _, _ in seen)
    assert all(polled == 503 for polled, _ in health[:held]), health[:held]  # not while collections are loading
    assert all(ready == 200 for polled, ready in health if polled == 200), health
    assert httpx.get(f"{url}/health").status_code == 200
    proc.terminate()


def _slow_requests(url: str, n: int, inputs: int, out: list[int]) -> list[threading.Thread]:
    def send() -> None:
        try:
            resp = httpx.post(f"{url}/v1/embeddings", json={"input": [TEXT] * inputs}, timeout=120)
            out.append(resp.status_code)
        except httpx.HTTPError:
            out.append(0)

    threads = [threading.Thread(target=send) for _ in range(n)]
    for t in threads:
        t.start()
    return threads


def _wait_inflight(url: str, n: int) -> None:
    deadline = time.monotonic() + 30
    while "retrieval_inflight_requests " + f"{float(n)}" not in httpx.get(f"{url}/metrics").text:
        assert time.monotonic() < deadline, "requests never reached the server"
        time.sleep(0.01)


def test_sigterm_drains_in_flight_requests_saves_snapshots_and_exits_0(
    launcher: ForkLauncher, minilm_path: Path, tmp_path: Path
) -> None:
    config: dict[str, object] = {"snapshot_interval_s": 3600, "drain_timeout_s": 90}
    proc = ServerProcess(launcher, minilm_path, tmp_path / "data", config=config)
    proc.start()
    with proc.client() as c:
        docs = [{"id": f"d{i}", "text": f"note {i}"} for i in range(20)]
        assert c.post("/v1/collections/default/documents", json={"documents": docs}).status_code == 200
    statuses: list[int] = []
    threads = _slow_requests(proc.url, 3, 32, statuses)
    _wait_inflight(proc.url, 3)
    assert proc.pid is not None
    os.kill(proc.pid, signal.SIGTERM)
    with httpx.Client(base_url=proc.url, timeout=30) as c:
        ready = c.get("/readyz")
        assert (ready.status_code, ready.json()) == (503, {"status": "draining"})
        assert c.get("/livez").status_code == 200
        refused = c.post("/v1/embeddings", json={"input": "new work"})
        assert refused.status_code == 503 and refused.headers["retry-after"] == "1"
        assert "shutting down" in refused.json()["error"]["message"]
    for t in threads:
        t.join(timeout=120)
    assert statuses == [200, 200, 200]  # every request in flight at SIGTERM finished
    status = launcher.wait(proc.pid)
    proc.pid = None
    assert status == 0 and "Application shutdown complete" in proc.log_text()
    assert list((proc.data_dir / "indexes" / "default").iterdir())  # the snapshots were saved on the way out
    proc.start()
    assert proc.opened("default").how == "snapshot"
    proc.terminate()


def test_a_drain_longer_than_the_timeout_is_cut_off(launcher: ForkLauncher, minilm_path: Path, tmp_path: Path) -> None:
    proc = ServerProcess(launcher, minilm_path, tmp_path / "data", flags=("--drain-timeout", "0.3"))
    proc.start()
    statuses: list[int] = []
    threads = _slow_requests(proc.url, 1, 4000, statuses)  # many seconds of encoding
    _wait_inflight(proc.url, 1)
    assert proc.pid is not None
    started = time.monotonic()
    os.kill(proc.pid, signal.SIGTERM)
    status = launcher.wait(proc.pid)
    proc.pid = None
    took = time.monotonic() - started
    assert status == 0 and took < 15, (status, took)
    assert "drain timeout" in proc.log_text()
    for t in threads:
        t.join(timeout=60)
    assert statuses != [200]


def test_search_slots_outside_the_middleware_share_the_limit() -> None:
    lifecycle = Lifecycle(max_inflight_search=1, retry_after_s=1)
    with lifecycle.search_slot() as first:
        assert first and lifecycle.inflight_search == 1
        with lifecycle.search_slot() as second:
            assert not second and lifecycle.rejected == 1
    assert lifecycle.inflight_search == 0


def test_a_failed_start_exits_1_and_logs_readable_lines(tmp_path: Path) -> None:
    """A model that cannot be found: the reason and its causes, one log line each, no escaped traceback."""
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    argv = [sys.executable, "-m", "api.server", "serve", "--model", "nope/missing-model", "--port", "0"]
    env = {**os.environ, "PYTHONPATH": str(root), "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(
        [*argv, "--data-dir", str(tmp_path / "d")], capture_output=True, text=True, env=env, timeout=180, cwd=root
    )
    assert done.returncode == 1, done.stderr[-2000:]
    errors = [line for line in done.stderr.splitlines() if "level=error" in line]
    assert "start-up failed: ModelLoadError: cannot resolve model 'nope/missing-model'" in errors[0], errors
    assert any("caused by" in line for line in errors[1:]), errors
    assert all("\\n" not in line and "Traceback" not in line for line in errors), errors
