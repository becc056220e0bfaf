"""The service core: configuration, model registry, collections, search, and two ways to use them from Python:
`RetrievalClient` (a running server over HTTP) and `LocalRetrieval` (in this process), with the same methods."""

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the names below load on first use (`__getattr__`), so importing the package is cheap
    from retrieval.client import RetrievalClient, RetrievalClientError
    from retrieval.config import DEFAULT_MODEL_NAME, ServiceConfig
    from retrieval.local import LocalRetrieval
    from retrieval.registry import ModelRegistry
    from retrieval.serving import LLM, PoolingParams


__all__ = [
    "DEFAULT_MODEL_NAME",
    "LLM",
    "LocalRetrieval",
    "ModelRegistry",
    "PoolingParams",
    "RetrievalClient",
    "RetrievalClientError",
    "ServiceConfig",
]

_HOME = {  # exported name -> the module that defines it
    "RetrievalClient": "retrieval.client",
    "RetrievalClientError": "retrieval.client",
    "DEFAULT_MODEL_NAME": "retrieval.config",
    "ServiceConfig": "retrieval.config",
    "LocalRetrieval": "retrieval.local",
    "ModelRegistry": "retrieval.registry",
    "LLM": "retrieval.serving",
    "PoolingParams": "retrieval.serving",
}


def __getattr__(name: str) -> Any:
    """Import an exported name's module when the name is first used (PEP 562)."""
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
