"""BGE-M3 through the ordinary load path, against FlagEmbedding's math computed here step by step."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from transformers import AutoTokenizer, XLMRobertaModel

from encoder import M3_TASK, Engine, InvalidInputError, ModelLoadError, ModelSpec, PoolingParams
from encoder.models.bge_m3 import BgeM3Adapter
from encoder.types import M3Output

M3 = {"architectures": ["BgeM3EmbeddingModel"]}
TEXTS = ["what is the capital of france? paris, paris!", "short", "the the the cat sat on the mat the end."]
ATOL = 3e-5


class Reference:
    """XLM-R run with transformers directly; heads read with torch.load(weights_only=True)."""

    def __init__(self, folder: Path) -> None:
        self.tok = AutoTokenizer.from_pretrained(folder)
        self.model = XLMRobertaModel.from_pretrained(folder).eval()
        self.colbert = torch.load(folder / "colbert_linear.pt", weights_only=True)
        self.sparse = torch.load(folder / "sparse_linear.pt", weights_only=True)

    def run(self, text: str) -> tuple[list[int], torch.Tensor]:
        ids = self.tok(text)["input_ids"]
        with torch.no_grad():
            hidden = self.model(input_ids=torch.tensor([ids])).last_hidden_state[0]
        return ids, hidden

    def dense(self, text: str) -> torch.Tensor:
        return F.normalize(self.run(text)[1][0], dim=-1)

    def colbert_vecs(self, text: str) -> torch.Tensor:
        hidden = self.run(text)[1]
        return F.normalize(hidden[1:] @ self.colbert["weight"].T + self.colbert["bias"], dim=-1)

    def token_weights(self, text: str) -> tuple[list[int], torch.Tensor]:
        ids, hidden = self.run(text)
        return ids, torch.relu(hidden @ self.sparse["weight"][0] + self.sparse["bias"][0])

    def lexical(self, text: str) -> dict[int, float]:
        ids, weights = self.token_weights(text)
        specials = {
            self.tok.cls_token_id,
            self.tok.eos_token_id,
            self.tok.pad_token_id,
            self.tok.unk_token_id,
        }
        out: dict[int, float] = {}
        for token, w in zip(ids, weights.tolist(), strict=True):
            if token in specials or w <= 0:
                continue
            out[token] = max(w, out.get(token, 0.0))
        return out


@pytest.fixture(scope="module")
def m3(tiny_store: Callable[[str], Path]) -> tuple[Engine, Reference]:
    folder = tiny_store("bge_m3")
    engine = Engine.load(ModelSpec(source=str(folder), hf_overrides=M3))
    assert isinstance(engine._adapter, BgeM3Adapter)
    return engine, Reference(folder)


def test_embed_is_normalised_cls(m3: tuple[Engine, Reference]) -> None:
    engine, ref = m3
    assert engine.default_task == "embed"
    got = engine.encode_sync(TEXTS, PoolingParams(task="embed")).outputs
    for g, text in zip(got, TEXTS, strict=True):
        torch.testing.assert_close(g, ref.dense(text), atol=ATOL, rtol=1e-4)


def test_token_embed_skips_the_first_token(m3: tuple[Engine, Reference]) -> None:
    engine, ref = m3
    got = engine.encode_sync(TEXTS, PoolingParams(task="token_embed")).outputs
    for g, text in zip(got, TEXTS, strict=True):
        torch.testing.assert_close(g, ref.colbert_vecs(text), atol=ATOL, rtol=1e-4)


def test_token_classify_is_relu_per_position_without_bos_eos(m3: tuple[Engine, Reference]) -> None:
    engine, ref = m3
    got = engine.encode_sync(TEXTS, PoolingParams(task="token_classify")).outputs
    for g, text in zip(got, TEXTS, strict=True):
        ids, weights = ref.token_weights(text)
        assert g.shape == (len(ids) - 2,)
        torch.testing.assert_close(g, weights[1:-1], atol=ATOL, rtol=1e-4)


def test_all_three_from_one_pass(m3: tuple[Engine, Reference]) -> None:
    engine, ref = m3
    outs = engine.encode_sync(TEXTS, PoolingParams(task=M3_TASK)).m3
    for out, text in zip(outs, TEXTS, strict=True):
        assert isinstance(out, M3Output)
        torch.testing.assert_close(torch.from_numpy(out.dense), ref.dense(text), atol=ATOL, rtol=1e-4)
        torch.testing.assert_close(torch.from_numpy(out.colbert), ref.colbert_vecs(text), atol=ATOL, rtol=1e-4)
        want = ref.lexical(text)
        assert sorted(out.sparse) == sorted(want)  # per token id, specials and w <= 0 dropped
        for token, w in want.items():
            assert abs(out.sparse[token] - w) < ATOL


def test_repeated_ids_keep_their_max_weight(m3: tuple[Engine, Reference]) -> None:
    engine, ref = m3
    text = TEXTS[2]
    ids, weights = ref.token_weights(text)
    repeated = {t for t in ids if ids.count(t) > 1} - {ref.tok.cls_token_id, ref.tok.eos_token_id}
    assert repeated, "fixture text must repeat a token"
    sparse = engine.encode_sync([text], PoolingParams(task=M3_TASK)).m3[0].sparse
    for token in repeated:
        best = max(w for t, w in zip(ids, weights.tolist(), strict=True) if t == token)
        if best > 0:
            assert abs(sparse[token] - best) < ATOL


def test_dimensions_need_matryoshka(m3: tuple[Engine, Reference]) -> None:
    engine, _ = m3
    with pytest.raises(InvalidInputError, match="does not support matryoshka representation"):
        engine.encode_sync(["x"], PoolingParams(task=M3_TASK, dimensions=8))
    with pytest.raises(InvalidInputError, match="does not support \\['dimensions'\\]"):
        engine.encode_sync(["x"], PoolingParams(task="token_classify", dimensions=8))


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("sparse_linear.pt", None, r"sparse_linear\.pt is missing"),
        ("colbert_linear.pt", {"weight": torch.zeros(32, 5)}, r"colbert_linear\.pt must hold a state dict"),
        ("sparse_linear.pt", {"weight": torch.zeros(2, 32)}, r"sparse_linear\.pt: 'weight' has 2 outputs"),
        (
            "sparse_linear.pt",
            torch.nn.Linear(32, 1),
            r"sparse_linear\.pt with torch\.load\(weights_only=True\)",
        ),
    ],
)
def test_bad_head_files_are_named(tiny_model: Callable[[str], Path], name: str, content: object, message: str) -> None:
    folder = tiny_model("bge_m3")
    if content is None:
        (folder / name).unlink()
    else:
        torch.save(content, folder / name)  # an nn.Module needs unpickling: refused by weights_only
    with pytest.raises(ModelLoadError, match=message):
        Engine.load(ModelSpec(source=str(folder), hf_overrides=M3))
