"""Command-line parsing (the one place flags are read): `serve` -> `ServiceConfig`; `ingest`, `load`, `eval`,
`tune`, `export`, `import`, `reindex` and `aliases` run as clients of a running server, `backup` copies a data
directory, `embed` runs a Ray Data job (`retrieval.cli.commands`)."""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # serve's configuration (and the model layer under it) is imported by `serve` alone
    from encoder.types import ModelSpec
    from retrieval.config import ServiceConfig

__all__ = ["build_parser", "config_from_args", "is_loopback", "run_command"]

_DEFAULT_URL = "http://127.0.0.1:8000"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="retrieval", description="Vector-search retrieval service")
    sub = parser.add_subparsers(dest="command", required=True)
    _add_serve(sub)
    _add_ingest(sub)
    _add_eval(sub)
    _add_tune(sub)
    _add_backup(sub)
    _add_transfer(sub)
    _add_reindex(sub)
    _add_aliases(sub)
    _add_load(sub)
    _add_embed(sub)
    return parser


def _add_client_flags(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument("--url", default=_DEFAULT_URL, help=f"server root (default {_DEFAULT_URL})")
    cmd.add_argument("--api-key", default=None, help="admin key of a server started with --api-key")


def _add_ingest(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    cmd = sub.add_parser(
        "ingest",
        help="send files and folders (JSONL, text, Markdown, PDF) to a collection of a running server",
        description="Parse files here and send their documents in batches. Re-running is cheap and safe: the "
        "server skips documents whose content is unchanged, so an interrupted run resumes by running it again.",
    )
    cmd.add_argument("collection", help="collection name")
    cmd.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="files or folders (walked recursively)")
    _add_client_flags(cmd)
    cmd.add_argument("--batch", type=_positive, default=64, help="documents per request (default 64)")
    cmd.add_argument("--create", action="store_true", help="create the collection over the default model if missing")
    cmd.add_argument("--metadata", type=_json_object, default={}, help="JSON object added to every document")
    cmd.add_argument("--quiet", action="store_true", help="no progress bar")
    cmd.add_argument("--verbose", action="store_true", help="list every file, not only the failed ones")


def _add_eval(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    cmd = sub.add_parser(
        "eval",
        help="nDCG@10, recall@100 and MRR@10 of every mode and fusion on your judgments (BEIR layout)",
        description="Reads DIR/queries.jsonl and DIR/qrels/SPLIT.tsv (query-id, corpus-id, score); the judged "
        "ids are the ids of documents in the collection (ingest DIR/corpus.jsonl first).",
    )
    cmd.add_argument("collection", help="collection name")
    cmd.add_argument("--beir", type=Path, required=True, metavar="DIR", help="folder in BEIR layout")
    cmd.add_argument("--split", default="test", help="qrels split (default test)")
    cmd.add_argument("--modes", nargs="+", default=None, help="single modes to report (default: all it keeps)")
    cmd.add_argument(
        "--fusion",
        action="append",
        type=_json_object,
        default=None,
        dest="fusions",
        metavar="JSON",
        help='a fusion to try (repeatable), e.g. \'{"method": "rrf", "k": 10}\'; default rrf 60, rrf 2, weighted, dbsf',
    )
    _add_client_flags(cmd)
    _add_output_flags(cmd)


def _add_output_flags(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument("--json", action="store_true", help="print the result as JSON instead of a table")
    cmd.add_argument("--save-json", type=Path, default=None, metavar="FILE", help="also write the result as JSON")
    cmd.add_argument("--chart", type=Path, default=None, metavar="FILE", help="also draw a PNG bar chart")


def _add_tune(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    cmd = sub.add_parser(
        "tune",
        help="choose fusion, weights, candidates and rerank depth on your judgments (BEIR layout)",
        description="Tunes on DIR/qrels/train.tsv (or dev, or --split) and reports the chosen and the default "
        "setting on DIR/qrels/test.tsv, which the server reads only after choosing; with one split it "
        "cross-validates. --apply stores the choice as the collection's defaults (no reindexing).",
    )
    cmd.add_argument("collection", help="collection name")
    cmd.add_argument("--beir", type=Path, required=True, metavar="DIR", help="folder in BEIR layout")
    cmd.add_argument("--split", default=None, help="qrels split to tune on (default train, else dev)")
    cmd.add_argument("--test-split", default="test", help="held-out qrels split for the report (default test)")
    cmd.add_argument("--budget", type=float, default=60.0, help="seconds for trying settings (default 60)")
    cmd.add_argument("--folds", type=_positive, default=5, help="cross-validation folds (default 5)")
    cmd.add_argument("--candidates", type=_positive, nargs="+", default=None, help="candidate depths to try")
    cmd.add_argument("--rerank", type=_positive, nargs="*", default=None, help="exact-MaxSim rerank depths to try")
    cmd.add_argument("--apply", action="store_true", help="store the chosen setting as the collection's defaults")
    cmd.add_argument("--quiet", action="store_true", help="no progress bar")
    _add_client_flags(cmd)
    _add_output_flags(cmd)


def _add_backup(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    cmd = sub.add_parser(
        "backup",
        help="copy a data directory (store, index snapshots, page images) consistently, even while it is served",
        description="DEST must not exist or be an empty directory. Every write acknowledged before the backup "
        "starts is in the copy; serve it with `retrieval serve --data-dir DEST`.",
    )
    cmd.add_argument("destination", type=Path, metavar="DEST", help="new or empty directory to write the copy to")
    cmd.add_argument("--data-dir", default="./data", help="the data directory to copy (default ./data)")
    cmd.add_argument("--json", action="store_true", help="print what was copied as JSON")
    cmd.add_argument(
        "--ray",
        nargs="?",
        const="auto",
        default=None,
        metavar="auto|ADDRESS",
        help="also back up every shard of the sharded collections, each on its own node into DEST/shards/...",
    )


def _add_transfer(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    export = sub.add_parser(
        "export",
        help="save a collection of a running server as a portable archive (tar: documents, vectors, pages)",
        description="Every write acknowledged before the export starts is in the archive; writes may go on.",
    )
    export.add_argument("collection", help="collection name")
    export.add_argument("file", type=Path, metavar="FILE", help="where to write the archive (e.g. docs.tar)")
    _add_client_flags(export)
    restore = sub.add_parser(
        "import",
        help="restore an archive made by `retrieval export` as a new collection of a running server",
        description="The server checks the archive's checksums and that it serves the archive's models with "
        "the same vector widths before it writes anything.",
    )
    restore.add_argument("file", type=Path, metavar="FILE", help="the archive")
    restore.add_argument("--name", required=True, help="name of the new collection")
    _add_client_flags(restore)


def _add_reindex(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    cmd = sub.add_parser(
        "reindex",
        help="rebuild a collection into a new one (other models or settings) on a running server, then swap an alias",
        description="Builds TARGET from COLLECTION's stored documents while both stay searchable, catches up with "
        "writes made meanwhile and, with --swap-alias, points the alias at TARGET in one step.",
    )
    cmd.add_argument("collection", nargs="?", default="", help="the collection (or alias) to rebuild")
    cmd.add_argument("--target", help="the new collection's name (must not exist)")
    cmd.add_argument("--swap-alias", default=None, metavar="ALIAS", help="alias pointed at TARGET when it is built")
    for flag in ("dense-model", "multivector-model", "sparse-model", "reranker"):
        cmd.add_argument(f"--{flag}", default=None, metavar="MODEL", help=f"TARGET's {flag} ('none' drops it)")
    cmd.add_argument("--settings", type=_json_object, default={}, help="other settings as JSON (chunking, index ...)")
    cmd.add_argument("--batch-size", type=_positive, default=None, help="documents per batch (default 64)")
    cmd.add_argument("--job", default=None, help="follow an existing job instead of starting one")
    cmd.add_argument("--no-wait", action="store_true", help="print the job and return at once")
    cmd.add_argument("--quiet", action="store_true", help="no progress line")
    cmd.add_argument("--json", action="store_true", help="print the job as JSON")
    _add_client_flags(cmd)


def _add_aliases(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    cmd = sub.add_parser("aliases", help="list the aliases of a running server, or set, delete or rename one")
    cmd.add_argument("action", nargs="?", default="list", choices=["list", "set", "delete", "rename"])
    cmd.add_argument("names", nargs="*", help="set ALIAS COLLECTION | delete ALIAS | rename OLD NEW")
    _add_client_flags(cmd)


def _add_load(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    cmd = sub.add_parser(
        "load",
        help="bulk-load Parquet written by `embed` (or any Parquet/JSONL with id, text, vectors) into a collection",
        description="Streams each file to a running server as Arrow IPC (or, with --server-path, has the server "
        "read it under its bulk_root) and writes it in large transactions. Re-running skips stored documents.",
    )
    cmd.add_argument("collection", help="collection name")
    cmd.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="files or folders (.parquet, .jsonl, .arrow)")
    _add_client_flags(cmd)
    cmd.add_argument("--server-path", action="store_true", help="PATHs are relative to the server's bulk_root")
    cmd.add_argument("--trust-vectors", action="store_true", help="load vectors made by another or an unknown model")
    cmd.add_argument("--batch", type=_positive, default=10_000, help="documents per transaction (default 10000)")
    cmd.add_argument("--id-column", default=None, help="document id column (default doc_id, id or _id)")
    cmd.add_argument("--dense-column", default="dense", help="dense vector column (default dense)")
    cmd.add_argument("--create", action="store_true", help="create the collection over the default model if missing")


def _add_embed(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    cmd = sub.add_parser(
        "embed",
        help="chunk and encode files into Parquet as a Ray Data job (local Ray or a cluster), for `load`",
        description="Reads JSONL, Parquet, text, Markdown and PDF (the service's parsers), chunks with the "
        "model's tokenizer as a collection would, encodes with stateful actors and writes one Parquet file per "
        "input block. Re-running skips blocks whose file exists, so an interrupted job resumes.",
    )
    cmd.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="files or folders")
    cmd.add_argument("--output", type=Path, required=True, metavar="DIR", help="folder for the Parquet files")
    cmd.add_argument("--model", default=None, metavar="PATH_OR_ID", help="model (default: the bundled MiniLM)")
    cmd.add_argument("--name", default=None, help="served name recorded with the vectors (default: the model)")
    cmd.add_argument("--actors", type=_positive, default=None, help="encoder actors (default: GPUs, else 1)")
    cmd.add_argument("--gpus-per-actor", type=float, default=None, help="GPUs per actor (default 1 when any)")
    cmd.add_argument("--block-size", type=_positive, default=1000, help="documents per input block (default 1000)")
    cmd.add_argument("--address", default=None, help="Ray cluster address (default: a local Ray instance)")
    cmd.add_argument("--chunking", type=_json_object, default={}, help='e.g. {"mode": "split", "max_tokens": 256}')
    cmd.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    cmd.add_argument("--dtype", choices=["auto", "float32", "float16", "bfloat16"], default="auto")


def _positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {number}")
    return number


def _json_object(value: str) -> dict[str, Any]:
    try:
        parsed = json.loads(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not JSON: {exc}") from exc
    if not isinstance(parsed, dict):
        raise argparse.ArgumentTypeError(f"must be a JSON object, got {type(parsed).__name__}")
    return parsed


def run_command(args: argparse.Namespace) -> int:
    """Run a client command (`ingest`, `eval`, `tune`, `backup`, `export`,
    `import`, `reindex`, `aliases`) parsed by :func:`build_parser`; its
    exit status."""
    if args.command in ("export", "import"):
        from retrieval.cli.commands.transfer import run_export, run_import

        return run_export(args) if args.command == "export" else run_import(args)
    if args.command == "backup":
        from retrieval.cli.commands.backup import run_backup

        return run_backup(args)
    if args.command == "load":
        from retrieval.cli.commands.load import run_load

        return run_load(args)
    if args.command == "embed":
        from retrieval.cli.commands.embed import run_embed

        return run_embed(args)
    if args.command == "ingest":
        from retrieval.cli.commands.ingest import run_ingest

        return run_ingest(args)
    if args.command in ("reindex", "aliases"):
        from retrieval.cli.commands.reindex import run_aliases, run_reindex

        return run_reindex(args) if args.command == "reindex" else run_aliases(args)
    if args.command == "tune":
        from retrieval.cli.commands.tune import run_tune

        return run_tune(args)
    from retrieval.cli.commands.evaluate import run_eval

    return run_eval(args)


def _add_serve(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
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
        type=_positive,
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
        type=_positive,
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
        "--image-max-bytes", type=_positive, default=None, help="an image's encoded size limit (default 20 MiB)"
    )
    serve.add_argument(
        "--image-max-pixels", type=_positive, default=None, help="an image's width*height limit (default 40000000)"
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
        type=_positive,
        default=None,
        help="HTTP processes sharing the port, feeding engine processes over ZeroMQ (default 1: one process)",
    )
    serve.add_argument(
        "--engine-processes",
        type=_positive,
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
        type=_positive,
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

    from retrieval.config import ServiceConfig

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


def is_loopback(host: str) -> bool:
    """Whether binding `host` only accepts connections from this machine (`localhost`, 127.0.0.0/8, ::1).

    >>> is_loopback("127.0.0.1"), is_loopback("::1"), is_loopback("0.0.0.0"), is_loopback("example.org")
    (True, True, False, False)
    """
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:  # a host name other than localhost may resolve anywhere
        return False
