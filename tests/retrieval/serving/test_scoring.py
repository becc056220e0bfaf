"""Score semantics by model type, cardinality rules and their exact vLLM error texts."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from encoder import Engine, InvalidInputError, ModelSpec, PoolingParams, UnsupportedTaskError
from encoder.inputs import TextPair, content_input
from retrieval.models.serving.scoring import ScoreOptions, rank, score, score_kind, score_sync

Q = ["what is the capital of france", "how do spiders walk"]
D = ["paris is the capital of france", "spiders have eight legs", "bananas are yellow"]


@pytest.fixture(scope="module")
def cross(tiny_store: Callable[[str], Path]) -> Engine:
    return Engine.load(ModelSpec(source=str(tiny_store("bert_ce"))))


@pytest.fixture(scope="module")
def embedder(tiny_store: Callable[[str], Path]) -> Engine:
    return Engine.load(ModelSpec(source=str(tiny_store("bert_st_mean"))))


def test_cross_encoder_broadcasts_and_zips(cross: Engine) -> None:
    assert score_kind(cross) == "cross-encoder"
    one_to_n = score_sync(cross, Q[:1], D)
    pairs = [TextPair(Q[0], d) for d in D]
    direct = cross.encode_sync(pairs, PoolingParams(task="score"))
    assert one_to_n.scores == pytest.approx([float(t[0]) for t in direct.outputs], abs=1e-6)
    assert one_to_n.prompt_tokens == sum(direct.prompt_tokens)
    zipped = score_sync(cross, Q, D[:2])
    assert zipped.scores[1] == pytest.approx(score_sync(cross, Q[1], [D[1]]).scores[0], abs=1e-6)
    raw = score_sync(cross, Q[:1], D[:1], ScoreOptions(use_activation=False)).scores[0]
    assert one_to_n.scores[0] == pytest.approx(float(torch.sigmoid(torch.tensor(raw))), abs=1e-6)


@pytest.mark.parametrize(
    ("queries", "docs", "message"),
    [
        (Q, D, "Input lengths must be either 1:1, 1:N or N:N"),
        ([], D, "At least one text element must be given"),
        (Q[:1], [], "At least one text_pair element must be given"),
        (
            [content_input([{"type": "image_url", "image_url": {"url": "data:,"}}])],
            D[:1],
            "MultiModalParam is not supported",
        ),
    ],
)
def test_bad_inputs_are_vllms_400s(cross: Engine, queries: list, docs: list, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        score_sync(cross, queries, docs)


def test_text_content_parts_are_text(cross: Engine) -> None:
    parts = content_input([{"type": "text", "text": Q[0]}])
    assert score_sync(cross, [parts], D[:1]).scores == score_sync(cross, Q[:1], D[:1]).scores


def test_bi_encoder_is_cosine_of_embeddings(embedder: Engine) -> None:
    assert score_kind(embedder) == "bi-encoder"
    result = score_sync(embedder, Q[:1], D)
    emb = embedder.encode_sync([Q[0], *D], PoolingParams(task="embed"))
    expected = [float(F.cosine_similarity(emb.outputs[0], e, dim=0)) for e in emb.outputs[1:]]
    assert result.scores == pytest.approx(expected, abs=1e-6)
    assert result.prompt_tokens == sum(emb.prompt_tokens)


def test_late_interaction_is_summed_maxsim(tiny_store: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch) -> None:
    engine = Engine.load(ModelSpec(source=str(tiny_store("bert_st_mean"))))
    monkeypatch.setattr(Engine, "late_interaction", property(lambda _: True))  # a token_embed model by MaxSim
    assert score_kind(engine) == "late-interaction"
    result = score_sync(engine, Q, D[:2])
    for i in range(2):
        q = engine.encode_sync([Q[i]], PoolingParams(task="token_embed")).outputs[0]
        d = engine.encode_sync([D[i]], PoolingParams(task="token_embed")).outputs[0]
        naive = sum(max(float(qv @ dv) for dv in d) for qv in q)
        assert result.scores[i] == pytest.approx(naive, rel=1e-5)


def test_async_equals_sync_and_unsupported_models(cross: Engine, tiny_store: Callable[[str], Path]) -> None:
    got = asyncio.run(score(cross, Q[:1], D))
    assert got.scores == pytest.approx(score_sync(cross, Q[:1], D).scores, abs=1e-6)
    cross.close()
    classifier = Engine.load(ModelSpec(source=str(tiny_store("bert_cls3"))))
    with pytest.raises(UnsupportedTaskError, match="The model does not support Score API"):
        score_sync(classifier, Q[:1], D)


def test_max_tokens_per_doc_cuts_at_a_character_boundary(cross: Engine) -> None:
    long_doc = "spiders have eight legs and two body parts"
    cut = score_sync(cross, Q[:1], [long_doc], ScoreOptions(max_tokens_per_doc=3))
    assert cut.scores == score_sync(cross, Q[:1], ["spiders have eight"]).scores
    with pytest.raises(InvalidInputError, match="max_tokens_per_query must be less than max_model_len"):
        score_sync(cross, Q[:1], D, ScoreOptions(max_tokens_per_query=10_000))


def test_rank_sorts_and_keeps_top_n() -> None:
    assert rank([0.2, 0.9, 0.5]) == [(1, 0.9), (2, 0.5), (0, 0.2)]
    assert rank([0.2, 0.9, 0.5], top_n=1) == [(1, 0.9)]
    assert rank([0.2, 0.9], top_n=5) == [(1, 0.9), (0, 0.2)]
    with pytest.raises(InvalidInputError, match="top_n"):
        rank([0.1], top_n=-1)


def test_colbert_scores_are_maxsim_of_query_and_document_encodings(tiny_store: Callable[[str], Path]) -> None:
    engine = Engine.load(ModelSpec(source=str(tiny_store("hf_colbert"))))
    assert score_kind(engine) == "late-interaction"
    result = score_sync(engine, Q[0], D)
    q = engine.encode_sync([Q[0]], PoolingParams(task="token_embed", embedding_mode="query")).outputs[0]
    docs = engine.encode_sync(D, PoolingParams(task="token_embed", embedding_mode="document")).outputs
    naive = [sum(max(float(qv @ dv) for dv in d) for qv in q) for d in docs]
    assert result.scores == pytest.approx(naive, rel=1e-5)
