"""The `retrieval` console script: parse flags (retrieval.cli); `serve` builds the app and runs uvicorn, the
client commands (`ingest`, `eval`, `tune`, `backup`) run without loading the server.

`serve` binds first and loads in the background (`/readyz` turns 200 when done). On SIGTERM (or Ctrl-C) it
drains: readiness turns false and new requests get 503 with `Retry-After` while the requests in flight finish,
for at most `--drain-timeout` seconds; then uvicorn closes the listener, the lifespan saves the index snapshots,
and the process exits 0. A second signal during the drain exits at once. A failed start exits 1.
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Sequence
from types import FrameType
from typing import TYPE_CHECKING

from retrieval.cli import build_parser, config_from_args, run_command

if TYPE_CHECKING:
    import uvicorn

    from api.lifecycle import Lifecycle

__all__ = ["main"]

_SHUTDOWN_GRACE_S = 2  # after the drain, seconds uvicorn waits for cut-off requests before cancelling them


def _draining_server(config: uvicorn.Config, lifecycle: Lifecycle, drain_timeout_s: float) -> uvicorn.Server:
    """A uvicorn server whose first exit signal drains (see the module docstring) instead of stopping at once."""
    import uvicorn

    class DrainingServer(uvicorn.Server):
        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            if lifecycle.phase == "draining":  # a second signal: stop now
                self.should_exit = True
                self.force_exit = sig == signal.SIGINT
                return
            lifecycle.begin_drain(drain_timeout_s)

        async def on_tick(self, counter: int) -> bool:
            if lifecycle.drained():
                self.should_exit = True
            return await super().on_tick(counter)

    return DrainingServer(config)


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    if args.command != "serve":
        return run_command(args)
    import uvicorn

    from api.app import create_app
    from api.request_id import configure_logging

    config = config_from_args(argv)
    configure_logging(config.log_level)
    if config.api_workers > 1:
        from api.workers import serve_workers

        return serve_workers(config)
    app = create_app(config)
    lifecycle: Lifecycle = app.state.lifecycle
    uv_config = uvicorn.Config(
        app,
        host=config.host,
        port=config.port,
        log_level=config.log_level,
        access_log=config.access_log,
        timeout_graceful_shutdown=_SHUTDOWN_GRACE_S,
    )
    _draining_server(uv_config, lifecycle, config.drain_timeout_s).run()
    return 1 if lifecycle.phase == "failed" else 0


if __name__ == "__main__":
    sys.exit(main())
