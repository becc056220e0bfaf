"""Read the config of a Jina flash XLM-RoBERTa checkpoint (jina-embeddings-v3, jina-colbert-v2) as plain JSON.

Their `config.json` names the remote class ``XLMRobertaFlashConfig`` (``auto_map`` into
``jinaai/xlm-roberta-flash-implementation``). vLLM requires ``--trust-remote-code`` for them and so do we,
but the remote code is never executed here: the JSON becomes a transformers ``XLMRobertaConfig`` carrying
every key (rotary base, LoRA settings, Matryoshka dimensions), so a checkpoint whose ``auto_map`` points at a
repository that cannot be reached still loads from a local folder, and our own backbone runs it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from encoder.errors import ModelLoadError

__all__ = ["FLASH_CONFIG_CLASS", "is_flash_config", "is_flash_xlmr", "read_flash_config"]

FLASH_CONFIG_CLASS = "XLMRobertaFlashConfig"


def is_flash_config(data: dict[str, Any]) -> bool:
    """Whether a parsed config.json is Jina's flash XLM-R (its AutoConfig is ``XLMRobertaFlashConfig``).

    >>> is_flash_config({"auto_map": {"AutoConfig": "jinaai/x--configuration_xlm_roberta.XLMRobertaFlashConfig"}})
    True
    >>> is_flash_config({"model_type": "xlm-roberta"})
    False
    """
    auto = data.get("auto_map")
    target = auto.get("AutoConfig", "") if isinstance(auto, dict) else ""
    return isinstance(target, str) and target.rsplit(".", 1)[-1] == FLASH_CONFIG_CLASS


def is_flash_xlmr(config: Any) -> bool:
    """Whether a loaded config describes the rotary (flash) XLM-R backbone (vLLM's `JinaRobertaModel` rule)."""
    return (
        getattr(config, "model_type", "") == "xlm-roberta"
        and getattr(config, "position_embedding_type", "absolute") == "rotary"
    )


def read_flash_config(weights_dir: Path, trust_remote_code: bool) -> Any | None:
    """The flash config of `weights_dir` as an `XLMRobertaConfig`, or None when it is another kind of config.

    Without `trust_remote_code` a flash config is a `ModelLoadError` (vLLM refuses it the same way).
    """
    path = weights_dir / "config.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"cannot read {path}: {exc}") from exc
    if not isinstance(data, dict) or not is_flash_config(data):
        return None
    if not trust_remote_code:
        raise ModelLoadError(
            f"{path} names {FLASH_CONFIG_CLASS} (Jina's flash XLM-RoBERTa, remote code); pass trust_remote_code "
            "to serve it (the checkpoint's code is not executed: the model runs on our own implementation)"
        )
    from transformers import XLMRobertaConfig

    fields = {k: v for k, v in data.items() if k not in ("model_type", "transformers_version")}
    fields.setdefault("position_embedding_type", "rotary")
    fields.setdefault("rotary_emb_base", 10000.0)  # XLMRobertaFlashConfig's default
    return XLMRobertaConfig(**fields)
