"""From source documents to store records (retrieval/ingest/pipeline.py): chunking budgets, client vectors,
the encode calls planned for the chunks that still need vectors, and `finish` putting results back in place."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from encoder import EncodeResult, Engine, ModelSpec
from retrieval.errors import InvalidRequestError
from retrieval.ingest.documents import SourceDocument
from retrieval.ingest.pipeline import chunk_document, finish, hash_document, plan_ingest
from retrieval.spec.collection import ChunkingSpec, CollectionSpec
from retrieval.spec.encoders import Encoders

NONE = Encoders(None, None, None)
DENSE = CollectionSpec(name="c", dense_model="dense")


@pytest.fixture(scope="module")
def dense(tiny_store: Callable[[str], Path]) -> Iterator[Engine]:
    engine = Engine.load(ModelSpec(source=str(tiny_store("bert_st_mean")), name="dense"))
    yield engine
    engine.close()


def test_without_a_model_chunks_are_word_windows() -> None:
    doc = SourceDocument("d", "one two three four five")
    chunks, cut = chunk_document(doc, None, ChunkingSpec(max_tokens=3, overlap=1))
    assert not cut and [(c.text, c.position) for c in chunks] == [("one two three", 0), ("three four five", 1)]
    whole, cut = chunk_document(doc, None, ChunkingSpec(mode="truncate", max_tokens=3))
    assert cut and [(c.text, c.char_start, c.char_end) for c in whole] == [(doc.text, 0, len(doc.text))]
    with pytest.raises(InvalidRequestError, match=r"document `e` has no text") as err:
        chunk_document(SourceDocument("e", " \n"), None, ChunkingSpec())
    assert err.value.param == "documents.text"


def test_the_models_limit_caps_the_chunk_budget(dense: Engine) -> None:
    text = " ".join(f"w{i}" for i in range(200))
    chunks, _ = chunk_document(SourceDocument("d", text), dense, ChunkingSpec(overlap=0))
    budget = dense.max_model_len - dense.num_special_tokens
    assert len(chunks) > 1 and all(len(dense.token_spans(c.text)) <= budget for c in chunks)
    assert len(dense.token_spans(chunks[0].text)) == budget  # the first window is full: the cap is the limit
    assert all(c.text == text[c.char_start : c.char_end] for c in chunks) and chunks[-1].char_end == len(text)


def test_client_vectors_make_one_chunk_and_are_checked() -> None:
    doc = SourceDocument("v", "a b c d e f", vectors={"dense": [1, 2]})
    plan = plan_ingest([doc], DENSE, NONE)
    assert plan.calls == {} and [len(c) for c in plan.chunks] == [1]
    [record] = finish(plan, {})
    chunk = record.chunks[0]
    assert chunk.dense is not None and chunk.dense.dtype == np.float32 and chunk.dense.tolist() == [1.0, 2.0]
    assert (chunk.multivector, chunk.sparse, record.content_hash) == (None, None, hash_document(doc, DENSE))
    with pytest.raises(InvalidRequestError, match=r"unknown vector kinds \['colbert'\]"):
        plan_ingest([SourceDocument("x", "t", vectors={"colbert": []})], DENSE, NONE)
    with pytest.raises(InvalidRequestError, match=r"brings `sparse` vectors but the collection keeps no sparse") as err:
        plan_ingest([SourceDocument("x", "t", vectors={"sparse": {}})], DENSE, NONE)
    assert err.value.param == "vectors.sparse"
    sparse = CollectionSpec(name="c", sparse_model="m3")
    bad = plan_ingest([SourceDocument("x", "t", vectors={"sparse": {"a": 1}})], sparse, NONE)
    with pytest.raises(InvalidRequestError, match=r"sparse vector keys must be token ids"):
        finish(bad, {})


def test_hash_covers_client_vectors() -> None:
    a = SourceDocument("a", "t", vectors={"dense": [1.0]})
    assert hash_document(a, DENSE) == hash_document(SourceDocument("b", "t", vectors={"dense": [1.0]}), DENSE)
    assert hash_document(a, DENSE) != hash_document(SourceDocument("a", "t", vectors={"dense": [2.0]}), DENSE)
    assert hash_document(a, DENSE) != hash_document(SourceDocument("a", "t"), DENSE)


def test_only_chunks_without_client_vectors_are_encoded_and_results_land_in_place(dense: Engine) -> None:
    enc = Encoders(dense, None, None)
    docs = [
        SourceDocument("a", "alpha beta"),
        SourceDocument("b", "given", vectors={"dense": [9.0] * 4}),
        SourceDocument("c", "gamma"),
    ]
    plan = plan_ingest(docs, DENSE, enc)
    [call] = plan.calls["dense"]
    assert list(call.prompts) == ["alpha beta", "gamma"] and call.params.task == "embed"
    assert plan.roles["dense"] == [(["dense"], [0, 2])]
    result = EncodeResult("embed", [torch.full((4,), 1.0), torch.full((4,), 3.0)], [[1], [2]])
    records = finish(plan, {"dense": [result]})
    assert [r.chunks[0].dense.tolist() for r in records] == [[1.0] * 4, [9.0] * 4, [3.0] * 4]  # type: ignore[union-attr]
