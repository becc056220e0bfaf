"""ColBERT layouts through the ordinary load path, against a step-by-step computation done here.

The reference tokenizes with the checkpoint's tokenizer, inserts the marker at position 1, expands queries
with [MASK], runs the backbone class from transformers directly on the checkpoint's tensors, projects,
masks and normalises -- it never calls the code under test.
"""

from __future__ import annotations

import string
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from transformers import AutoTokenizer, BertModel, ModernBertModel, XLMRobertaModel

from encoder import Engine, InvalidInputError, ModelSpec, PoolingParams, UnsupportedTaskError
from encoder.models.colbert import HFColBERT, JinaColBERT, PyLateColBERT

TEXTS = [
    "The quick brown fox, jumping over the lazy dog!",
    "short (query)?",
    "one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen. sixteen",
]
ATOL = 3e-5


class Reference:
    """Independent ColBERT encoder for one checkpoint folder."""

    def __init__(self, folder: Path, layout: str) -> None:
        self.tok = AutoTokenizer.from_pretrained(folder)
        self.layout = layout
        if layout == "pylate":
            self.model = ModernBertModel.from_pretrained(folder).eval()
            self.proj = load_file(str(folder / "1_Dense" / "model.safetensors"))["linear.weight"]
        else:
            cls, prefix = (BertModel, "bert.") if layout == "stanford" else (XLMRobertaModel, "roberta.")
            from transformers import AutoConfig

            self.model = cls(AutoConfig.from_pretrained(folder)).eval()
            state = load_file(str(folder / "model.safetensors"))
            self.model.load_state_dict({k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)})
            self.proj = state["linear.weight"]

    def _run(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            hidden = self.model(input_ids=ids, attention_mask=mask).last_hidden_state
        return F.normalize(hidden @ self.proj.T, dim=-1)

    def _tokenize(self, texts: list[str], marker: int, **kwargs: Any) -> tuple[torch.Tensor, torch.Tensor]:
        enc = self.tok(texts, truncation=True, return_tensors="pt", **kwargs)
        ids, mask = enc["input_ids"], enc["attention_mask"]
        column = torch.full((len(texts), 1), marker)
        return torch.cat([ids[:, :1], column, ids[:, 1:]], 1), torch.cat([mask[:, :1], column * 0 + 1, mask[:, 1:]], 1)

    def query(self, texts: list[str], length: int, marker: str, attend: bool) -> list[torch.Tensor]:
        pad = self.tok.pad_token_id
        ids, mask = self._tokenize(
            texts, self.tok.convert_tokens_to_ids(marker), padding="max_length", max_length=length - 1
        )
        ids = torch.where(ids == pad, torch.full_like(ids, self.tok.mask_token_id), ids)
        if attend:
            mask = torch.ones_like(mask)
        return list(self._run(ids, mask))  # every position kept

    def document(self, texts: list[str], length: int, marker: str) -> list[torch.Tensor]:
        ids, mask = self._tokenize(
            texts, self.tok.convert_tokens_to_ids(marker), padding="longest", max_length=length - 1
        )
        skip = {self.tok.convert_tokens_to_ids(s) for s in string.punctuation} - {self.tok.unk_token_id}
        if self.layout != "pylate":  # Stanford: the first id of encode(symbol) when it is one token
            for s in string.punctuation:
                enc = self.tok.encode(s, add_special_tokens=False)
                skip |= {enc[0]} if len(enc) == 1 and enc[0] != self.tok.unk_token_id else set()
        keep = mask.bool() & ~torch.isin(ids, torch.tensor(sorted(skip)))
        out = self._run(ids, mask)
        return [out[i][keep[i]] for i in range(len(texts))]

    def raw(self, texts: list[str]) -> list[torch.Tensor]:
        out = []
        for text in texts:
            ids = torch.tensor([self.tok(text)["input_ids"]])
            out.append(self._run(ids, torch.ones_like(ids))[0])
        return out


# kind, hf_overrides, layout, adapter, (query_length, document_length), markers, attend_to_expansion
LAYOUTS = {
    "hf_colbert": ({}, "stanford", HFColBERT, (12, 24), ("[unused0]", "[unused1]"), False),
    "pylate_colbert": (
        {"architectures": ["ColBERTModernBertModel"]},
        "pylate",
        PyLateColBERT,
        (10, 20),
        ("[Q] ", "[D] "),
        False,
    ),
    "jina_colbert": (
        {"architectures": ["ColBERTJinaRobertaModel"]},
        "jina",
        JinaColBERT,
        (32, 128),
        ("[QueryMarker]", "[DocumentMarker]"),
        True,
    ),
}


@pytest.fixture(scope="module", params=sorted(LAYOUTS))
def loaded(request: pytest.FixtureRequest, tiny_store: Callable[[str], Path]) -> tuple[str, Engine, Reference]:
    kind = request.param
    folder = tiny_store(kind)
    overrides, layout, adapter_cls, *_ = LAYOUTS[kind]
    engine = Engine.load(ModelSpec(source=str(folder), hf_overrides=overrides))
    assert type(engine._adapter) is adapter_cls
    return kind, engine, Reference(folder, layout)


def _close(got: list[torch.Tensor], want: list[torch.Tensor]) -> None:
    assert [tuple(g.shape) for g in got] == [tuple(w.shape) for w in want]
    for g, w in zip(got, want, strict=True):
        assert g.dtype == torch.float32
        torch.testing.assert_close(g, w, atol=ATOL, rtol=1e-4)


def test_query_mode_matches_reference(loaded: tuple[str, Engine, Reference]) -> None:
    kind, engine, ref = loaded
    (qlen, _), (qmarker, _), attend = LAYOUTS[kind][3], LAYOUTS[kind][4], LAYOUTS[kind][5]
    got = engine.encode_sync(TEXTS, PoolingParams(task="token_embed", embedding_mode="query")).outputs
    assert all(g.shape[0] == qlen for g in got)
    _close(got, ref.query(TEXTS, qlen, qmarker, attend))
    for g in got:
        torch.testing.assert_close(g.norm(dim=-1), torch.ones(qlen))


def test_document_mode_matches_reference(loaded: tuple[str, Engine, Reference]) -> None:
    kind, engine, ref = loaded
    (_, dlen), (_, dmarker) = LAYOUTS[kind][3], LAYOUTS[kind][4]
    got = engine.encode_sync(TEXTS, PoolingParams(task="token_embed", embedding_mode="document")).outputs
    _close(got, ref.document(TEXTS, dlen, dmarker))


def test_raw_mode_is_one_vector_per_input_token(loaded: tuple[str, Engine, Reference]) -> None:
    _, engine, ref = loaded
    got = engine.encode_sync(TEXTS, PoolingParams(task="token_embed")).outputs
    _close(got, ref.raw(TEXTS))


def test_mixed_modes_share_one_batch(loaded: tuple[str, Engine, Reference]) -> None:
    _, engine, _ = loaded
    q = PoolingParams(task="token_embed", embedding_mode="query")
    d = PoolingParams(task="token_embed", embedding_mode="document")
    qi, di = engine.prepare(TEXTS[:1], q, _opts()), engine.prepare(TEXTS[1:], d, _opts())
    mixed = engine.run_batch([*qi, *di], [q, d, d])
    alone = [*engine.run_batch(qi, [q]), *engine.run_batch(di, [d, d])]
    _close(mixed, alone)


def _opts() -> Any:
    from encoder import TokenOptions

    return TokenOptions()


def test_only_token_embed_is_served(loaded: tuple[str, Engine, Reference]) -> None:
    _, engine, _ = loaded
    assert engine.default_task == "token_embed" and engine.late_interaction
    with pytest.raises(UnsupportedTaskError, match="does not support Embeddings API"):
        engine.encode_sync(["x"], PoolingParams(task="embed"))


def test_truncate_prompt_tokens_caps_documents(loaded: tuple[str, Engine, Reference]) -> None:
    from encoder import TokenOptions

    _, engine, _ = loaded
    params = PoolingParams(task="token_embed", embedding_mode="document")
    items = engine.prepare(TEXTS, params, TokenOptions(truncate_prompt_tokens=6))
    assert max(len(it) for it in items) == 6


def test_jina_matryoshka_truncates_before_normalising(tiny_store: Callable[[str], Path]) -> None:
    folder = tiny_store("jina_colbert")
    spec = ModelSpec(
        source=str(folder),
        hf_overrides={"architectures": ["ColBERTJinaRobertaModel"], "matryoshka_dimensions": [16, 8]},
    )
    engine = Engine.load(spec)
    ref = Reference(folder, "jina")
    got = engine.encode_sync(TEXTS, PoolingParams(task="token_embed", embedding_mode="query", dimensions=8))
    ids = ref._tokenize(TEXTS, ref.tok.convert_tokens_to_ids("[QueryMarker]"), padding="max_length", max_length=31)
    ids_t = torch.where(ids[0] == ref.tok.pad_token_id, torch.full_like(ids[0], ref.tok.mask_token_id), ids[0])
    with torch.no_grad():
        hidden = ref.model(input_ids=ids_t, attention_mask=torch.ones_like(ids_t)).last_hidden_state
    want = F.normalize((hidden @ ref.proj.T)[..., :8], dim=-1)
    _close(got.outputs, list(want))
    with pytest.raises(InvalidInputError, match=r"only supports \[16, 8\] matryoshka dimensions"):
        engine.encode_sync(["x"], PoolingParams(task="token_embed", dimensions=4))
