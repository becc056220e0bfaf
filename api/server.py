"""The `retrieval` console script: parse flags (retrieval.cli); `serve` builds the app and runs uvicorn, the
client commands (`ingest`, `eval`) run without loading the server."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from retrieval.cli import build_parser, config_from_args, run_command

__all__ = ["main"]


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
    uvicorn.run(create_app(config), host=config.host, port=config.port, log_level=config.log_level)
    return 0


if __name__ == "__main__":
    sys.exit(main())
