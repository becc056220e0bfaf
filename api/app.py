"""The composition root: `create_app(config)` builds the Litestar app; models load in its lifespan."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Literal

import anyio.to_thread
from litestar import Litestar, Router
from litestar.datastructures import State
from litestar.di import Provide
from litestar.exceptions.http_exceptions import RequestEntityTooLarge
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.types import ASGIApp

from api.auth import auth_middleware
from api.browsers import browser_middleware
from api.errors import exception_handlers
from api.jobs import JobManager
from api.lifecycle import Lifecycle
from api.limits import LimitedRequest, too_large
from api.mcp import McpEndpoint
from api.metrics import Metrics, metrics_endpoint
from api.request_id import log_failure, request_id_middleware
from api.routes import BULK_ROUTES, IMPORT_ROUTES, MODEL_PATHS, MODEL_ROUTES, ROUTES, UI_ROUTES, UPLOAD_ROUTES
from api.scopes import collection_guard, provide_authorizer, provide_grant
from retrieval import ModelRegistry, ServiceConfig
from retrieval.common.json_depth import MAX_JSON_DEPTH
from retrieval.config import is_loopback
from retrieval.evaluation.tune.tuner import TuneReport
from retrieval.ingest.uploads import UploadResult
from retrieval.models.serving.plugins import IOProcessor, load_plugin
from retrieval.reindex.job import Reindexer
from retrieval.service import RetrievalService
from retrieval.sharding.group import ShardBackend

__all__ = ["StoreRole", "create_app"]

StoreRole = Literal["own", "none"]  # own: open the store and serve its routes; none: model routes only
Lifespan = Callable[[Litestar], AbstractAsyncContextManager[None]]

log = logging.getLogger(__name__)

_API_DESCRIPTION = (
    "vLLM-compatible pooling API and retrieval collections. Limits on every request: JSON bodies (and JSON / JSON "
    f"Lines files) may nest arrays and objects at most {MAX_JSON_DEPTH} levels deep (deeper: 400); bodies and "
    "uploads over their byte limits get 413; a full queue answers 429 with Retry-After."
)


def _registry(state: State) -> ModelRegistry:
    registry: ModelRegistry = state.registry
    return registry


def _service(state: State) -> RetrievalService:
    service: RetrievalService = state.service
    return service


def _jobs(state: State) -> JobManager[UploadResult | TuneReport]:
    jobs: JobManager[UploadResult | TuneReport] = state.jobs
    return jobs


def _reindexer(state: State) -> Reindexer:
    reindexer: Reindexer = state.reindexer
    return reindexer


def _config(state: State) -> ServiceConfig:
    config: ServiceConfig = state.config
    return config


async def _snapshots(service: RetrievalService, interval_s: float) -> None:
    """Save changed index snapshots every `interval_s` seconds, off the event loop."""
    while True:
        await asyncio.sleep(interval_s)
        try:
            await asyncio.to_thread(service.save_snapshots)
        except Exception:  # a failed snapshot loses nothing (the store replays); keep the loop alive
            log.exception("background snapshot failed")


@asynccontextmanager
async def _retrieval(app: Litestar, config: ServiceConfig, models: ModelRegistry) -> AsyncIterator[None]:
    """Open the service (default collection created when missing), run snapshots and jobs; close in order."""
    shards = await asyncio.to_thread(_shard_backend, config)
    service = await asyncio.to_thread(
        functools.partial(
            RetrievalService.open, config.data_path, models, shards=shards, shard_timeout_s=config.shard_timeout_s
        )
    )
    app.state.service = service
    app.state.jobs = JobManager[UploadResult | TuneReport](max_finished=config.max_finished_jobs)
    app.state.reindexer = Reindexer(service)
    app.state.reindexer.resume()  # reindex jobs a crash interrupted go on
    snapshots = asyncio.get_running_loop().create_task(_snapshots(service, config.snapshot_interval_s))
    try:
        yield
    finally:
        snapshots.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await snapshots
        await app.state.jobs.close()
        await app.state.reindexer.close()  # running reindex jobs stay resumable
        await asyncio.to_thread(service.close)


def _shard_backend(config: ServiceConfig) -> ShardBackend | None:
    """With `--ray`: join the cluster and place shard actors there (Ray is imported only then)."""
    if config.ray is None:
        return None
    from retrieval.distributed.replicas import connect
    from retrieval.distributed.shards import RayShardBackend

    connect(config.ray)
    backend = RayShardBackend(config.data_path, config.ray_namespace)
    log.info("sharded collections on %s", backend.describe())
    return backend


def _plugin(config: ServiceConfig, models: ModelRegistry) -> IOProcessor | None:
    """Load and check the configured IO processor plugin against the default model (fails start-up)."""
    if not config.io_processor_plugin:
        return None
    plugin = load_plugin(config.io_processor_plugin)
    plugin.check_model(models.default)
    return plugin


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def _open_models(config: ServiceConfig, stack: contextlib.AsyncExitStack) -> ModelRegistry:
    """Load the configured models here, or, with `engine_replicas`, launch them as Ray actors and load them here
    for tokenising only (Ray is imported only then); `stack` closes them."""
    if config.engine_replicas:
        from retrieval.distributed.engine_client import serve_through_replicas

        return await stack.enter_async_context(serve_through_replicas(config))
    models = await anyio.to_thread.run_sync(ModelRegistry.load, config.models, config.image_limits)
    stack.callback(models.close)
    return models


def _loader(
    app: Litestar,
    config: ServiceConfig,
    registry: ModelRegistry | None,
    stack: contextlib.AsyncExitStack,
    store: StoreRole,
) -> Callable[[], Awaitable[None]]:
    """The start-up work: load the models (unless given), open the service (when this process owns the store),
    then mark the app ready.

    What it opens joins `stack`, so the lifespan's end closes it in reverse order.
    """
    lifecycle: Lifecycle = app.state.lifecycle

    async def load() -> None:
        models = registry if registry is not None else await _open_models(config, stack)
        app.state.registry = models
        app.state.io_processor = _plugin(config, models)
        app.state.metrics.models = models
        log.info("serving %s", ", ".join(e.name for e in models))
        if store == "own":
            await stack.enter_async_context(_retrieval(app, config, models))
        _freeze_startup_objects()
        lifecycle.set_ready()

    return load


def _freeze_startup_objects() -> None:
    """Move everything loaded at start (models, tokenizers, indexes: objects that live as long as the process)
    out of the garbage collector's sight. A full collection walked them all and took about 300 ms here, which
    a burst of requests triggers and every request in flight then waits for (a 256-request burst's 429s came in
    p50 330-390 ms instead of about 100 ms)."""
    gc.collect()
    gc.freeze()


async def _load_in_background(load: Callable[[], Awaitable[None]], lifecycle: Lifecycle) -> None:
    try:
        await load()
    except Exception as exc:  # the server stops (`api.server` exits 1): a half-loaded service must not go ready
        log_failure(log, "start-up failed", exc)
        lifecycle.fail()


def create_app(
    config: ServiceConfig,
    registry: ModelRegistry | None = None,
    *,
    store: StoreRole = "own",
    before: Sequence[Lifespan] = (),
) -> Litestar:
    """Build the app. Pass `registry` to reuse already-loaded models (tests, embedding in a process).

    Without `registry` the server binds first and loads models and indexes in the background (`/readyz` is
    503 until then); with it, the service opens before the first request is taken. `store="none"` serves the
    model routes only (an API worker that does not own the store); `before` are lifespans entered before the
    models are used (an API worker connects to its engine processes there).
    """
    metrics = Metrics()
    lifecycle = Lifecycle(max_inflight_search=config.max_inflight_search, retry_after_s=config.retry_after_s)
    metrics.lifecycle = lifecycle

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            load = _loader(app, config, registry, stack, store)
            if registry is not None:
                await load()
            else:
                task = asyncio.get_running_loop().create_task(_load_in_background(load, lifecycle))
                stack.push_async_callback(_cancel, task)
            yield

    middleware: list[Callable[[ASGIApp], ASGIApp]] = [request_id_middleware, metrics.middleware]
    middleware.append(browser_middleware(keyless=not config.has_keys, bound=config.host))  # api/browsers.py
    if config.has_keys:
        middleware.append(auth_middleware(config.keys, MODEL_PATHS))
    middleware.append(lifecycle.middleware)  # after auth: a request without a key holds no search slot
    uploads = Router("/", route_handlers=UPLOAD_ROUTES, request_max_body_size=config.max_upload_bytes)
    imports = Router("/", route_handlers=IMPORT_ROUTES, request_max_body_size=config.max_import_bytes)
    mcp = McpEndpoint(  # the agents' tools at /mcp (api/mcp.py)
        keys_required=config.has_keys, max_body_bytes=config.max_body_bytes, loopback=is_loopback(config.host)
    )
    bulk = Router("/", route_handlers=BULK_ROUTES, request_max_body_size=config.max_bulk_bytes)
    handlers = [*ROUTES, uploads, imports, bulk, mcp.handler(), *UI_ROUTES] if store == "own" else [*MODEL_ROUTES]
    app = Litestar(
        route_handlers=[*handlers, metrics_endpoint],
        dependencies={
            "registry": Provide(_registry, sync_to_thread=False),
            "service": Provide(_service, sync_to_thread=False),
            "jobs": Provide(_jobs, sync_to_thread=False),
            "reindexer": Provide(_reindexer, sync_to_thread=False),
            "config": Provide(_config, sync_to_thread=False),
            "grant": Provide(provide_grant, sync_to_thread=False),
            "authorizer": Provide(provide_authorizer, sync_to_thread=False),
        },
        guards=[collection_guard],  # a route naming a collection checks the key's scopes (api/scopes.py)
        exception_handlers={**exception_handlers, RequestEntityTooLarge: too_large},  # type: ignore[dict-item]
        lifespan=[*before, lifespan, mcp.lifespan],
        middleware=middleware,
        logging_config=None,  # `retrieval serve` configures logging (logfmt with the request id)
        request_max_body_size=config.max_body_bytes,
        request_class=LimitedRequest,
        openapi_config=OpenAPIConfig(
            title="retrieval",
            version="0.1.0",
            path="/docs",
            description=_API_DESCRIPTION,
            render_plugins=[SwaggerRenderPlugin(path="/")],
        ),
    )
    app.state.config = config
    app.state.io_processor = None
    app.state.metrics = metrics
    app.state.lifecycle = lifecycle
    mcp.state = app.state
    return app
