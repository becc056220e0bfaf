"""The `bge_m3_sparse` plugin: BGE-M3 dense and/or lexical (sparse) weights with token strings.

Request (`POST /pooling`):

    {"task": "plugin", "data": {"input": "text" | ["text", ...],
                                "embed_task": "dense" | "sparse" | "dense&sparse",
                                "return_tokens": false}}

Response `data`: one item per input, `{"index", "object": "dense" | "sparse" | "sparse&dense",
"dense_embedding": [...] (dense tasks), "sparse_embedding": [{"token_id", "weight", "token"}] (sparse tasks)}`,
sparse entries sorted by weight (highest first), one per token id (the max weight), special ids and
weights <= 0 dropped. One forward pass serves both representations.
"""

from __future__ import annotations

from typing import Any, Literal, get_args

from encoder import M3_TASK, Engine, InvalidInputError, M3Output, PoolingParams, TokenOptions
from retrieval.models.serving.plugins import PluginError, PluginResult, require_mapping

__all__ = ["BgeM3SparseProcessor"]

EmbedTask = Literal["dense", "sparse", "dense&sparse"]
_OBJECT = {"dense": "dense", "sparse": "sparse", "dense&sparse": "sparse&dense"}


class BgeM3SparseProcessor:
    """Serves BGE-M3 (`hf_overrides={"architectures": ["BgeM3EmbeddingModel"]}`) only."""

    name = "bge_m3_sparse"

    def check_model(self, engine: Engine) -> None:
        if not engine.supports(M3_TASK):
            raise PluginError(
                f"plugin {self.name!r} needs a BGE-M3 model (architecture BgeM3EmbeddingModel), "
                f"not {engine.info.architecture}"
            )

    def _parse(self, data: Any) -> tuple[list[str], EmbedTask, bool]:
        body = require_mapping(data, self.name)
        texts = body.get("input")
        texts = [texts] if isinstance(texts, str) else texts
        if not isinstance(texts, list) or not texts or not all(isinstance(t, str) and t for t in texts):
            raise InvalidInputError("`data.input` must be a non-empty string or list of strings", param="data.input")
        task = body.get("embed_task", "dense&sparse")
        if task not in get_args(EmbedTask):
            raise InvalidInputError(
                f"`data.embed_task` must be one of {list(get_args(EmbedTask))}", param="data.embed_task"
            )
        return texts, task, bool(body.get("return_tokens") or False)

    async def process(self, engine: Engine, data: Any, opts: TokenOptions) -> PluginResult:
        self.check_model(engine)
        texts, task, with_tokens = self._parse(data)
        result = await engine.encode(texts, PoolingParams(task=M3_TASK), opts)
        items = [self._item(i, out, task, engine if with_tokens else None) for i, out in enumerate(result.m3)]
        return PluginResult(items, sum(result.prompt_tokens))

    @staticmethod
    def _item(index: int, out: M3Output, task: EmbedTask, engine: Engine | None) -> dict[str, Any]:
        item: dict[str, Any] = {"index": index, "object": _OBJECT[task]}
        if task != "sparse":
            item["dense_embedding"] = out.dense.tolist()
        if task != "dense":
            ranked = sorted(out.sparse.items(), key=lambda kv: -kv[1])
            tokens = engine.token_strings([t for t, _ in ranked]) if engine else [None] * len(ranked)
            item["sparse_embedding"] = [
                {"token_id": t, "weight": w, "token": s} for (t, w), s in zip(ranked, tokens, strict=True)
            ]
        return item
