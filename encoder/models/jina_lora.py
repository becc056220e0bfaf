"""Jina's task LoRA adapters (jina-embeddings-v3): merge the default, switch to any other without reloading.

Every adapted tensor carries factors stacked over the ``lora_adaptations`` (n adapters, rank r):

* linear ``W`` (out, in): ``lora_A`` (n, r, in), ``lora_B`` (n, out, r); ``W_t = W + B[t] @ A[t] * alpha / r``;
* embedding ``E`` (V, H): ``lora_A`` (n, V, r), ``lora_B`` (n, r, H); ``E_t = E + A[t] @ B[t] * alpha / r``.

Like vLLM, the default adapter is the **last** one (``text-matching``) and is merged into the module's linear
weights at load, rounded to the checkpoint dtype. Other adapters:

* embeddings are never merged: the rows a batch looks up get their delta on the fly (``A[t][ids] @ B[t]``),
  which costs rank-r work per token and no copy of the (V, H) table;
* linear weights come from merged variants, held in an LRU of ``max_held`` entries; a variant that is not
  held is merged again when a batch asks for it ("apply delta on switch"). See the measurements in
  :data:`DEFAULT_MAX_HELD`.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import cast

import torch
from torch import nn

from encoder.errors import ModelLoadError
from encoder.models.jina_xlmr_backbone import LoraPair

__all__ = ["DEFAULT_MAX_HELD", "TaskLoRA", "lora_delta"]

# Held merged variants besides the default. Measured on this project's CPU (2 shared cores) at the real
# jina-embeddings-v3 linear sizes (24 x Wqkv/out_proj/fc1/fc2 = 302M parameters, /tmp bench in the report):
# one variant is 1.12 GiB fp32 / 0.56 GiB bf16 and merging it on a switch takes 5-8 s (fp32 or bf16), while a
# forward of 8 x 128 tokens takes ~23 s and of one short query well under 1 s. Holding the four other variants
# (+4.5 GiB fp32 / +2.2 GiB bf16, next to one kept copy of the unmerged weights) makes every switch free, so
# all are held by default; a smaller value trades memory for a merge whenever an evicted adapter returns.
DEFAULT_MAX_HELD = 4


def lora_delta(lora_a: torch.Tensor, lora_b: torch.Tensor, embedding: bool, scaling: float) -> torch.Tensor:
    """The float32 update of one adapter: B @ A * scaling (linear (out, in)) or A @ B * scaling (embedding).

    >>> a, b = torch.ones(2, 3), torch.full((4, 2), 0.5)
    >>> lora_delta(a, b, False, 0.25).shape, float(lora_delta(a, b, False, 0.25)[0, 0])
    (torch.Size([4, 3]), 0.25)
    """
    first, second = (lora_a, lora_b) if embedding else (lora_b, lora_a)
    return (first.float() @ second.float()) * scaling


class _Factors(nn.Module):
    """One adapted weight: its factors and (linear only) the unmerged original, as buffers that follow `.to`."""

    lora_a: torch.Tensor  # (n, r, in) linear / (n, V, r) embedding
    lora_b: torch.Tensor  # (n, out, r) linear / (n, r, H) embedding
    original: torch.Tensor | None  # the unmerged linear weight (out, in); None for embeddings

    def __init__(self, lora_a: torch.Tensor, lora_b: torch.Tensor, original: torch.Tensor | None) -> None:
        super().__init__()
        self.register_buffer("lora_a", lora_a.contiguous())
        self.register_buffer("lora_b", lora_b.contiguous())
        self.register_buffer("original", None if original is None else original.contiguous())


class TaskLoRA(nn.Module):
    """Adapter names, instructions and factors; serves merged linear weights and LoRA'd embedding rows."""

    def __init__(
        self,
        names: Sequence[str],
        instructions: Mapping[str, str],
        scaling: float,
        factors: Mapping[str, LoraPair],
        originals: Mapping[str, torch.Tensor],
        max_held: int = DEFAULT_MAX_HELD,
    ) -> None:
        super().__init__()
        self.names = tuple(names)
        self.instructions = {n: str(instructions.get(n, "") or "") for n in self.names}
        self.scaling = scaling
        self.default = len(self.names) - 1  # vLLM merges index -1 (text-matching)
        self.max_held = max_held
        self.checkpoint_dtype = next(iter(originals.values())).dtype
        self.weights = nn.ModuleDict()
        self._keys: dict[str, str] = {}  # parameter name -> ModuleDict key
        for name, (a, b) in factors.items():
            self._check(name, a, b, originals[name])
            key = name.replace(".", "__")
            self._keys[name] = key
            keep = None if self.is_embedding(name) else originals[name]
            self.weights[key] = _Factors(a, b, keep)
        self._held: OrderedDict[int, dict[str, torch.Tensor]] = OrderedDict()
        self.merges = 0  # variants merged since load (for tests and metrics)

    @staticmethod
    def is_embedding(name: str) -> bool:
        return name.startswith("embeddings.")

    def _check(self, name: str, a: torch.Tensor, b: torch.Tensor, w: torch.Tensor) -> None:
        n = len(self.names)
        rows, cols = w.shape
        want = ((n, rows, -1), (n, -1, cols)) if self.is_embedding(name) else ((n, -1, cols), (n, rows, -1))
        for got, shape, label in ((a, want[0], "lora_A"), (b, want[1], "lora_B")):
            if got.dim() != 3 or any(s not in (-1, g) for s, g in zip(shape, got.shape, strict=True)):
                raise ModelLoadError(
                    f"{name} {label} has shape {list(got.shape)}; expected {[s if s > 0 else 'r' for s in shape]} "
                    f"for {n} adapters and weight {list(w.shape)}"
                )

    def index(self, name: str) -> int:
        return self.names.index(name)

    def _factors(self, name: str) -> _Factors:
        return cast(_Factors, self.weights[self._keys[name]])

    def merged(self, name: str, original: torch.Tensor, adapter: int) -> torch.Tensor:
        """original + delta in float32, rounded to the checkpoint dtype, returned in `original`'s dtype."""
        f = self._factors(name)
        delta = lora_delta(f.lora_a[adapter], f.lora_b[adapter], self.is_embedding(name), self.scaling)
        return (original.float() + delta).to(self.checkpoint_dtype).to(original.dtype)

    def merge_default_into(self, state: dict[str, torch.Tensor]) -> None:
        """Replace every adapted linear weight of `state` by its default-adapter merge (vLLM's load-time merge)."""
        for name in self._keys:
            if not self.is_embedding(name):
                state[name] = self.merged(name, state[name], self.default)

    def linear_weights(self, adapter: int) -> dict[str, torch.Tensor]:
        """Merged linear weights of `adapter` (empty for the default: the module holds them)."""
        if adapter == self.default:
            return {}
        if adapter in self._held:
            self._held.move_to_end(adapter)
            return self._held[adapter]
        variant = {}
        for name in self._keys:
            original = self._factors(name).original
            if original is not None:
                variant[name] = self.merged(name, original, adapter)
        self.merges += 1
        if self.max_held > 0:
            self._held[adapter] = variant
            while len(self._held) > self.max_held:
                self._held.popitem(last=False)
        return variant

    def embed(self, tables: Mapping[str, nn.Embedding], input_ids: torch.Tensor, adapter: int) -> torch.Tensor:
        """word + token-type(0) rows (b, L, H) of the merged tables of `adapter`, before emb_ln."""
        word = self._rows(tables, "embeddings.word_embeddings.weight", input_ids, adapter)
        types = self._rows(tables, "embeddings.token_type_embeddings.weight", torch.zeros_like(input_ids), adapter)
        return word + types

    def _rows(self, tables: Mapping[str, nn.Embedding], name: str, ids: torch.Tensor, adapter: int) -> torch.Tensor:
        table = tables[name].weight
        if name not in self._keys:
            return table[ids]
        f = self._factors(name)
        delta = (f.lora_a[adapter][ids].float() @ f.lora_b[adapter].float()) * self.scaling
        return (table[ids].float() + delta).to(self.checkpoint_dtype).to(table.dtype)
