"""The model-side contract: one adapter per model family turns prompts into tokens and hidden states into outputs."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import torch

from encoder.batch import Batch
from encoder.errors import InvalidInputError, ModelLoadError, UnsupportedTaskError
from encoder.inputs import Prompt
from encoder.prompts import PromptRole, apply_prompt
from encoder.resolve import ModelInfo
from encoder.tokenizer import TextTokenizer, load_hf_tokenizer
from encoder.types import ModelKind, PoolingParams, Representation, Task, TokenizedInput, TruncationSide
from poolers.dense import DenseHead
from poolers.matryoshka import MatryoshkaError, validate_dimensions

__all__ = ["TASK_API_NAMES", "ModelAdapter", "load_safetensors_file", "load_st_dense_heads"]

TASK_API_NAMES: dict[Task, str] = {
    "embed": "Embeddings API",
    "classify": "Classification API",
    "score": "Score API",
    "token_embed": "Token Embeddings API",
    "token_classify": "Token Classification API",
    "plugin": "IO Processor Plugin API",
    "embed&token_embed&token_classify": "Dense+Sparse+ColBERT API",
    "embed&token_embed": "Dense+Token Embeddings API",
}


def load_safetensors_file(path: Path) -> dict[str, torch.Tensor]:
    """Read every tensor of a safetensors file; a missing or broken file is a `ModelLoadError` naming it."""
    from safetensors.torch import load_file

    if not path.is_file():
        raise ModelLoadError(f"weights file {path} is missing")
    try:
        return load_file(str(path))
    except Exception as exc:
        raise ModelLoadError(f"cannot read weights file {path}: {exc}") from exc


def load_st_dense_heads(root: Path, paths: Sequence[str]) -> list[DenseHead]:
    """Load sentence-transformers Dense modules (`<path>/config.json` + `<path>/model.safetensors`)."""
    heads = []
    for sub in paths:
        folder = root / sub
        try:
            cfg = json.loads((folder / "config.json").read_text())
        except (OSError, ValueError) as exc:
            raise ModelLoadError(f"cannot read {folder / 'config.json'}: {exc}") from exc
        weights = load_safetensors_file(folder / "model.safetensors")
        if "linear.weight" not in weights:
            raise ModelLoadError(f"{folder / 'model.safetensors'} has no 'linear.weight' tensor")
        heads.append(DenseHead(weights["linear.weight"], weights.get("linear.bias"), cfg.get("activation_function")))
    return heads


class ModelAdapter:
    """Base adapter: a backbone loaded with transformers plus the pooling of one model family.

    Subclasses override `load_module`, `forward`, `pool`, and optionally `tokenize`.
    `architectures` lists the exact `config.architectures[0]` values served by a dedicated adapter;
    `tasks` (when set) overrides the name-based task table for them.
    """

    architectures: ClassVar[tuple[str, ...]] = ()
    tasks: ClassVar[frozenset[Task] | None] = None
    accepts_images: ClassVar[bool] = False  # image content parts reach `tokenize` (multimodal models)
    image_block: ClassVar[str] = ""  # one image's placeholder in a rendered chat prompt (multimodal models)

    def __init__(self, info: ModelInfo, device: torch.device, dtype: torch.dtype) -> None:
        self.info = info
        self.device = device
        self.dtype = dtype
        hf_tok = self.load_tokenizer()
        self.tokenizer = TextTokenizer(hf_tok, info.max_model_len, info.st.do_lower_case)
        self.module = self.load_module().to(device=device, dtype=dtype).eval()

    # -- loading -------------------------------------------------------------------------------------
    def tokenizer_dir(self) -> Path:
        root = self.info.root
        return root if (root / "tokenizer_config.json").is_file() else self.info.weights_dir

    def load_tokenizer(self) -> Any:
        """The Hugging Face tokenizer of `tokenizer_dir()`."""
        return load_hf_tokenizer(self.tokenizer_dir(), self.info.spec.trust_remote_code)

    def load_backbone(self, auto_class: Any = None) -> torch.nn.Module:
        """Load the transformers model of `weights_dir` from safetensors."""
        from transformers import AutoModel

        cls = auto_class or AutoModel
        try:
            return cls.from_pretrained(
                self.info.weights_dir,
                config=self.info.config,
                dtype=self.dtype,
                trust_remote_code=self.info.spec.trust_remote_code,
                use_safetensors=True,
            )
        except (OSError, ValueError, RuntimeError) as exc:
            raise ModelLoadError(f"cannot load weights from {self.info.weights_dir}: {exc}") from exc

    def load_module(self) -> torch.nn.Module:
        return self.load_backbone()

    # -- prompts -------------------------------------------------------------------------------------
    @property
    def role_prompts(self) -> dict[PromptRole, str]:
        """The prompt name for queries / documents (sentence-transformers' by default)."""
        return self.info.prompt_names

    def apply_prompt(self, prompts: Sequence[object], prompt_name: str | None) -> list[object]:
        """Apply the named prompt (sentence-transformers prefixes by default; families may override)."""
        return apply_prompt(prompts, prompt_name, self.info.st.prompts)

    # -- tasks ---------------------------------------------------------------------------------------
    @property
    def kind(self) -> ModelKind:
        """What the model is for the layers above (adapters of other kinds override this)."""
        return "dense"

    @property
    def representations(self) -> frozenset[Representation]:
        """Retrievable representations: a dense model produces dense vectors."""
        return frozenset({"dense"}) if self.supports("embed") else frozenset()

    @property
    def adapters(self) -> tuple[str, ...]:
        """Named task adapters a request may choose (jina-embeddings-v3's LoRAs); none by default."""
        return ()

    def supports(self, task: Task) -> bool:
        try:
            self.check_task(task)
        except UnsupportedTaskError:
            return False
        return True

    def check_task(self, task: Task) -> None:
        if task not in self.info.tasks:
            raise UnsupportedTaskError(f"The model does not support {TASK_API_NAMES[task]}")

    def check_params(self, params: PoolingParams) -> None:
        """Validate per-request options (Matryoshka `dimensions` with vLLM's texts; no LoRA `adapter` here)."""
        if params.adapter is not None:
            raise InvalidInputError(
                f'Model "{self.info.name}" has no LoRA adapters; remove `adapter` (got {params.adapter!r})',
                param="adapter",
            )
        if params.dimensions is None:
            return
        if params.task not in ("embed", "token_embed"):
            raise InvalidInputError(
                f"Task {params.task} only supports ['use_activation'] parameters, "
                "does not support ['dimensions'] parameters",
                param="dimensions",
            )
        try:
            validate_dimensions(
                params.dimensions,
                model_name=self.info.name,
                is_matryoshka=self.info.is_matryoshka,
                matryoshka_dimensions=self.info.matryoshka_dimensions,
                hidden_size=self.output_size(params.task),
            )
        except MatryoshkaError as exc:
            raise InvalidInputError(str(exc), param="dimensions") from exc

    def output_size(self, task: Task) -> int:
        return self.info.hidden_size

    # -- running -------------------------------------------------------------------------------------
    @property
    def pad_id(self) -> int:
        pad = self.tokenizer.hf.pad_token_id
        return int(pad if pad is not None else (self.tokenizer.hf.eos_token_id or 0))

    def tokenize(
        self,
        prompts: Sequence[Prompt],
        params: PoolingParams,
        *,
        truncate: int | None = None,
        side: TruncationSide | None = None,
        add_special_tokens: bool = True,
    ) -> list[TokenizedInput]:
        ids = self.tokenizer.encode(prompts, truncate=truncate, side=side, add_special_tokens=add_special_tokens)
        return [TokenizedInput(input_ids=x) for x in ids]

    def forward(self, batch: Batch) -> torch.Tensor:
        """Hidden states (b, L, h) of the backbone."""
        kwargs: dict[str, Any] = {"input_ids": batch.input_ids, "attention_mask": batch.attention_mask}
        if batch.token_type_ids is not None:
            kwargs["token_type_ids"] = batch.token_type_ids
        return self.module(**kwargs).last_hidden_state

    def pool(
        self, task: Task, hidden: torch.Tensor, batch: Batch, params: Sequence[PoolingParams]
    ) -> list[torch.Tensor]:
        """Turn the rows of `hidden` into one output tensor per row (float32, on CPU)."""
        raise UnsupportedTaskError(f"The model does not support {TASK_API_NAMES[task]}")
