"""The service core: configuration, model registry, CLI parsing (and, later, collections and search)."""

from retrieval.config import DEFAULT_MODEL_NAME, ServiceConfig
from retrieval.registry import ModelRegistry
from retrieval.serving import LLM, PoolingParams

__all__ = ["DEFAULT_MODEL_NAME", "LLM", "ModelRegistry", "PoolingParams", "ServiceConfig"]
