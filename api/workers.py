"""`retrieval serve --api-workers N`: N HTTP processes on one port in front of one engine process per device.

    parent (this module)      binds the port, starts everything, stops everything on SIGTERM / SIGINT
      engine process i        loads the models on GPU i (CUDA_VISIBLE_DEVICES=i; one process on CPU),
                              batches the inputs of every worker: retrieval/models/engines/engine_process.py
      API worker 0            every route; owns the store (the only SQLite writer); also listens on a
                              Unix socket for the store routes the other workers forward
      API workers 1..N-1      the model routes (parse, validate, tokenise, encode the response); the store
                              routes are streamed to worker 0 (api/forward.py)

With `--ray ... --engine-replicas N` the parent launches N Ray engine replicas instead of the engine processes
(retrieval/distributed/replicas.py) and every worker feeds them through Ray actor calls.

All workers accept on one listening socket inherited from the parent. Each worker loads its models on CPU for
tokenisation and model metadata only; the forward passes run in the engine processes.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import socket
import tempfile
import threading
import time
from collections.abc import Callable
from multiprocessing import connection, get_context
from multiprocessing.process import BaseProcess

import msgspec
import uvicorn

from api.app import create_app
from api.forward import forward_store_routes
from api.request_id import configure_logging
from api.routes import STORE_PREFIXES
from retrieval import ModelRegistry, ServiceConfig
from retrieval.models.engines import EngineClient, LoadBoard, run_engine_process
from retrieval.models.engines.client import batching_through

__all__ = ["engine_count", "run_api_worker", "serve_workers"]

log = logging.getLogger(__name__)

_READY_TIMEOUT_S = 600.0  # an engine process has this long to load its models
_STOP_TIMEOUT_S = 15.0  # a child has this long to exit after SIGTERM before it is killed
Lifespan = Callable[[object], contextlib.AbstractAsyncContextManager[None]]


def engine_count(config: ServiceConfig) -> int:
    """`engine_processes`, else one per visible CUDA device (one when there is none or models are on CPU)."""
    if config.engine_processes:
        return config.engine_processes
    if any(spec.device == "cpu" for spec in config.models):
        return 1
    import torch

    return max(1, torch.cuda.device_count())


def _board_path(run_dir: str, engine: int) -> str:
    """Where engine process `engine` publishes what it has in flight (`LoadBoard`)."""
    return os.path.join(run_dir, f"engine-{engine}.load")


def _watch_parent(parent: int) -> None:
    """A worker exits when its parent is gone (killed without a chance to stop us)."""
    while os.getppid() == parent:
        time.sleep(0.5)
    os.kill(os.getpid(), signal.SIGTERM)


def run_api_worker(config: ServiceConfig, index: int, sock: socket.socket, engines: list[str], run_dir: str) -> None:
    """Process entry of API worker `index`: serve `sock` (and, for worker 0, the store's Unix socket)."""
    configure_logging(config.log_level)
    threading.Thread(target=_watch_parent, args=(os.getppid(),), daemon=True).start()
    cpu_specs = tuple(msgspec.structs.replace(s, device="cpu") for s in config.models)
    registry = ModelRegistry.load(cpu_specs)  # tokenizers and metadata; no forward pass runs here
    engines_lifespan = _engines_lifespan(config, registry, engines, run_dir)
    store_socket = os.path.join(run_dir, "store.sock")
    app = create_app(config, registry, store="own" if index == 0 else "none", before=[engines_lifespan])
    sockets = [sock]
    asgi = app
    if index == 0:
        private = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        private.bind(store_socket)
        sockets.append(private)
    else:
        asgi = forward_store_routes(app, store_socket, STORE_PREFIXES)  # type: ignore[assignment]
    server = uvicorn.Server(
        uvicorn.Config(asgi, log_level=config.log_level, access_log=config.access_log, log_config=None, lifespan="on")
    )
    server.run(sockets=sockets)


def _engines_lifespan(config: ServiceConfig, registry: ModelRegistry, engines: list[str], run_dir: str) -> Lifespan:
    """What feeds this worker's models: the engine processes at `engines` over ZeroMQ or, with `engine_replicas`,
    the Ray replicas named `engines` (Ray is imported only then)."""
    if config.engine_replicas and config.ray:
        from retrieval.distributed.engine_client import replica_batchers
        from retrieval.distributed.replicas import connect

        connect(config.ray)  # the parent's cluster, by its resolved address
        return lambda _: replica_batchers(registry, engines)
    names = [engine.name for engine in registry]
    client = EngineClient(engines, boards=[LoadBoard(_board_path(run_dir, i), names) for i in range(len(engines))])

    return lambda _: batching_through(client, registry)


def _start_engines(config: ServiceConfig, run_dir: str) -> tuple[list[BaseProcess], list[str]]:
    """One engine process per device, each started with only its GPU visible; waits until all are ready."""
    ctx = get_context("spawn")
    procs: list[BaseProcess] = []
    addresses: list[str] = []
    pipes = []
    saved = os.environ.get("CUDA_VISIBLE_DEVICES")
    count = engine_count(config)
    try:
        for i in range(count):
            address = f"ipc://{run_dir}/engine-{i}"
            receive, send = ctx.Pipe(duplex=False)
            if count > 1:
                os.environ["CUDA_VISIBLE_DEVICES"] = str(i)
            board = _board_path(run_dir, i)
            proc = ctx.Process(target=run_engine_process, args=(config.models, address, send, os.getpid(), board))
            proc.start()
            procs.append(proc)
            addresses.append(address)
            pipes.append(receive)
    finally:
        if saved is None:
            os.environ.pop("CUDA_VISIBLE_DEVICES", None)
        else:
            os.environ["CUDA_VISIBLE_DEVICES"] = saved
    for i, (started, pipe) in enumerate(zip(procs, pipes, strict=True)):
        if not pipe.poll(_READY_TIMEOUT_S):
            raise RuntimeError(f"engine process {i} did not start (exit code {started.exitcode})")
        log.info("engine process %d ready (pid %d) at %s", i, pipe.recv(), addresses[i])
    return procs, addresses


def _wait_for_store(path: str, owner: BaseProcess) -> None:
    """Block until worker 0 accepts connections on its store socket (it has opened the store)."""
    deadline = time.monotonic() + _READY_TIMEOUT_S
    while time.monotonic() < deadline and owner.is_alive():
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            try:
                probe.connect(path)
                return
            except OSError:
                time.sleep(0.05)
    raise RuntimeError(f"API worker 0 did not start (exit code {owner.exitcode})")


def _stop(procs: list[BaseProcess]) -> None:
    for proc in procs:
        if proc.is_alive():
            proc.terminate()
    deadline = time.monotonic() + _STOP_TIMEOUT_S
    for proc in procs:
        proc.join(max(0.0, deadline - time.monotonic()))
        if proc.is_alive():
            proc.kill()
            proc.join()


def _supervise(workers: list[BaseProcess], engines: list[BaseProcess], stop: threading.Event) -> int:
    """Wait until SIGTERM/SIGINT (0) or a worker exits (1). A dead engine is logged; workers then answer 503."""
    reported: set[int] = set()
    while not stop.is_set():
        connection.wait([p.sentinel for p in workers], timeout=0.5)
        if any(not p.is_alive() for p in workers):
            log.error("an API worker exited; stopping")
            return 1
        for i, proc in enumerate(engines):
            if not proc.is_alive() and i not in reported:
                reported.add(i)
                log.error("engine process %d exited with code %s; its requests now get 503", i, proc.exitcode)
    return 0


def _on_signals(stop: threading.Event) -> None:
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())


def _start_replicas(config: ServiceConfig, stop: threading.Event) -> tuple[ServiceConfig, list[tuple[str, object]]]:
    """Launch the Ray engine replicas (this process owns them: they go when it goes, or when it drops their
    handles); the config the workers get (the cluster's resolved address) and `(name, handle)` of each."""
    from retrieval.distributed.replicas import cluster_address, launch_replicas

    replicas = launch_replicas(config)
    _on_signals(stop)  # joining Ray replaced our SIGTERM handler
    return msgspec.structs.replace(config, ray=cluster_address()), replicas


def serve_workers(config: ServiceConfig) -> int:
    """Run `config.api_workers` HTTP processes and the engine processes (or Ray engine replicas) until
    SIGTERM/SIGINT; exit status."""
    stop = threading.Event()
    _on_signals(stop)
    run_dir = tempfile.mkdtemp(prefix="retrieval-")
    sock = socket.create_server((config.host, config.port), backlog=2048)
    engines: list[BaseProcess] = []
    workers: list[BaseProcess] = []
    replicas: list[tuple[str, object]] = []  # Ray engine replicas: held until we return
    try:
        if config.engine_replicas:
            config, replicas = _start_replicas(config, stop)
            addresses = [name for name, _ in replicas]
        else:
            engines, addresses = _start_engines(config, run_dir)
        ctx = get_context("spawn")
        for i in range(config.api_workers):
            proc = ctx.Process(target=run_api_worker, args=(config, i, sock, addresses, run_dir), name=f"api-{i}")
            proc.start()
            workers.append(proc)
            if i == 0:  # the others forward the store routes to worker 0: start them once it answers
                _wait_for_store(os.path.join(run_dir, "store.sock"), proc)
        host, port = sock.getsockname()[:2]  # the port bound, also when asked for port 0
        log.info("serving on http://%s:%d with %d API workers", host, port, config.api_workers)
        return _supervise(workers, engines, stop)
    finally:
        _stop(workers)
        _stop(engines)
        if replicas:
            from retrieval.distributed.replicas import stop_replicas

            stop_replicas([name for name, _ in replicas])
        sock.close()
        shutil.rmtree(run_dir, ignore_errors=True)
