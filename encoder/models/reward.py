"""Reward models (`*ForRewardModeling`, `*RewardModel`): a decoder plus a value head, read at every token.

vLLM serves them with `token_classify` and ALL pooling (`LLM.reward`): one row of head outputs per kept token.
Checkpoints that ship their own modelling code (internlm/internlm2-1_8b-reward: `InternLM2ForRewardModel`
with a `v_head`) load through `auto_map` only when the operator passes `trust_remote_code`.
"""

from __future__ import annotations

from typing import Any

import torch

from encoder.batch import Batch
from encoder.errors import ModelLoadError
from encoder.models.token_classifier import PerTokenAdapter
from encoder.types import ModelKind
from poolers.activation import classify_activation

__all__ = ["REWARD_ARCHITECTURE_PATTERN", "RewardModel"]

REWARD_ARCHITECTURE_PATTERN = r"ForRewardModeling$|RewardModel$"
_HEAD_NAMES = ("v_head", "score", "value_head", "reward_head", "classifier")


class RewardModel(PerTokenAdapter):
    """`token_classify` only: per-token head outputs, raw by default (`use_activation: true` applies
    the classify activation: sigmoid for one output, softmax for more)."""

    architectures = ("InternLM2ForRewardModel", "Qwen2ForRewardModel", "LlamaForRewardModeling")
    activate_by_default = False  # rewards are raw scores unless a request asks for the activation

    @property
    def kind(self) -> ModelKind:
        return "reward"

    def load_module(self) -> torch.nn.Module:
        config = self.info.config
        if getattr(config, "auto_map", None) and not self.info.spec.trust_remote_code:
            raise ModelLoadError(
                f"{self.info.weights_dir} ships its own modelling code (auto_map); pass trust_remote_code to load it"
            )
        module = self.load_backbone()
        self.base, self.head = _split(module, self.info.architecture)
        self.num_outputs = int(getattr(self.head, "out_features", 0) or getattr(config, "num_labels", 1))
        self.activation = classify_activation(self.num_outputs, getattr(config, "problem_type", None))
        return module

    def forward(self, batch: Batch) -> torch.Tensor:
        """Head outputs at every position: (b, L, C) in the model dtype."""
        out = self.base(input_ids=batch.input_ids, attention_mask=batch.attention_mask)
        hidden = out.last_hidden_state if hasattr(out, "last_hidden_state") else out[0]
        return self.head(hidden)


def _split(module: torch.nn.Module, architecture: str) -> tuple[torch.nn.Module, torch.nn.Module]:
    """(backbone returning hidden states, value head) of a reward model; a `ModelLoadError` when unknown."""
    prefix = getattr(module, "base_model_prefix", "") or "model"
    base: Any = getattr(module, prefix, None) or getattr(module, "model", None)
    head = next(
        (getattr(module, n) for n in _HEAD_NAMES if isinstance(getattr(module, n, None), torch.nn.Module)),
        None,
    )
    if base is None or head is None:
        raise ModelLoadError(
            f"cannot find the backbone and value head of {architecture}: expected a `{prefix}` backbone and "
            f"one of {list(_HEAD_NAMES)}"
        )
    return base, head
