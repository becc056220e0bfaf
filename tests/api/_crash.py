"""The real server as a separate process, for the durability tests: start, SIGKILL, SIGTERM, read its log.

Two launchers run the same entry point (`api.server.main`): `ExecLauncher` spawns `python -m api.server serve`
afresh each time; `ForkLauncher` forks it from `_forkserver.py`, which has imported torch and transformers
once (a start costs well under a second instead of several), so the fast tests can afford ten kills.
"""

from __future__ import annotations

import ast
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import httpx

__all__ = ["CrashDriver", "ExecLauncher", "ForkLauncher", "Launcher", "Opened", "ServerProcess", "fresh_server"]

ROOT = Path(__file__).resolve().parents[2]
FORKSERVER = Path(__file__).with_name("_forkserver.py")
_RUNNING = re.compile(r"(?:Uvicorn running on|serving on) http://127\.0\.0\.1:(\d+)")  # one process | API workers
_OPENED = re.compile(r"collection (\S+): (snapshot|rebuild) in [\d.]+ s \((\{.*?\})\)")


class Launcher(Protocol):
    def start(self, argv: list[str], log: Path) -> int: ...

    def wait(self, pid: int) -> int: ...

    def poll(self, pid: int) -> int | None: ...


class ExecLauncher:
    """`sys.executable -m api.server <argv>`, a fresh interpreter per start."""

    def __init__(self) -> None:
        self._children: dict[int, subprocess.Popen[bytes]] = {}  # pid -> process

    def start(self, argv: list[str], log: Path) -> int:
        with open(log, "ab") as out:
            child = subprocess.Popen(
                [sys.executable, "-m", "api.server", *argv], cwd=ROOT, stdout=out, stderr=subprocess.STDOUT
            )
        self._children[child.pid] = child
        return child.pid

    def wait(self, pid: int) -> int:
        return self._children.pop(pid).wait(timeout=60)

    def poll(self, pid: int) -> int | None:
        return self._children[pid].poll()

    def close(self) -> None:
        for child in self._children.values():
            child.kill()
            child.wait(timeout=30)


class ForkLauncher:
    """Forks `api.server.main(argv)` from a warm `_forkserver.py` process."""

    def __init__(self, model: Path) -> None:
        self._proc = subprocess.Popen(
            [sys.executable, str(FORKSERVER), f"tiny={model}"],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self._ask(None)  # {"ready": true} once imports are done
        self._live: set[int] = set()  # children not yet waited for

    def _ask(self, request: dict[str, object] | None) -> dict[str, Any]:
        assert self._proc.stdin is not None and self._proc.stdout is not None
        if request is not None:
            self._proc.stdin.write(json.dumps(request) + "\n")
            self._proc.stdin.flush()
        line = self._proc.stdout.readline()
        if not line:
            raise RuntimeError(f"fork server ended (status {self._proc.poll()})")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def start(self, argv: list[str], log: Path) -> int:
        pid = self._ask({"start": argv, "log": str(log)})["pid"]
        self._live.add(pid)
        return pid

    def wait(self, pid: int) -> int:
        self._live.discard(pid)
        status: int = self._ask({"wait": pid})["status"]
        return status

    def poll(self, pid: int) -> int | None:
        status: int | None = self._ask({"poll": pid})["status"]
        return status

    def close(self) -> None:
        for pid in list(self._live):
            os.kill(pid, signal.SIGKILL)
            self.wait(pid)
        assert self._proc.stdin is not None
        self._proc.stdin.close()
        self._proc.wait(timeout=30)


@dataclass(frozen=True)
class Opened:
    """How one collection came up at a start (the service's log line)."""

    how: Literal["snapshot", "rebuild"]  # loaded snapshots + replay, or rebuilt from the store
    sizes: dict[str, int]  # entries per index family right after opening


@dataclass
class ServerProcess:
    """One data directory served by a succession of server processes (one at a time)."""

    launcher: Launcher  # how a process is started
    model: Path  # checkpoint served as `tiny` (the default collection's model)
    data_dir: Path  # store and snapshots, kept across starts
    config: dict[str, object] = field(default_factory=dict)  # extra ServiceConfig fields (--config FILE)
    extra_models: tuple[str, ...] = ()  # further `--model NAME=PATH` arguments (tiny stays the default)
    flags: tuple[str, ...] = ()  # further `serve` flags (per-model ones such as --max-queue)
    pid: int | None = None  # the running process
    url: str = ""  # http://127.0.0.1:<port> of the running process
    log: Path | None = None  # stdout + stderr of the running process
    starts: int = 0  # processes started so far

    def start(self, timeout_s: float = 120.0) -> None:
        """Start a process on a port of the kernel's choosing (`--port 0`: no port picked in advance that
        another socket could take meanwhile) and wait until it listens and /readyz answers 200."""
        assert self.pid is None, "a server is already running"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        config = self.data_dir.parent / f"{self.data_dir.name}-config.json"
        config.write_text(json.dumps(self.config))
        self.starts += 1
        self.log = self.data_dir.parent / f"{self.data_dir.name}-server-{self.starts}.log"
        argv = ["serve", "--model", f"tiny={self.model}", "--data-dir", str(self.data_dir)]
        argv += [arg for model in self.extra_models for arg in ("--model", model)]
        argv += ["--port", "0", "--host", "127.0.0.1", "--config", str(config), *self.flags]
        self.pid = self.launcher.start(argv, self.log)
        deadline = time.monotonic() + timeout_s
        self.url = f"http://127.0.0.1:{self._wait_listening(deadline)}"
        self.wait_ready(deadline)

    def wait_ready(self, deadline: float) -> None:
        """Poll `/readyz` until 200: the server binds before it loads its models and indexes."""
        while (status := httpx.get(f"{self.url}/readyz", timeout=30).status_code) != 200:
            assert status == 503 and time.monotonic() < deadline, f"/readyz {status}:\n{self.log_text()[-3000:]}"
            time.sleep(0.02)
        assert httpx.get(f"{self.url}/health", timeout=30).status_code == 200

    def _wait_listening(self, deadline: float) -> int:
        """The port from uvicorn's "running on" line, written once the lifespan has started and it listens."""
        assert self.pid is not None
        while time.monotonic() < deadline:
            if found := _RUNNING.search(self.log_text()):
                return int(found.group(1))
            if (status := self.launcher.poll(self.pid)) is not None:
                self.pid = None
                raise AssertionError(f"server exited with {status} at start:\n{self.log_text()[-3000:]}")
            time.sleep(0.02)
        raise AssertionError(f"server did not start listening:\n{self.log_text()[-3000:]}")

    def kill(self) -> None:
        """SIGKILL the process (no shutdown code runs) and reap it."""
        assert self.pid is not None
        os.kill(self.pid, signal.SIGKILL)
        status = self.launcher.wait(self.pid)
        self.pid = None
        assert status == -signal.SIGKILL, status

    def terminate(self) -> None:
        """SIGTERM: uvicorn's graceful shutdown (the lifespan writes the snapshots), after which uvicorn
        re-raises the signal it caught, so the status is -SIGTERM (or 0) and the log says it finished."""
        assert self.pid is not None
        os.kill(self.pid, signal.SIGTERM)
        status = self.launcher.wait(self.pid)
        self.pid = None
        log = self.log_text()
        assert status in (0, -signal.SIGTERM) and "Application shutdown complete" in log, f"{status}:\n{log[-3000:]}"

    def log_text(self) -> str:
        """The current process's output so far ("" until the child has created its log)."""
        return self.log.read_text(errors="replace") if self.log and self.log.exists() else ""

    def opened(self, collection: str, timeout_s: float = 30.0) -> Opened:
        """How the current process brought `collection` up (its log line: Litestar's queue handler writes
        it from a thread of its own, possibly after the server already answers)."""
        deadline = time.monotonic() + timeout_s
        while True:
            found = {name: (how, sizes) for name, how, sizes in _OPENED.findall(self.log_text())}
            if collection in found:
                how, sizes = found[collection]
                return Opened(how, ast.literal_eval(sizes))
            assert time.monotonic() < deadline, f"no start line for {collection}:\n{self.log_text()[-3000:]}"
            time.sleep(0.02)

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=60)


@contextmanager
def fresh_server(
    model: Path, *, flags: tuple[str, ...] = (), config: dict[str, object] | None = None
) -> Iterator[ServerProcess]:
    """A fresh interpreter (`ExecLauncher`) serving `model` as `tiny` on a temporary data directory, started and
    ready; terminated, and its directory removed, when the block ends (the benchmarks' server)."""
    launcher = ExecLauncher()
    with tempfile.TemporaryDirectory(prefix="retrieval-bench-") as tmp:
        server = ServerProcess(launcher, model, Path(tmp) / "data", config or {}, flags=flags)
        server.start()
        try:
            yield server
        finally:
            if server.pid is not None:
                server.terminate()
            launcher.close()


class CrashDriver:
    """One data directory through a succession of killed server processes: what every crash harness shares
    (start and collection creation, joining its writer threads into the tally); subclasses stream their own
    writes and check against their own reference of acknowledged states."""

    def __init__(self, server: ServerProcess, seed: int, spec: dict[str, Any], tally: Any) -> None:
        self.server = server
        self.rng = random.Random(seed)
        self.spec = spec  # `POST /v1/collections` body
        self.states: dict[str, Any] = {}  # document id -> acknowledged state (None: deleted)
        self.tally = tally  # counts with at least `acked_ops` and `acked_docs`

    def begin(self) -> None:
        self.server.start()
        with self.server.client() as client:
            assert client.post("/v1/collections", json=self.spec).status_code == 201

    def join_writers(self, writers: list[Any]) -> list[Any]:
        """Wait for the writer threads (each must end without error); their in-flight ops, if any."""
        for writer in writers:
            writer.join(timeout=60)
            assert not writer.is_alive() and writer.error is None, writer.error
            self.tally.acked_ops += writer.acked_ops
            self.tally.acked_docs += writer.acked_docs
        return [w.pending for w in writers if w.pending is not None]
