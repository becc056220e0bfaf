"""The service core: configuration, model registry, collections, search, and two ways to use them from Python:
`RetrievalClient` (a running server over HTTP) and `LocalRetrieval` (in this process), with the same methods."""

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
