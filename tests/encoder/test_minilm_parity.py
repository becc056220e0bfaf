"""The real all-MiniLM-L6-v2: our embeddings vs sentence-transformers' encode, cosine >= 0.9999 per text."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from encoder import Engine, ModelSpec, PoolingParams, TokenOptions


def _texts() -> list[str]:
    rng = random.Random(7)
    words = ["retrieval", "vector", "search", "model", "query", "document"]
    words += ["token", "embedding", "dense", "sparse", "index"]
    short = [" ".join(rng.choices(words, k=rng.randint(1, 12))) for _ in range(40)]
    long_ = [" ".join(rng.choices(words, k=rng.randint(300, 600))) for _ in range(20)]
    unicode_ = [
        "Größe und Maß",
        "東京は日本の首都です",
        "Привет, мир!",
        "emoji 🚀🔥 test",
        "naïve café résumé",
        "العربية نص",
        "ελληνικά κείμενο",
        "हिन्दी पाठ",
        "한국어 문장",
        "mixed 中文 and English",
    ] * 2
    spaces = [
        "  leading",
        "trailing   ",
        "\tTabs\tand\nnewlines\n",
        "multiple     inner     spaces",
        " \n mixed \t whitespace \r\n",
    ] * 4
    punct = ["Hello, world!", "What? Really...", "a-b_c/d\\e", "(nested [brackets] {here})", "1 + 2 = 3"] * 2
    return short + long_ + unicode_ + spaces + punct


@pytest.fixture(scope="module")
def minilm_engine(minilm_path: Path) -> Engine:
    return Engine.load(ModelSpec(source=str(minilm_path), name="sentence-transformers/all-MiniLM-L6-v2"))


def test_minilm_matches_sentence_transformers(minilm_engine: Engine, minilm_path: Path) -> None:
    from sentence_transformers import SentenceTransformer

    texts = _texts()
    assert len(texts) >= 100
    ours = torch.stack(
        minilm_engine.encode_sync(texts, PoolingParams(), TokenOptions(truncate_prompt_tokens=-1)).outputs
    )
    ref = SentenceTransformer(str(minilm_path), device="cpu").encode(texts, convert_to_tensor=True)
    cos = F.cosine_similarity(ours, ref.float())
    worst = int(cos.argmin())
    assert float(cos.min()) >= 0.9999, (float(cos.min()), texts[worst][:80])


def test_minilm_defaults(minilm_engine: Engine) -> None:
    info = minilm_engine.info
    assert (info.pooling_type, info.max_model_len, info.hidden_size) == ("MEAN", 256, 384)
    assert minilm_engine.encode_sync(["hello"], PoolingParams()).outputs[0].shape == (384,)


def test_token_vectors_are_sentence_transformers_token_embeddings_normalised(
    minilm_engine: Engine, minilm_path: Path
) -> None:
    """`token_embed` (use_activation) and the one-pass `embed&token_embed` give ST's
    `output_value="token_embeddings"` rows (padding dropped, [CLS]/[SEP] kept), L2-normalised per token."""
    from sentence_transformers import SentenceTransformer

    from encoder import DENSE_TOKENS_TASK

    texts = ["hello", "late interaction from a dense encoder, with a longer sentence", "a b c"]
    cut = TokenOptions(truncate_prompt_tokens=-1)
    tokens = minilm_engine.encode_sync(texts, PoolingParams(task="token_embed", use_activation=True), cut)
    joint = minilm_engine.encode_sync(texts, PoolingParams(task=DENSE_TOKENS_TASK), cut)
    dense = minilm_engine.encode_sync(texts, PoolingParams(task="embed"), cut).dense()
    ref = SentenceTransformer(str(minilm_path), device="cpu").encode(texts, output_value="token_embeddings")
    for ours, both, st, ids in zip(
        tokens.multivectors(), joint.multivectors(), ref, tokens.prompt_token_ids, strict=True
    ):
        expected = F.normalize(st.float(), dim=-1).numpy()
        assert ours.shape == expected.shape == (len(ids), 384)  # every attended token, specials included
        assert abs(ours - expected).max() < 1e-5 and abs(both - ours).max() < 1e-6
    assert abs(joint.dense() - dense).max() < 1e-6 and joint.sparse() == [{}, {}, {}]
