"""The `retrieval` console script: parse flags (retrieval.cli), build the app, run uvicorn."""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence

import uvicorn

from api.app import create_app
from retrieval.cli import config_from_args

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    config = config_from_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=config.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    uvicorn.run(create_app(config), host=config.host, port=config.port, log_level=config.log_level)
    return 0


if __name__ == "__main__":
    sys.exit(main())
