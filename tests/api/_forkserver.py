"""Child process of the durability tests: imports the server stack once, then forks a real server per request.

Usage: ``python tests/api/_forkserver.py NAME=CHECKPOINT`` (cwd = the repository root). Importing torch and
transformers takes most of a server's start (over ten seconds on a busy machine); forking from a process that
has already imported them and loaded the checkpoint once makes each start one to two seconds, so the crash
tests can afford many cycles.
Each forked child runs ``api.server.main(argv)``: the same entry point as ``python -m api.server``, with its
own sockets, SQLite connections, threads and signal handlers, killed by the test like any other process.

Protocol, one JSON object per line: ``{"start": [argv...], "log": PATH}`` answers ``{"pid": n}`` (the child's
stdout and stderr go to PATH); ``{"wait": pid}`` answers ``{"status": returncode}`` once that child has ended
(negative: killed by that signal, as ``subprocess`` reports it); ``{"poll": pid}`` answers at once, with
``null`` while it runs. EOF on stdin ends the fork server.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _warm(checkpoint: str) -> None:
    """Import and build once what a server start builds (the app, uvicorn's config, the model, lazily
    imported modules and compiled regular expressions), so forked children find it warm.

    No Python thread is left running here for a fork to lose while it holds a lock: tqdm's monitor thread (which
    the model's "Loading weights" bar would start, and which takes tqdm's lock every 10 s) is turned off, here
    and so in every child. The native pools (OpenBLAS, OpenMP) idle and start afresh in a child."""
    sys.path.insert(0, str(ROOT))
    from tqdm import std

    std.tqdm.monitor_interval = 0
    import uvicorn

    from api.app import create_app
    from retrieval import ModelRegistry
    from retrieval.cli import config_from_args

    config = config_from_args(["serve", "--model", checkpoint])
    uvicorn.Config(create_app(config), log_level="warning").load()
    ModelRegistry.load(config.models).close()


def _own_tqdm_lock() -> None:
    """tqdm's default lock holds a multiprocessing RLock: a semaphore shared by every process forked from here.
    A child SIGKILLed while holding it (drawing a progress bar) would leave every later child blocked on it at
    its first bar, i.e. forever in "Loading weights". Each child gets a lock of its own."""
    from tqdm import std

    classes: list[type] = [std.tqdm]
    while classes:
        cls = classes.pop()
        cls.set_lock(threading.RLock())  # type: ignore[attr-defined]
        classes.extend(cls.__subclasses__())


def _child(argv: list[str], log: str) -> None:
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    code = 1
    try:
        _own_tqdm_lock()
        from api.server import main

        code = main(argv)
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _status(pid: int, block: bool, ended: dict[int, int]) -> int | None:
    """The child's returncode once it has ended (None while it runs and `block` is false)."""
    if pid not in ended:
        done, raw = os.waitpid(pid, 0 if block else os.WNOHANG)
        if done == 0:
            return None
        ended[pid] = -os.WTERMSIG(raw) if os.WIFSIGNALED(raw) else os.WEXITSTATUS(raw)
    return ended.pop(pid) if block else ended[pid]


def main() -> None:
    _warm(sys.argv[1])
    print(json.dumps({"ready": True}), flush=True)
    ended: dict[int, int] = {}  # children reaped by a poll, not yet waited for
    for line in sys.stdin:
        request = json.loads(line)
        if "start" in request:
            pid = os.fork()
            if pid == 0:
                _child(request["start"], request["log"])
            print(json.dumps({"pid": pid}), flush=True)
        else:
            pid, block = int(request.get("wait", request.get("poll"))), "wait" in request
            print(json.dumps({"status": _status(pid, block, ended)}), flush=True)


if __name__ == "__main__":
    main()
