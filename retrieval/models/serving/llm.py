"""The offline Python API with vLLM's names: `LLM(...).embed / classify / score / reward / encode`.

    from retrieval import LLM, PoolingParams
    llm = LLM(model="sentence-transformers/all-MiniLM-L6-v2", runner="pooling")
    (out,) = llm.embed(["Hello, my name is"])
    print(len(out.outputs.embedding))

Everything runs in the calling thread: prompts are sorted by length and batched under the token budget.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Literal

import msgspec

from encoder import EncodeResult, Engine, InvalidInputError, ModelSpec, PoolerConfig, PoolingParams, Task
from encoder.engine import TokenOptions
from encoder.inputs import Prompt
from encoder.types import ConvertMode, Device, DType
from retrieval.models.serving.outputs import (
    ClassificationOutput,
    ClassificationRequestOutput,
    EmbeddingOutput,
    EmbeddingRequestOutput,
    PoolingOutput,
    PoolingRequestOutput,
    ScoringOutput,
    ScoringRequestOutput,
)
from retrieval.models.serving.scoring import ScoreInputs, ScoreOptions, score_sync

__all__ = ["LLM", "PoolingParams"]

log = logging.getLogger(__name__)

PromptInput = str | list[int] | Mapping[str, Any]
_LEGACY_TASKS: dict[str, ConvertMode] = {
    "embed": "embed",
    "embedding": "embed",
    "classify": "classify",
    "score": "classify",
    "reward": "reward",
}


def _prompt(p: PromptInput) -> Prompt:
    """vLLM prompt forms: a string, token ids, {"prompt": str} or {"prompt_token_ids": [...]}."""
    if isinstance(p, str):
        return p
    if isinstance(p, Mapping):
        if "prompt_token_ids" in p:
            return list(p["prompt_token_ids"])
        if "prompt" in p:
            return str(p["prompt"])
        raise InvalidInputError("a prompt dict needs 'prompt' or 'prompt_token_ids'", param="prompts")
    return list(p)


def _prompts(prompts: Any) -> list[Prompt]:
    """One prompt in any vLLM form, or a list of them."""
    if isinstance(prompts, str | Mapping) or (isinstance(prompts, list) and prompts and isinstance(prompts[0], int)):
        return [_prompt(prompts)]
    return [_prompt(p) for p in prompts]


class LLM:
    """One pooling model, loaded once. Keyword arguments follow vLLM's `LLM`; engine-only vLLM options
    (gpu_memory_utilization, enforce_eager, ...) are accepted and ignored with a log line."""

    def __init__(
        self,
        model: str,
        *,
        runner: Literal["auto", "pooling"] = "pooling",
        convert: ConvertMode = "auto",
        hf_overrides: Mapping[str, Any] | None = None,
        pooler_config: PoolerConfig | Mapping[str, Any] | None = None,
        trust_remote_code: bool = False,
        dtype: DType = "auto",
        device: Device = "auto",
        max_model_len: int | None = None,
        max_num_batched_tokens: int | None = None,
        served_model_name: str | None = None,
        task: str | None = None,
        **ignored: Any,
    ) -> None:
        if runner not in ("auto", "pooling"):
            raise ValueError(f"runner={runner!r} is not supported: this engine only runs pooling models")
        if task is not None:
            convert = _LEGACY_TASKS.get(task, convert)
        if ignored:
            log.info("ignoring vLLM engine options with no meaning here: %s", ", ".join(sorted(ignored)))
        if isinstance(pooler_config, Mapping):
            pooler_config = msgspec.convert(dict(pooler_config), PoolerConfig)
        spec = ModelSpec(
            source=model,
            name=served_model_name,
            convert=convert,
            hf_overrides=dict(hf_overrides or {}),
            pooler_config=pooler_config,
            trust_remote_code=trust_remote_code,
            dtype=dtype,
            device=device,
            max_model_len=max_model_len,
            max_batch_tokens=max_num_batched_tokens,
        )
        self.engine = Engine.load(spec)

    def get_tokenizer(self) -> Any:
        return self.engine.get_tokenizer()

    def _run(
        self, prompts: Any, params: PoolingParams | None, task: Task, truncate_prompt_tokens: int | None
    ) -> EncodeResult:
        base = params or PoolingParams()
        resolved = msgspec.structs.replace(base, task=base.task or task)
        opts = TokenOptions(truncate_prompt_tokens=truncate_prompt_tokens)
        return self.engine.encode_sync(_prompts(prompts), resolved, opts)

    def embed(
        self,
        prompts: Any,
        pooling_params: PoolingParams | None = None,
        *,
        truncate_prompt_tokens: int | None = None,
        use_tqdm: bool = True,
        **_: Any,
    ) -> list[EmbeddingRequestOutput]:
        """One normalised (unless use_activation=False) vector per prompt; `dimensions` for Matryoshka."""
        result = self._run(prompts, pooling_params, "embed", truncate_prompt_tokens)
        return [
            EmbeddingRequestOutput(str(i), EmbeddingOutput(o.tolist()), ids)
            for i, (o, ids) in enumerate(zip(result.outputs, result.prompt_token_ids, strict=True))
        ]

    def classify(
        self,
        prompts: Any,
        pooling_params: PoolingParams | None = None,
        *,
        truncate_prompt_tokens: int | None = None,
        use_tqdm: bool = True,
        **_: Any,
    ) -> list[ClassificationRequestOutput]:
        """Class probabilities (softmax / sigmoid per the model; raw logits with use_activation=False)."""
        result = self._run(prompts, pooling_params, "classify", truncate_prompt_tokens)
        return [
            ClassificationRequestOutput(str(i), ClassificationOutput(o.flatten().tolist()), ids)
            for i, (o, ids) in enumerate(zip(result.outputs, result.prompt_token_ids, strict=True))
        ]

    def reward(
        self,
        prompts: Any,
        pooling_params: PoolingParams | None = None,
        *,
        truncate_prompt_tokens: int | None = None,
        use_tqdm: bool = True,
        **_: Any,
    ) -> list[PoolingRequestOutput[PoolingOutput]]:
        """Per-token outputs of a reward model (`token_classify`, ALL pooling)."""
        return self.encode(
            prompts,
            pooling_params,
            pooling_task="token_classify",
            truncate_prompt_tokens=truncate_prompt_tokens,
        )

    def encode(
        self,
        prompts: Any,
        pooling_params: PoolingParams | None = None,
        *,
        pooling_task: Task | None = None,
        truncate_prompt_tokens: int | None = None,
        use_tqdm: bool = True,
        **_: Any,
    ) -> list[PoolingRequestOutput[PoolingOutput]]:
        """Raw pooled tensors for any task (default: the model's default task)."""
        task = pooling_task or (pooling_params.task if pooling_params else None) or self.engine.default_task
        result = self._run(prompts, pooling_params, task, truncate_prompt_tokens)
        return [
            PoolingRequestOutput(str(i), PoolingOutput(o), ids)
            for i, (o, ids) in enumerate(zip(result.outputs, result.prompt_token_ids, strict=True))
        ]

    def score(
        self,
        data_1: ScoreInputs,
        data_2: ScoreInputs,
        *,
        pooling_params: PoolingParams | None = None,
        truncate_prompt_tokens: int | None = None,
        use_tqdm: bool = True,
        **_: Any,
    ) -> list[ScoringRequestOutput]:
        """Pair scores: cross-encoder, cosine (embedding models) or MaxSim (late interaction); 1:1, 1:N or N:N."""
        options = ScoreOptions(
            use_activation=pooling_params.use_activation if pooling_params else None,
            tokens=TokenOptions(truncate_prompt_tokens=truncate_prompt_tokens),
        )
        result = score_sync(self.engine, data_1, data_2, options)
        return [ScoringRequestOutput(str(i), ScoringOutput(s), []) for i, s in enumerate(result.scores)]
