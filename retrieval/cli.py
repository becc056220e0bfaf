"""Command-line parsing for `retrieval serve`: argv -> `ServiceConfig` (the one place flags are read)."""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import msgspec

from encoder.types import ModelSpec
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
    serve.add_argument("--config", default=None, metavar="FILE", help="a JSON file of ServiceConfig fields")
    serve.add_argument("--host", default=None, help="bind address (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=None, help="bind port (default 8000)")
    serve.add_argument("--data-dir", default=None, help="where collections and indexes are stored (default ./data)")
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
    serve.add_argument(
        "--api-key",
        action="append",
        default=[],
        help="an admin key (repeatable; also RETRIEVAL_API_KEYS, comma-separated); any key makes auth required",
    )
    serve.add_argument(
        "--read-only-key",
        action="append",
        default=[],
        help="a read-only key: GET, search, evaluate, model endpoints (repeatable; also RETRIEVAL_READ_ONLY_KEYS)",
    )
    serve.add_argument("--max-body-bytes", type=int, default=None, help="JSON body limit (default 16 MiB)")
    serve.add_argument(
        "--io-processor-plugin",
        default=None,
        help="IO processor plugin for /pooling task 'plugin' (e.g. bge_m3_sparse)",
    )
    serve.add_argument("--log-level", default=None, help="uvicorn log level (default info)")
    return parser


_PLAIN_FLAGS = ("host", "port", "data_dir", "max_body_bytes", "log_level", "io_processor_plugin")


def _config_file(path: str | None) -> dict[str, Any]:
    """The JSON object of `--config FILE` (ServiceConfig field names)."""
    if not path:
        return {}
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ValueError(f"--config {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise ValueError(f"--config {path}: must hold a JSON object of ServiceConfig fields")
    return data


def _env_keys(env: Mapping[str, str], name: str) -> list[str]:
    return [k.strip() for k in env.get(name, "").split(",") if k.strip()]


def _models(args: argparse.Namespace, from_file: object) -> tuple[ModelSpec, ...]:
    """`--model` flags win; else the file's `models`; else the bundled MiniLM."""
    if not args.model and from_file:
        return msgspec.convert(from_file, tuple[ModelSpec, ...])
    model_args = args.model or [f"{DEFAULT_MODEL_NAME}={default_model_source()}"]
    return tuple(
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


def config_from_args(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> ServiceConfig:
    """argv (+ `--config FILE` + the key variables of `env`, default os.environ) -> ServiceConfig.

    Precedence: flags over the file over the struct's defaults; keys from every source are all valid.
    With no model anywhere, serve the bundled MiniLM as `sentence-transformers/all-MiniLM-L6-v2`.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    env = os.environ if env is None else env
    try:
        fields = _config_file(args.config)
        fields["models"] = _models(args, fields.get("models"))
        fields.update({k: getattr(args, k) for k in _PLAIN_FLAGS if getattr(args, k) is not None})
        fields["admin_keys"] = [*fields.get("admin_keys", ()), *_env_keys(env, "RETRIEVAL_API_KEYS"), *args.api_key]
        fields["read_keys"] = [
            *fields.get("read_keys", ()),
            *_env_keys(env, "RETRIEVAL_READ_ONLY_KEYS"),
            *args.read_only_key,
        ]
        return msgspec.convert(fields, ServiceConfig)
    except (ValueError, msgspec.ValidationError) as exc:
        parser.error(str(exc))
