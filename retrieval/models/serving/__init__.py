"""vLLM-compatible serving on top of the encoder: pair scoring, the offline `LLM` API, outputs, IO plugins.

May import: `encoder`, `poolers`, the rest of `retrieval.models`, `retrieval.common`, `retrieval.errors`."""

from retrieval.models.serving.llm import LLM, PoolingParams

__all__ = ["LLM", "PoolingParams"]
