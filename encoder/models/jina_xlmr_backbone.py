"""Our torch implementation of Jina's flash XLM-RoBERTa (the backbone of jina-embeddings-v3 / jina-colbert-v2).

Checkpoint names (``roberta.`` stripped) are the module's own parameter names:

* ``embeddings.word_embeddings.weight`` (V, H), ``embeddings.token_type_embeddings.weight`` (T, H), ``emb_ln.*``
  -- no absolute positions;
* ``encoder.layers.N.mixer.Wqkv`` (3H, H) split as [Q all heads | K | V], ``mixer.out_proj``, ``norm1``,
  ``mlp.fc1`` / ``mlp.fc2`` with exact (erf) GELU, ``norm2`` -- post-LayerNorm blocks;
* rotary positions (NeoX / non-interleaved, over the full head, base ``rotary_emb_base``) on Q and K.

LoRA-parametrised tensors (``<name>.parametrizations.weight.original`` + ``.0.lora_A`` / ``.0.lora_B``) are
split off by :func:`split_flash_state`; ``pooler.*`` is skipped like vLLM does.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from encoder.errors import ModelLoadError

__all__ = ["FlashSettings", "JinaXLMRBackbone", "LoraPair", "rotary_tables", "rotate_half", "split_flash_state"]

_ORIGINAL = ".parametrizations.weight.original"
_LORA_A = ".parametrizations.weight.0.lora_A"
_LORA_B = ".parametrizations.weight.0.lora_B"
LoraPair = tuple[torch.Tensor, torch.Tensor]  # (lora_A, lora_B) stacked over adapters


@dataclass(frozen=True, slots=True)
class FlashSettings:
    """The backbone's shape, read from the (JSON-loaded) config."""

    hidden_size: int  # H
    num_layers: int  # blocks
    num_heads: int  # attention heads; head size H / heads is also the rotary size
    intermediate_size: int  # fc1 width
    vocab_size: int  # word embedding rows
    type_vocab_size: int  # token-type embedding rows (1 for Jina)
    eps: float  # LayerNorm epsilon
    rotary_base: float  # rotary_emb_base (20000 for jina-embeddings-v3)

    @classmethod
    def from_config(cls, config: Any) -> FlashSettings:
        act = getattr(config, "hidden_act", "gelu")
        if act != "gelu":
            raise ModelLoadError(f"flash XLM-RoBERTa with hidden_act {act!r} is not supported (expected 'gelu')")
        hidden, heads = int(config.hidden_size), int(config.num_attention_heads)
        if hidden % heads or (hidden // heads) % 2:
            raise ModelLoadError(f"hidden_size {hidden} does not split into {heads} heads of even size")
        return cls(
            hidden_size=hidden,
            num_layers=int(config.num_hidden_layers),
            num_heads=heads,
            intermediate_size=int(config.intermediate_size),
            vocab_size=int(config.vocab_size),
            type_vocab_size=int(getattr(config, "type_vocab_size", 1) or 1),
            eps=float(getattr(config, "layer_norm_eps", 1e-5)),
            rotary_base=float(getattr(config, "rotary_emb_base", None) or 10000.0),
        )


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    """NeoX rotation of the last axis: (x1, x2) -> (-x2, x1).

    >>> rotate_half(torch.tensor([1.0, 2.0, 3.0, 4.0])).tolist()
    [-3.0, -4.0, 1.0, 2.0]
    """
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


def rotary_tables(length: int, dim: int, base: float, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """cos, sin float32 (length, dim) for positions 0..length-1, frequencies repeated over both halves.

    >>> cos, sin = rotary_tables(2, 4, 10000.0, torch.device("cpu"))
    >>> cos.shape, float(cos[0, 0]), round(float(sin[1, 0]), 4)
    (torch.Size([2, 4]), 1.0, 0.8415)
    """
    inv_freq = 1.0 / base ** (torch.arange(0, dim, 2, dtype=torch.float32, device=device) / dim)
    angles = torch.outer(torch.arange(length, dtype=torch.float32, device=device), inv_freq)
    angles = torch.cat((angles, angles), dim=-1)
    return angles.cos(), angles.sin()


class _Mixer(nn.Module):
    def __init__(self, s: FlashSettings) -> None:
        super().__init__()
        self.Wqkv = nn.Linear(s.hidden_size, 3 * s.hidden_size)
        self.out_proj = nn.Linear(s.hidden_size, s.hidden_size)


class _MLP(nn.Module):
    def __init__(self, s: FlashSettings) -> None:
        super().__init__()
        self.fc1 = nn.Linear(s.hidden_size, s.intermediate_size)
        self.fc2 = nn.Linear(s.intermediate_size, s.hidden_size)


class _Block(nn.Module):
    def __init__(self, s: FlashSettings) -> None:
        super().__init__()
        self.mixer = _Mixer(s)
        self.norm1 = nn.LayerNorm(s.hidden_size, eps=s.eps)
        self.mlp = _MLP(s)
        self.norm2 = nn.LayerNorm(s.hidden_size, eps=s.eps)


class _Embeddings(nn.Module):
    def __init__(self, s: FlashSettings) -> None:
        super().__init__()
        self.word_embeddings = nn.Embedding(s.vocab_size, s.hidden_size)
        self.token_type_embeddings = nn.Embedding(s.type_vocab_size, s.hidden_size)


class _Encoder(nn.Module):
    def __init__(self, s: FlashSettings) -> None:
        super().__init__()
        self.layers = nn.ModuleList(_Block(s) for _ in range(s.num_layers))


class JinaXLMRBackbone(nn.Module):
    """Embeddings + emb_ln + post-LN rotary blocks. `forward` -> hidden states (b, L, H) in the module dtype."""

    def __init__(self, settings: FlashSettings) -> None:
        super().__init__()
        self.settings = settings
        self.embeddings = _Embeddings(settings)
        self.emb_ln = nn.LayerNorm(settings.hidden_size, eps=settings.eps)
        self.encoder = _Encoder(settings)

    def embed(self, input_ids: torch.Tensor) -> torch.Tensor:
        """word + token-type(0) embeddings (b, L, H), before emb_ln."""
        types = torch.zeros_like(input_ids)
        return self.embeddings.word_embeddings(input_ids) + self.embeddings.token_type_embeddings(types)

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        weights: Mapping[str, torch.Tensor] | None = None,
        embedded: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """input_ids / attention_mask int64 (b, L) -> hidden (b, L, H).

        `weights` replaces linear weights by name (a LoRA variant); `embedded` replaces `embed(input_ids)`.
        """
        h = self.emb_ln(self.embed(input_ids) if embedded is None else embedded)
        s = self.settings
        head = s.hidden_size // s.num_heads
        cos, sin = rotary_tables(input_ids.shape[1], head, s.rotary_base, input_ids.device)
        keys = attention_mask.bool()[:, None, None, :]
        w = weights or {}
        for i, block in enumerate(self.encoder.layers):
            h = self._block(block, f"encoder.layers.{i}.", h, (cos, sin), keys, w)
        return h

    def _block(
        self,
        block: Any,
        prefix: str,
        h: torch.Tensor,
        rotary: tuple[torch.Tensor, torch.Tensor],
        keys: torch.Tensor,
        w: Mapping[str, torch.Tensor],
    ) -> torch.Tensor:
        def linear(mod: nn.Linear, name: str, x: torch.Tensor) -> torch.Tensor:
            return F.linear(x, w.get(prefix + name + ".weight", mod.weight), mod.bias)

        b, length, hidden = h.shape
        heads = self.settings.num_heads
        qkv = linear(block.mixer.Wqkv, "mixer.Wqkv", h).view(b, length, 3, heads, hidden // heads)
        q, k, v = (qkv[:, :, j].transpose(1, 2) for j in range(3))  # (b, heads, L, d)
        q, k = _rotate(q, rotary), _rotate(k, rotary)
        attn = F.scaled_dot_product_attention(q, k, v, attn_mask=keys, scale=1.0 / math.sqrt(hidden // heads))
        attn = attn.transpose(1, 2).reshape(b, length, hidden)
        h = block.norm1(h + linear(block.mixer.out_proj, "mixer.out_proj", attn))
        up = F.gelu(linear(block.mlp.fc1, "mlp.fc1", h))
        return block.norm2(h + linear(block.mlp.fc2, "mlp.fc2", up))


def _rotate(x: torch.Tensor, rotary: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    """x (b, heads, L, d) rotated in float32, returned in x's dtype."""
    cos, sin = rotary
    xf = x.float()
    return (xf * cos + rotate_half(xf) * sin).to(x.dtype)


def split_flash_state(
    state: Mapping[str, torch.Tensor], head_prefixes: tuple[str, ...] = ()
) -> tuple[dict[str, torch.Tensor], dict[str, LoraPair], dict[str, torch.Tensor]]:
    """Split checkpoint tensors into (plain backbone tensors, LoRA factor pairs, head tensors).

    ``roberta.`` is stripped; ``<name>.parametrizations.weight.original`` becomes ``<name>.weight`` with its
    ``(lora_A, lora_B)`` under the same key; ``pooler.*`` is dropped.
    """
    plain: dict[str, torch.Tensor] = {}
    factors: dict[str, dict[str, torch.Tensor]] = {}
    heads: dict[str, torch.Tensor] = {}
    for key, tensor in state.items():
        if key.startswith(head_prefixes):
            heads[key] = tensor
            continue
        name = key.removeprefix("roberta.")
        if name.startswith("pooler."):
            continue
        for suffix, slot in ((_ORIGINAL, ""), (_LORA_A, "A"), (_LORA_B, "B")):
            if name.endswith(suffix):
                base = name[: -len(suffix)] + ".weight"
                if slot:
                    factors.setdefault(base, {})[slot] = tensor
                else:
                    plain[base] = tensor
                break
        else:
            plain[name] = tensor
    pairs: dict[str, LoraPair] = {}
    for name, ab in factors.items():
        if set(ab) != {"A", "B"} or name not in plain:
            raise ModelLoadError(f"LoRA tensors of {name!r} are incomplete (need original, lora_A and lora_B)")
        pairs[name] = (ab["A"], ab["B"])
    return plain, pairs, heads
