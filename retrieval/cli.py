"""Command-line parsing for `retrieval serve`: argv -> `ServiceConfig` (the one place flags are read)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from retrieval.config import DEFAULT_MODEL_NAME, ServiceConfig, default_model_source, parse_model_arg

__all__ = ["build_parser", "config_from_args"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="retrieval", description="Vector-search retrieval service")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="serve models (vLLM-compatible pooling API) over HTTP")
    serve.add_argument(
        "--model",
        action="append",
        default=[],
        metavar="NAME=PATH_OR_ID",
        help="a model to serve (repeatable); default: the bundled all-MiniLM-L6-v2",
    )
    serve.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--data-dir", default="./data", help="where collections and indexes are stored")
    serve.add_argument("--dtype", choices=["auto", "float32", "float16", "bfloat16"], default="auto")
    serve.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    serve.add_argument("--max-batch-tokens", type=int, default=None, help="padded tokens per forward pass")
    serve.add_argument(
        "--max-wait-ms",
        type=float,
        default=None,
        help="with less than a batch queued, wait this long for more requests (default 2)",
    )
    serve.add_argument("--max-model-len", type=int, default=None, help="override the model's token limit")
    serve.add_argument("--hf-overrides", default=None, help="JSON merged into each model's config.json")
    serve.add_argument("--pooler-config", default=None, help='JSON, e.g. {"pooling_type": "MEAN"}')
    serve.add_argument("--trust-remote-code", action="store_true", help="allow code shipped with checkpoints")
    serve.add_argument("--api-key", default=None, help="require Authorization: Bearer <key>")
    serve.add_argument("--max-body-bytes", type=int, default=16 * 1024 * 1024)
    serve.add_argument(
        "--io-processor-plugin",
        default=None,
        help="IO processor plugin for /pooling task 'plugin' (e.g. bge_m3_sparse)",
    )
    serve.add_argument("--log-level", default="info")
    return parser


def config_from_args(argv: Sequence[str] | None = None) -> ServiceConfig:
    """Parse argv; with no --model serve the bundled MiniLM as `sentence-transformers/all-MiniLM-L6-v2`."""
    parser = build_parser()
    args = parser.parse_args(argv)
    model_args = args.model or [f"{DEFAULT_MODEL_NAME}={default_model_source()}"]
    try:
        models = tuple(
            parse_model_arg(
                arg,
                dtype=args.dtype,
                device=args.device,
                hf_overrides=args.hf_overrides,
                pooler_config=args.pooler_config,
                trust_remote_code=args.trust_remote_code,
                max_batch_tokens=args.max_batch_tokens,
                max_model_len=args.max_model_len,
                max_wait_ms=args.max_wait_ms,
            )
            for arg in model_args
        )
    except ValueError as exc:
        parser.error(str(exc))
    return ServiceConfig(
        models=models,
        host=args.host,
        port=args.port,
        data_dir=args.data_dir,
        api_key=args.api_key,
        max_body_bytes=args.max_body_bytes,
        log_level=args.log_level,
        io_processor_plugin=args.io_processor_plugin,
    )
