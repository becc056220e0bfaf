"""Engine's public surface: capability queries, tokenizer operations, typed results, prompts, one run path."""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from encoder import (
    EncodeCall,
    Engine,
    InvalidInputError,
    ModelSpec,
    PoolingParams,
    TokenOptions,
    UnsupportedTaskError,
    content_input,
)

TEXTS = ["What is late interaction?", "Dense vectors are one per text.", "short"]
PROMPTS = {"query": "query: ", "document": "passage: "}


@pytest.fixture(scope="module")
def prompted(tiny_store: Callable[[str], Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny ST BERT with e5-style prompts declared in config_sentence_transformers.json."""
    folder = tmp_path_factory.mktemp("prompted") / "bert"
    shutil.copytree(tiny_store("bert_st_mean"), folder)
    cfg = {"prompts": PROMPTS, "default_prompt_name": None, "similarity_fn_name": "cosine"}
    (folder / "config_sentence_transformers.json").write_text(json.dumps(cfg))
    return folder


@pytest.fixture(scope="module")
def engine(prompted: Path) -> Engine:
    return Engine.load(ModelSpec(source=str(prompted)))


def test_capabilities(engine: Engine, tiny_store: Callable[[str], Path]) -> None:
    assert engine.kind == "dense" and not engine.late_interaction
    assert engine.representations == {"dense", "multivector"}  # its token vectors serve late interaction
    assert engine.supports("embed") and not engine.supports("classify") and engine.default_task == "embed"
    assert engine.dimensions() == 32 and engine.max_model_len == 64
    with pytest.raises(UnsupportedTaskError, match="Classification API"):
        engine.check_task("classify")
    cross = Engine.load(ModelSpec(source=str(tiny_store("bert_ce"))))
    assert cross.kind == "cross-encoder" and cross.representations == frozenset()
    colbert = Engine.load(ModelSpec(source=str(tiny_store("hf_colbert"))))
    assert colbert.kind == "multi-vector" and colbert.late_interaction and colbert.default_task == "token_embed"


def test_tokenizer_operations(engine: Engine) -> None:
    text = "Hello, late interaction!"
    ids = engine.tokenize(text)
    assert len(ids) == engine.count_tokens([text])[0] == len(engine.tokenize(text, add_special_tokens=False)) + 2
    assert engine.num_special_tokens == 2
    spans = engine.token_spans(text)
    assert len(spans) == len(ids) - 2 and spans[0][0] == 0 and spans[-1][1] == len(text)
    assert all(text[s:e].strip() for s, e in spans)  # every span covers real characters
    assert engine.detokenize(engine.tokenize(text, add_special_tokens=False)) == text.lower()
    assert engine.cut_to_tokens([text], 2) == ["Hello,"]
    with pytest.raises(InvalidInputError, match="outside the vocabulary"):
        engine.detokenize([10**9])


def test_typed_results_are_numpy_and_never_drop_rows(engine: Engine) -> None:
    dense = engine.encode_sync(TEXTS, PoolingParams(task="embed")).dense()
    assert dense.dtype == np.float32 and dense.shape == (3, 32)
    np.testing.assert_allclose(np.linalg.norm(dense, axis=1), 1.0, atol=1e-5)
    multi = engine.encode_sync(TEXTS, PoolingParams(task="token_embed")).multivectors()
    assert [m.shape[0] for m in multi] == engine.count_tokens(TEXTS)


def test_one_job_of_several_calls_equals_separate_calls(engine: Engine) -> None:
    calls = [
        EncodeCall(TEXTS[:2], PoolingParams(task="embed")),
        EncodeCall(TEXTS[2:], PoolingParams(task="token_embed")),
    ]
    together = asyncio.run(_run(engine, calls))
    apart = [engine.encode_sync(c.prompts, c.params) for c in calls]
    np.testing.assert_allclose(together[0].dense(), apart[0].dense(), atol=1e-6)
    np.testing.assert_allclose(together[1].multivectors()[0], apart[1].multivectors()[0], atol=1e-6)
    sync = engine.run_sync(calls)
    np.testing.assert_allclose(sync[0].dense(), apart[0].dense(), atol=1e-6)


async def _run(engine: Engine, calls: list[EncodeCall]) -> list:  # type: ignore[type-arg]
    try:
        return await engine.run(calls)
    finally:
        engine.close()


def test_text_only_content_is_text_and_images_are_refused(engine: Engine) -> None:
    item = content_input([{"type": "text", "text": TEXTS[0]}])
    a = engine.encode_sync([item], PoolingParams()).dense()
    np.testing.assert_allclose(a, engine.encode_sync(TEXTS[:1], PoolingParams()).dense(), atol=1e-6)
    image = content_input([{"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}])
    with pytest.raises(InvalidInputError, match="MultiModalParam is not supported for BertModel"):
        engine.encode_sync([image], PoolingParams())


def test_prompts_match_sentence_transformers(engine: Engine, prompted: Path) -> None:
    from sentence_transformers import SentenceTransformer

    st = SentenceTransformer(str(prompted), device="cpu")
    assert engine.prompt("query") == "query" and engine.prompt("document") == "document"
    for role, st_encode in (("query", st.encode_query), ("document", st.encode_document)):
        ours = engine.encode_sync(TEXTS, PoolingParams(), TokenOptions(prompt_name=engine.prompt(role))).dense()  # type: ignore[arg-type]
        theirs = st_encode(TEXTS, convert_to_numpy=True)
        cos = (ours * theirs).sum(1) / np.linalg.norm(theirs, axis=1)
        assert cos.min() > 0.99999, (role, cos)
    plain = engine.encode_sync(TEXTS, PoolingParams()).dense()  # vLLM's behaviour: no prompt unless asked
    np.testing.assert_allclose(plain, st.encode(TEXTS, convert_to_numpy=True), atol=1e-5)


def test_unknown_prompt_name_lists_the_model_prompts(engine: Engine) -> None:
    with pytest.raises(InvalidInputError, match=r"not one of this model's prompts: \['document', 'query'\]"):
        engine.encode_sync(TEXTS, PoolingParams(), TokenOptions(prompt_name="web"))
