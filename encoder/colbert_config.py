"""ColBERT encoding settings of a checkpoint: markers, query/document lengths, expansion, skiplist.

Sources, highest priority first (each key independently):

1. ``config_sentence_transformers.json`` with PyLate's keys (``query_prefix``, ``document_prefix``,
   ``query_length``, ``document_length``, ``attend_to_expansion_tokens``, ``skiplist_words``,
   ``do_query_expansion``);
2. ``artifact.metadata`` (Stanford ColBERT JSON: ``query_token_id``, ``doc_token_id``, ``query_maxlen``,
   ``doc_maxlen``, ``attend_to_mask_tokens``, ``mask_punctuation``, ``dim``);
3. the layout's defaults (:data:`LAYOUT_DEFAULTS`).
"""

from __future__ import annotations

import json
import string
from pathlib import Path
from typing import Any, Literal

import msgspec

from encoder.errors import ModelLoadError

__all__ = ["LAYOUT_DEFAULTS", "ColBERTLayout", "ColBERTSettings", "read_colbert_settings"]

ColBERTLayout = Literal["stanford", "pylate", "jina"]
_PUNCTUATION = tuple(string.punctuation)


class ColBERTSettings(msgspec.Struct, frozen=True):
    """How queries and documents of one ColBERT checkpoint are encoded."""

    query_marker: str | None  # token put at position 1 of queries; None = no marker
    document_marker: str | None  # token put at position 1 of documents; None = no marker
    query_length: int  # queries are truncated / padded with [MASK] to this many tokens (marker included)
    document_length: int  # documents are truncated to this many tokens (marker included)
    attend_to_expansion: bool  # attention mask 1 on the [MASK] expansion positions
    query_expansion: bool = True  # pad queries with [MASK] up to query_length
    skiplist_words: tuple[str, ...] = _PUNCTUATION  # document tokens whose vectors are dropped
    dim: int | None = None  # projection size declared by the checkpoint (informational)


LAYOUT_DEFAULTS: dict[ColBERTLayout, ColBERTSettings] = {
    # colbert/infra/config/settings.py
    "stanford": ColBERTSettings("[unused0]", "[unused1]", 32, 220, attend_to_expansion=False),
    # pylate/models/colbert.py
    "pylate": ColBERTSettings("[Q] ", "[D] ", 32, 180, attend_to_expansion=False),
    # jina-colbert-v2 model card / vLLM colbert_encoding.py
    "jina": ColBERTSettings("[QueryMarker]", "[DocumentMarker]", 32, 8192, attend_to_expansion=True),
}

# artifact.metadata key -> settings field
_STANFORD_KEYS = {
    "query_token_id": "query_marker",
    "doc_token_id": "document_marker",
    "query_maxlen": "query_length",
    "doc_maxlen": "document_length",
    "attend_to_mask_tokens": "attend_to_expansion",
    "dim": "dim",
}
# config_sentence_transformers.json key -> settings field
_PYLATE_KEYS = {
    "query_prefix": "query_marker",
    "document_prefix": "document_marker",
    "query_length": "query_length",
    "document_length": "document_length",
    "attend_to_expansion_tokens": "attend_to_expansion",
    "do_query_expansion": "query_expansion",
    "skiplist_words": "skiplist_words",
}


def _read_metadata(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"cannot read ColBERT settings from {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise ModelLoadError(f"{path} must hold a JSON object of ColBERT settings")
    return data


def _stanford_fields(meta: dict[str, Any]) -> dict[str, Any]:
    fields = {_STANFORD_KEYS[k]: v for k, v in meta.items() if k in _STANFORD_KEYS and v is not None}
    if meta.get("mask_punctuation") is False:
        fields["skiplist_words"] = ()
    return fields


def _pylate_fields(st_extra: dict[str, Any]) -> dict[str, Any]:
    return {_PYLATE_KEYS[k]: v for k, v in st_extra.items() if k in _PYLATE_KEYS and v is not None}


def read_colbert_settings(root: Path, layout: ColBERTLayout, st_extra: dict[str, Any]) -> ColBERTSettings:
    """Merge the checkpoint's settings files over the layout defaults (see the module docstring).

    An empty marker string means "no marker" (PyLate's convention). Bad values are a `ModelLoadError`.
    """
    fields = msgspec.structs.asdict(LAYOUT_DEFAULTS[layout])
    fields.update(_stanford_fields(_read_metadata(root / "artifact.metadata")))
    fields.update(_pylate_fields(st_extra))
    for key in ("query_marker", "document_marker"):
        if fields[key] == "":
            fields[key] = None
    if fields["skiplist_words"] is not None:
        fields["skiplist_words"] = tuple(fields["skiplist_words"])
    try:
        settings = msgspec.convert(fields, ColBERTSettings)
    except msgspec.ValidationError as exc:
        raise ModelLoadError(f"invalid ColBERT settings in {root}: {exc}") from exc
    if settings.query_length < 2 or settings.document_length < 2:
        raise ModelLoadError(
            f"ColBERT settings in {root}: query_length and document_length must be >= 2, got "
            f"{settings.query_length} and {settings.document_length}"
        )
    return settings
