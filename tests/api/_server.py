"""Run the real app under uvicorn on 127.0.0.1 in a background thread, for end-to-end tests."""

from __future__ import annotations

import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import msgspec
import uvicorn

from api import create_app
from encoder import Engine
from retrieval import ModelRegistry, ServiceConfig

__all__ = ["LiveServer", "live_server"]


@dataclass(frozen=True)
class LiveServer:
    url: str  # http://127.0.0.1:<port>
    registry: ModelRegistry
    data_dir: Path  # the server's store and snapshots
    app: Any = None  # the Litestar app: `app.state.service` is the server's RetrievalService

    def client(self, **kwargs: object) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=60, **kwargs)  # type: ignore[arg-type]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class ServerProcess:
    """A `retrieval serve` started as a process of its own by a test."""

    proc: subprocess.Popen[bytes]  # the (parent) `retrieval serve` process
    url: str  # http://127.0.0.1:<port>
    log: Path  # its stderr


def wait_until_serving(proc: subprocess.Popen[bytes], url: str, log: Path, seconds: float = 120) -> None:
    """Until `url` answers `GET /v1/collections` with 200 (the process dying meanwhile fails with its log)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text()
        try:
            if httpx.get(f"{url}/v1/collections", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{url} did not start in {seconds:.0f} s: {log.read_text()[-2000:]}")


@contextmanager
def bulk_server(engine: Engine, root: Path) -> Iterator[LiveServer]:
    """A live server of `engine` whose bulk loads (`POST .../bulk` with a `path`) read files under `root`."""
    with live_server(ModelRegistry([engine]), ServiceConfig(bulk_root=str(root))) as live:
        yield live


@contextmanager
def live_server(registry: ModelRegistry, config: ServiceConfig | None = None) -> Iterator[LiveServer]:
    """Serve `registry` (already loaded) on a free loopback port until the block ends.

    The data directory is a fresh temporary one, removed afterwards, unless `config` names its own.
    """
    with tempfile.TemporaryDirectory(prefix="retrieval-data-", ignore_cleanup_errors=True) as tmp:
        cfg = config or ServiceConfig()
        if cfg.data_dir == ServiceConfig().data_dir:
            cfg = msgspec.structs.replace(cfg, data_dir=tmp)
        with _serve(registry, cfg) as server:
            yield server


@contextmanager
def _serve(registry: ModelRegistry, cfg: ServiceConfig) -> Iterator[LiveServer]:
    port = free_port()
    app = create_app(cfg, registry)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("test server did not start")
        time.sleep(0.02)
    try:
        yield LiveServer(url, registry, cfg.data_path, app)
    finally:
        server.should_exit = True
        thread.join(timeout=15)
