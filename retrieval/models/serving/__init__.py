"""vLLM-compatible serving on top of the encoder: pair scoring, the offline `LLM` API, outputs, IO plugins."""

from retrieval.models.serving.llm import LLM, PoolingParams

__all__ = ["LLM", "PoolingParams"]
