"""The composition root: `create_app(config)` builds the Litestar app; models load in its lifespan."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import anyio.to_thread
from litestar import Litestar
from litestar.datastructures import State
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.types import ASGIApp

from api.auth import api_key_middleware
from api.errors import exception_handlers
from api.metrics import Metrics, metrics_endpoint
from api.routes import ROUTES
from retrieval import ModelRegistry, ServiceConfig
from retrieval.serving.plugins import IOProcessor, load_plugin

__all__ = ["create_app"]

log = logging.getLogger(__name__)


def _registry(state: State) -> ModelRegistry:
    registry: ModelRegistry = state.registry
    return registry


def _plugin(config: ServiceConfig, models: ModelRegistry) -> IOProcessor | None:
    """Load and check the configured IO processor plugin against the default model (fails start-up)."""
    if not config.io_processor_plugin:
        return None
    plugin = load_plugin(config.io_processor_plugin)
    plugin.check_model(models.default)
    return plugin


def create_app(config: ServiceConfig, registry: ModelRegistry | None = None) -> Litestar:
    """Build the app. Pass `registry` to reuse already-loaded models (tests, embedding in a process)."""
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        owned = registry is None
        models = registry if registry is not None else await anyio.to_thread.run_sync(ModelRegistry.load, config.models)
        app.state.registry = models
        app.state.io_processor = _plugin(config, models)
        metrics.models = models
        log.info("serving %s", ", ".join(e.name for e in models))
        try:
            yield
        finally:
            if owned:
                models.close()

    middleware: list[Callable[[ASGIApp], ASGIApp]] = [metrics.middleware]
    if config.api_key:
        middleware.append(api_key_middleware(config.api_key))
    app = Litestar(
        route_handlers=[*ROUTES, metrics_endpoint],
        dependencies={"registry": Provide(_registry, sync_to_thread=False)},
        exception_handlers=exception_handlers,  # type: ignore[arg-type]
        lifespan=[lifespan],
        middleware=middleware,
        request_max_body_size=config.max_body_bytes,
        openapi_config=OpenAPIConfig(
            title="retrieval", version="0.1.0", path="/docs", render_plugins=[SwaggerRenderPlugin(path="/")]
        ),
    )
    app.state.config = config
    app.state.io_processor = None
    app.state.metrics = metrics
    return app
