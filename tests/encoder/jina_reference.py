"""An independent, step-by-step float64 computation of Jina's flash XLM-R, written from JINA_XLMR.md.

Plain torch ops on the raw safetensors: merge adapter t (linear ``W + B[t] @ A[t] * alpha/r``, embeddings
``E + A[t] @ B[t] * alpha/r``, rounded to the checkpoint dtype like vLLM), embeddings + emb_ln, post-LN blocks
with fused Q|K|V, NeoX rotary over the full head, exact GELU; one unpadded sequence at a time.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch
from safetensors.torch import load_file

__all__ = ["hidden_states", "mean_embedding", "reference_weights", "token_embeddings"]


def reference_weights(folder: Path, adapter: int | None) -> dict[str, torch.Tensor]:
    """float64 tensors by name (``roberta.`` stripped), adapter `adapter` merged (None: plain weights)."""
    raw = load_file(str(folder / "model.safetensors"))
    cfg = json.loads((folder / "config.json").read_text())
    scaling = cfg.get("lora_alpha", 1) / cfg.get("lora_rank", 4)
    out: dict[str, torch.Tensor] = {}
    for key, tensor in raw.items():
        name = key.removeprefix("roberta.")
        if ".parametrizations.weight." not in name:
            out[name] = tensor.double()
        elif name.endswith(".original"):
            base = name.split(".parametrizations.")[0]
            assert adapter is not None
            a = raw[key.replace(".original", ".0.lora_A")][adapter].double()
            b = raw[key.replace(".original", ".0.lora_B")][adapter].double()
            delta = a @ b if base.startswith("embeddings.") else b @ a
            out[base + ".weight"] = (tensor.double() + delta * scaling).to(tensor.dtype).double()
    return out


def _layer_norm(x: torch.Tensor, w: dict[str, torch.Tensor], name: str, eps: float) -> torch.Tensor:
    mean = x.mean(-1, keepdim=True)
    var = ((x - mean) ** 2).mean(-1, keepdim=True)
    return (x - mean) / torch.sqrt(var + eps) * w[name + ".weight"] + w[name + ".bias"]


def _rotary(x: torch.Tensor, base: float) -> torch.Tensor:
    """x (L, heads, d): x * cos + rotate_half(x) * sin, positions 0..L-1."""
    length, _, d = x.shape
    inv_freq = torch.tensor([base ** (-(2 * i) / d) for i in range(d // 2)], dtype=torch.float64)
    angles = torch.arange(length, dtype=torch.float64)[:, None] * inv_freq[None, :]
    cos = torch.cat([angles.cos(), angles.cos()], dim=-1)[:, None, :]
    sin = torch.cat([angles.sin(), angles.sin()], dim=-1)[:, None, :]
    rotated = torch.cat([-x[..., d // 2 :], x[..., : d // 2]], dim=-1)
    return x * cos + rotated * sin


def hidden_states(folder: Path, w: dict[str, torch.Tensor], ids: list[int]) -> torch.Tensor:
    """float64 (L, H) for one sequence, every position attended."""
    cfg = json.loads((folder / "config.json").read_text())
    hidden, heads, eps = cfg["hidden_size"], cfg["num_attention_heads"], cfg["layer_norm_eps"]
    d = hidden // heads
    x = w["embeddings.word_embeddings.weight"][ids] + w["embeddings.token_type_embeddings.weight"][0]
    x = _layer_norm(x, w, "emb_ln", eps)
    length = len(ids)
    for i in range(cfg["num_hidden_layers"]):
        p = f"encoder.layers.{i}."
        qkv = x @ w[p + "mixer.Wqkv.weight"].T + w[p + "mixer.Wqkv.bias"]
        q = _rotary(qkv[:, :hidden].reshape(length, heads, d), cfg["rotary_emb_base"])
        k = _rotary(qkv[:, hidden : 2 * hidden].reshape(length, heads, d), cfg["rotary_emb_base"])
        v = qkv[:, 2 * hidden :].reshape(length, heads, d)
        probs = torch.softmax(torch.einsum("qhd,khd->hqk", q, k) / math.sqrt(d), dim=-1)
        attn = torch.einsum("hqk,khd->qhd", probs, v).reshape(length, hidden)
        x = _layer_norm(x + attn @ w[p + "mixer.out_proj.weight"].T + w[p + "mixer.out_proj.bias"], w, p + "norm1", eps)
        up = x @ w[p + "mlp.fc1.weight"].T + w[p + "mlp.fc1.bias"]
        up = 0.5 * up * (1 + torch.erf(up / math.sqrt(2)))
        x = _layer_norm(x + up @ w[p + "mlp.fc2.weight"].T + w[p + "mlp.fc2.bias"], w, p + "norm2", eps)
    return x


def _normalize(x: torch.Tensor) -> torch.Tensor:
    return x / x.norm(dim=-1, keepdim=True)


def mean_embedding(folder: Path, w: dict[str, torch.Tensor], ids: list[int], dims: int | None) -> torch.Tensor:
    """jina-embeddings-v3: mean over every token, keep the first `dims`, L2-normalise."""
    return _normalize(hidden_states(folder, w, ids).mean(0)[:dims])


def token_embeddings(folder: Path, w: dict[str, torch.Tensor], ids: list[int], dims: int | None) -> torch.Tensor:
    """jina-colbert-v2: every token through `linear.weight`, keep the first `dims`, L2-normalise each."""
    return _normalize((hidden_states(folder, w, ids) @ w["linear.weight"].T)[:, :dims])
