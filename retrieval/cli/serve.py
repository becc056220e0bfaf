"""`retrieval serve`: its flags, and the one function that reads them (with `--config FILE` and the key
variables of the environment) into a `ServiceConfig`."""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from retrieval.cli.flags import positive

if TYPE_CHECKING:  # serve's configuration (and the model layer under it) is imported by `serve` alone
    from encoder.types import ModelSpec
    from retrieval.config import ServiceConfig

__all__ = ["add_serve", "config_from_args"]


def add_serve(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    serve = sub.add_parser("serve", help="serve models (vLLM-compatible pooling API) over HTTP")
    serve.add_argument(
        "--model",
        action="append",
        default=[],
        metavar="NAME=PATH_OR_ID",
        help="a model to serve (repeatable); default: the bundled all-MiniLM-L6-v2, which `bundled` (or its hub id "
        "sentence-transformers/all-MiniLM-L6-v2) names next to other models, offline",
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
    serve.add_argument(
        "--max-queue",
        type=positive,
        default=None,
        help="sequences admitted and waiting per model; more get 429 with Retry-After (default 4096)",
    )
    serve.add_argument("--max-model-len", type=int, default=None, help="override the model's token limit")
    serve.add_argument(
        "--pipeline",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="prepare batch i+1 (collate, copy to the device) while batch i runs (default: on CUDA only)",
    )
    serve.add_argument(
        "--compile",
        action="store_true",
        help="run each model's forward pass under torch.compile (first batches are slow; eager if it fails)",
    )
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
    serve.add_argument(
        "--drain-timeout",
        type=float,
        default=None,
        dest="drain_timeout_s",
        metavar="SECONDS",
        help="on SIGTERM, stop taking work and let in-flight requests finish this long before exiting (default 30)",
    )
    serve.add_argument(
        "--max-inflight-search",
        type=positive,
        default=None,
        help="concurrent search/evaluate requests; more get 429 with Retry-After (default 32)",
    )
    serve.add_argument(
        "--bulk-root", default=None, help="folder whose files `POST .../bulk` may load by path (default: off)"
    )
    serve.add_argument("--log-level", default=None, help="uvicorn log level (default info)")
    serve.add_argument(
        "--disable-uvicorn-access-log",
        action="store_const",
        const=False,
        default=None,
        dest="access_log",
        help="no log line per request (as in vLLM); errors and life-cycle events are still logged",
    )
    _add_image_flags(serve)
    _add_worker_flags(serve)


def _add_image_flags(serve: argparse.ArgumentParser) -> None:
    serve.add_argument(
        "--image-max-bytes", type=positive, default=None, help="an image's encoded size limit (default 20 MiB)"
    )
    serve.add_argument(
        "--image-max-pixels", type=positive, default=None, help="an image's width*height limit (default 40000000)"
    )
    serve.add_argument(
        "--image-fetch-host",
        action="append",
        default=[],
        metavar="HOST",
        help="fetch http(s) image URLs from this host (repeatable; default: none, fetching off)",
    )


def _add_worker_flags(serve: argparse.ArgumentParser) -> None:
    serve.add_argument(
        "--api-workers",
        type=positive,
        default=None,
        help="HTTP processes sharing the port, feeding engine processes over ZeroMQ (default 1: one process)",
    )
    serve.add_argument(
        "--engine-processes",
        type=positive,
        default=None,
        help="with --api-workers above 1: engine processes, one per GPU (default: every visible GPU, 1 on CPU)",
    )
    _add_ray_flags(serve)


def _add_ray_flags(serve: argparse.ArgumentParser) -> None:
    serve.add_argument(
        "--ray",
        nargs="?",
        const="auto",
        default=None,
        metavar="auto|ADDRESS",
        help="run on a Ray cluster (sharded collections, engine replicas): auto (RAY_ADDRESS, the cluster of this "
        "machine, else a local one) or its address",
    )
    serve.add_argument(
        "--shard-timeout",
        dest="shard_timeout_s",
        type=float,
        default=None,
        help="with --ray: seconds a call waits for a shard before it counts as down (default 30)",
    )
    serve.add_argument(
        "--engine-replicas",
        type=positive,
        default=None,
        help="with --ray: encoder replicas as Ray actors, one per GPU node, fed by the API processes (default 0)",
    )
    serve.add_argument(
        "--engine-gpus", type=float, default=None, help="GPUs per engine replica (default: 1 when the cluster has any)"
    )
    serve.add_argument("--engine-cpus", type=float, default=None, help="CPUs per engine replica (default 1)")


_PLAIN_FLAGS = (
    "host",
    "port",
    "data_dir",
    "max_body_bytes",
    "log_level",
    "access_log",
    "io_processor_plugin",
    "image_max_bytes",
    "image_max_pixels",
    "api_workers",
    "engine_processes",
    "ray",
    "engine_replicas",
    "engine_gpus",
    "engine_cpus",
    "drain_timeout_s",
    "max_inflight_search",
    "bulk_root",
    "shard_timeout_s",
)


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


def _env_scoped_keys(env: Mapping[str, str]) -> list[Any]:
    """`RETRIEVAL_SCOPED_KEYS`: a JSON list of `{"key", "collections", "access", "models"}` objects."""
    from retrieval.config import parse_json_text

    keys: list[Any] = parse_json_text(env.get("RETRIEVAL_SCOPED_KEYS"), "RETRIEVAL_SCOPED_KEYS", list)
    return keys


def _models(args: argparse.Namespace, from_file: object) -> tuple[ModelSpec, ...]:
    """`--model` flags win; else the file's `models`; else the bundled MiniLM."""
    import msgspec

    from encoder.types import ModelSpec
    from retrieval.config import DEFAULT_MODEL_NAME, default_model_source, parse_model_arg

    if not args.model and from_file:
        specs = msgspec.convert(from_file, tuple[ModelSpec, ...])
        return tuple(_bundled(spec) for spec in specs)
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
            max_queue=args.max_queue,
            pipeline=args.pipeline,
            compile=args.compile,
        )
        for arg in model_args
    )


def _bundled(spec: ModelSpec) -> ModelSpec:
    """A `--config` file's model with the bundled one found (`"source": "bundled"`, or its hub id)."""
    import msgspec

    from retrieval.config import resolve_bundled

    name, source = resolve_bundled(spec.name, spec.source)
    return msgspec.structs.replace(spec, name=name, source=source)


def config_from_args(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> ServiceConfig:
    """argv (+ `--config FILE` + the key variables of `env`, default os.environ) -> ServiceConfig.

    Precedence: flags over the file over the struct's defaults; keys from every source are all valid.
    With no model anywhere, serve the bundled MiniLM as `sentence-transformers/all-MiniLM-L6-v2`.
    """
    import msgspec

    from retrieval.cli.main import build_parser  # the whole parser: `serve` is one of its commands
    from retrieval.config import ServiceConfig, is_loopback

    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command != "serve":
        parser.error(f"`{args.command}` is a client command; it has no server configuration")
    env = os.environ if env is None else env
    try:
        fields = _config_file(args.config)
        fields["models"] = _models(args, fields.get("models"))
        fields.update({k: getattr(args, k) for k in _PLAIN_FLAGS if getattr(args, k) is not None})
        if args.image_fetch_host:
            fields["image_fetch_hosts"] = args.image_fetch_host
        fields["admin_keys"] = [*fields.get("admin_keys", ()), *_env_keys(env, "RETRIEVAL_API_KEYS"), *args.api_key]
        fields["read_keys"] = [
            *fields.get("read_keys", ()),
            *_env_keys(env, "RETRIEVAL_READ_ONLY_KEYS"),
            *args.read_only_key,
        ]
        fields["scoped_keys"] = [*fields.get("scoped_keys", ()), *_env_scoped_keys(env)]
        config = msgspec.convert(fields, ServiceConfig)
    except (ValueError, msgspec.ValidationError) as exc:
        parser.error(str(exc))
    if config.engine_replicas and not config.ray:
        parser.error("--engine-replicas runs the encoders on a Ray cluster: give --ray (auto or an address) too")
    if not config.has_keys and not is_loopback(config.host):
        parser.error(
            f"refusing to serve on non-loopback address {config.host!r} without an API key: anyone who can reach it "
            "could read and change every collection. Give --api-key (or RETRIEVAL_API_KEYS), or bind 127.0.0.1"
        )
    return config
