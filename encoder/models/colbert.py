"""ColBERT late-interaction models in every published layout: Stanford HF_ColBERT, PyLate / ST, Jina.

One adapter, three registered architectures that differ only in the backbone weight prefix and the
default settings (see `encoder.colbert_config`):

=========================== ============ ===================================================
architecture                prefix       typical checkpoint
=========================== ============ ===================================================
``HF_ColBERT``              ``bert.``    colbert-ir/colbertv2.0, answerai-colbert-small-v1
``ColBERTModernBertModel``  (none)       lightonai/GTE-ModernColBERT-v1 (+ ``1_Dense``)
``ColBERTJinaRobertaModel`` ``roberta.`` jinaai/jina-colbert-v2 (remote-code backbone)
=========================== ============ ===================================================

The projection is ``linear.weight`` [dim, hidden] (optionally ``linear.bias``) next to the backbone
weights, else the sentence-transformers Dense modules listed in ``modules.json``.

``token_embed`` with ``embedding_mode``:

* ``None`` -- vLLM's raw behaviour: one projected, L2-normalised vector per input token;
* ``"query"`` -- marker at position 1, truncated / padded with the mask token to ``query_length``
  (attention on the expansion per the checkpoint), every position kept;
* ``"document"`` -- marker at position 1, truncated to ``document_length``, skiplist ids dropped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, cast

import torch

from encoder.batch import Batch
from encoder.colbert_config import ColBERTLayout, ColBERTSettings, read_colbert_settings
from encoder.errors import ModelLoadError
from encoder.inputs import Prompt
from encoder.models.base import ModelAdapter, load_st_dense_heads
from encoder.models.weights import load_prefixed_backbone
from encoder.resolve import ModelInfo, position_limit
from encoder.types import EmbeddingMode, ModelKind, PoolingParams, Representation, Task, TokenizedInput, TruncationSide
from poolers.colbert import expand_query, insert_marker, skiplist_keep, token_vectors
from poolers.dense import DenseHead

__all__ = [
    "ColBERTAdapter",
    "ColBERTIds",
    "ColBERTModule",
    "HFColBERT",
    "JinaColBERT",
    "PyLateColBERT",
]

_HEAD_KEYS = ("linear.", "colbert_linear.")


@dataclass(frozen=True, slots=True)
class ColBERTIds:
    """Token ids the encoding needs, resolved once from the tokenizer."""

    query_marker: int | None  # id put at position 1 of queries
    document_marker: int | None  # id put at position 1 of documents
    mask: int  # query expansion id ([MASK], else EOS, else pad)
    skip: frozenset[int]  # document ids whose vectors are dropped


def _marker_id(tok: Any, marker: str | None, what: str, vocab_size: int, folder: object) -> int | None:
    """The single vocabulary id of `marker` (as written, then stripped); a multi-token marker is an error.

    PyLate saves its ``"[Q] "`` / ``"[D] "`` prefixes as added tokens; a tokenizer without them cannot
    reproduce the checkpoint's embeddings, so it is refused instead of being split into pieces.
    """
    if marker is None:
        return None
    for candidate in dict.fromkeys((marker, marker.strip())):
        found = tok.convert_tokens_to_ids(candidate)
        if found is not None and (found != tok.unk_token_id or candidate == tok.unk_token):
            if found >= vocab_size:
                raise ModelLoadError(
                    f"ColBERT {what} marker {marker!r} has id {found}, outside the model's {vocab_size} "
                    f"embeddings (tokenizer in {folder} does not match the weights)"
                )
            return int(found)
    raise ModelLoadError(
        f"ColBERT {what} marker {marker!r} is not a single token of the tokenizer in {folder}; "
        'add it to the tokenizer (PyLate saves its prefixes as added tokens) or set the prefix to ""'
    )


def _skip_ids(tok: Any, words: Sequence[str]) -> frozenset[int]:
    """Ids of skiplist words: the word as a vocabulary token (PyLate) and its encoding when that is a
    single token (Stanford ColBERT takes the first id of ``encode(symbol)``); unknown ids are ignored."""
    out: set[int] = set()
    for word in words:
        found = tok.convert_tokens_to_ids(word)
        if found is not None and found != tok.unk_token_id:
            out.add(int(found))
        encoded = tok.encode(word, add_special_tokens=False)
        if len(encoded) == 1 and encoded[0] != tok.unk_token_id:
            out.add(int(encoded[0]))
    return frozenset(out)


def _mask_id(tok: Any, folder: object) -> int:
    for candidate in (tok.mask_token_id, tok.eos_token_id, tok.pad_token_id):
        if candidate is not None:
            return int(candidate)
    raise ModelLoadError(f"the tokenizer in {folder} has no mask, EOS or pad token for query expansion")


def _position_limit(info: ModelInfo) -> int:
    """Tokens the backbone can position. Not the ST `max_seq_length`: PyLate tokenizes with
    ``length - 1`` and adds the marker, so a document may be one token longer than that."""
    if info.spec.max_model_len is not None:
        return info.spec.max_model_len
    return position_limit(info.config, info.max_model_len)


class ColBERTModule(torch.nn.Module):
    """Backbone + projection head; `forward` is not used (the adapter calls the parts)."""

    def __init__(self, backbone: torch.nn.Module, head: torch.nn.Module) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = head


class ColBERTAdapter(ModelAdapter):
    """Shared ColBERT behaviour; subclasses set `architectures`, `layout` and `weight_prefix`."""

    tasks: ClassVar[frozenset[Task] | None] = frozenset({"token_embed"})
    layout: ClassVar[ColBERTLayout] = "stanford"
    weight_prefix: ClassVar[str] = "bert."

    @property
    def kind(self) -> ModelKind:
        return "multi-vector"

    @property
    def representations(self) -> frozenset[Representation]:
        return frozenset({"multivector"})

    def __init__(self, info: ModelInfo, device: torch.device, dtype: torch.dtype) -> None:
        self.settings: ColBERTSettings = read_colbert_settings(info.root, self.layout, dict(info.st.extra))
        super().__init__(info, device, dtype)
        self.position_limit = _position_limit(info)
        if self.settings.query_length > self.position_limit:
            raise ModelLoadError(
                f"ColBERT query_length {self.settings.query_length} of {info.root} exceeds the model's "
                f"{self.position_limit} positions"
            )
        self.ids = self._resolve_ids()

    # -- loading -------------------------------------------------------------------------------------
    def _resolve_ids(self) -> ColBERTIds:
        tok, folder = self.tokenizer.hf, self.tokenizer_dir()
        vocab = int(getattr(self.info.config, "vocab_size", 0) or len(tok))
        return ColBERTIds(
            query_marker=_marker_id(tok, self.settings.query_marker, "query", vocab, folder),
            document_marker=_marker_id(tok, self.settings.document_marker, "document", vocab, folder),
            mask=_mask_id(tok, folder),
            skip=_skip_ids(tok, self.settings.skiplist_words),
        )

    def load_module(self) -> torch.nn.Module:
        backbone, rest, path = load_prefixed_backbone(
            self.info, (self.weight_prefix, "model."), head_prefixes=_HEAD_KEYS
        )
        return ColBERTModule(backbone, self._load_head(rest, path))

    @property
    def parts(self) -> ColBERTModule:
        return cast(ColBERTModule, self.module)

    def _load_head(self, rest: dict[str, torch.Tensor], path: object) -> torch.nn.Module:
        """`linear.weight` [dim, hidden] from the weights file, else the ST Dense modules of modules.json."""
        for prefix in _HEAD_KEYS:
            weight = rest.get(prefix + "weight")
            if weight is not None:
                if weight.dim() != 2 or weight.shape[1] != self.info.hidden_size:
                    raise ModelLoadError(
                        f"{path}: '{prefix}weight' has shape {list(weight.shape)}, expected "
                        f"[dim, {self.info.hidden_size}] (the ColBERT projection)"
                    )
                return DenseHead(weight, rest.get(prefix + "bias"))
        if self.info.st.dense_paths:
            return torch.nn.Sequential(*load_st_dense_heads(self.info.root, self.info.st.dense_paths))
        raise ModelLoadError(
            f"{path} has no 'linear.weight' tensor and {self.info.root / 'modules.json'} lists no Dense "
            "module: the ColBERT projection is missing"
        )

    def output_size(self, task: Task) -> int:
        last = [m for m in self.parts.head.modules() if isinstance(m, torch.nn.Linear)][-1]
        return int(last.out_features)

    # -- encoding ------------------------------------------------------------------------------------
    def mode_length(self, mode: EmbeddingMode, truncate: int | None) -> int:
        """Tokens per sequence in `mode` (marker included), capped by the model and by `truncate`."""
        s = self.settings
        length = s.query_length if mode == "query" else min(s.document_length, self.position_limit)
        return max(min(length, truncate) if truncate is not None else length, 2)

    def tokenize(
        self,
        prompts: Sequence[Prompt],
        params: PoolingParams,
        *,
        truncate: int | None = None,
        side: TruncationSide | None = None,
        add_special_tokens: bool = True,
    ) -> list[TokenizedInput]:
        mode = params.embedding_mode
        if mode is None:
            return super().tokenize(
                prompts, params, truncate=truncate, side=side, add_special_tokens=add_special_tokens
            )
        marker = self.ids.query_marker if mode == "query" else self.ids.document_marker
        length = self.mode_length(mode, truncate)
        body = length - (marker is not None)
        encoded = self.tokenizer.encode(prompts, truncate=body, side=side, add_special_tokens=add_special_tokens)
        shaped = self._query if mode == "query" else self._document
        return [shaped(insert_marker(ids, marker), length) for ids in encoded]

    def _query(self, ids: list[int], length: int) -> TokenizedInput:
        if not self.settings.query_expansion:
            return TokenizedInput(input_ids=ids)
        expanded, attention = expand_query(ids, length, self.ids.mask, self.settings.attend_to_expansion)
        return TokenizedInput(input_ids=expanded, attention_mask=attention, keep_mask=[1] * len(expanded))

    def _document(self, ids: list[int], length: int) -> TokenizedInput:
        return TokenizedInput(input_ids=ids, keep_mask=skiplist_keep(ids, self.ids.skip))

    def forward(self, batch: Batch) -> torch.Tensor:
        kwargs = {"input_ids": batch.input_ids, "attention_mask": batch.attention_mask}
        if batch.token_type_ids is not None:
            kwargs["token_type_ids"] = batch.token_type_ids
        return self.parts.backbone(**kwargs).last_hidden_state

    def pool(
        self, task: Task, hidden: torch.Tensor, batch: Batch, params: Sequence[PoolingParams]
    ) -> list[torch.Tensor]:
        """token_embed: project every position, keep `batch.keep_mask`, truncate, L2 -> (n_i, dim) fp32."""
        if task != "token_embed":
            return super().pool(task, hidden, batch, params)
        projected = self.parts.head(hidden)
        dims = [p.dimensions for p in params]
        normalize = [p.use_activation is not False for p in params]
        return [v.cpu() for v in token_vectors(projected, batch.keep_mask, dims, normalize)]


class HFColBERT(ColBERTAdapter):
    """Stanford ColBERT (`HF_ColBERT`): `bert.*` + `linear.weight`, settings from `artifact.metadata`."""

    architectures: ClassVar[tuple[str, ...]] = ("HF_ColBERT",)
    layout: ClassVar[ColBERTLayout] = "stanford"
    weight_prefix: ClassVar[str] = "bert."


class PyLateColBERT(ColBERTAdapter):
    """PyLate / sentence-transformers ColBERT: encoder + `1_Dense`, settings from ST config."""

    architectures: ClassVar[tuple[str, ...]] = ("ColBERTModernBertModel",)
    layout: ClassVar[ColBERTLayout] = "pylate"
    weight_prefix: ClassVar[str] = "model."


class JinaColBERT(ColBERTAdapter):
    """Jina ColBERT v2: `roberta.*` + `linear.weight`, markers [QueryMarker] / [DocumentMarker]."""

    architectures: ClassVar[tuple[str, ...]] = ("ColBERTJinaRobertaModel",)
    layout: ClassVar[ColBERTLayout] = "jina"
    weight_prefix: ClassVar[str] = "roberta."
