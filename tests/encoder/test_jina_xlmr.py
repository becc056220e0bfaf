"""jina-embeddings-v3 / jina-colbert-v2 on our flash XLM-R, against the step-by-step float64 reference."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from transformers import XLMRobertaTokenizer

from encoder import Engine, InvalidInputError, ModelLoadError, ModelSpec, PoolingParams
from encoder.engine import TokenOptions
from encoder.models.jina_lora import TaskLoRA
from encoder.models.jina_xlmr import JinaEmbedder, JinaFlashColBERT
from tests.encoder.jina_reference import mean_embedding, reference_weights, token_embeddings
from tests.fixtures.jina import ADAPTERS, INSTRUCTIONS, JINA_DIMS, point_auto_map_at_hub

TEXTS = ["hello world", "the quick brown fox jumps over the lazy dog again and again", "a"]
COLBERT = {"architectures": ["ColBERTJinaRobertaModel"]}


def _load(folder: Path, **kw: object) -> Engine:
    return Engine.load(ModelSpec(source=str(folder), trust_remote_code=True, **kw))  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def v3(tiny_store: Callable[[str], Path]) -> Iterator[Engine]:
    engine = _load(tiny_store("jina_v3"), name="jinaai/jina-embeddings-v3")
    yield engine
    engine.close()


def _ids(folder: Path, texts: list[str]) -> list[list[int]]:
    return [list(x) for x in XLMRobertaTokenizer.from_pretrained(folder)(texts)["input_ids"]]


def _compare(got: list[torch.Tensor], want: list[torch.Tensor], min_cos: float, max_abs: float) -> None:
    for g, r in zip(got, want, strict=True):
        assert g.shape == r.shape
        cos = F.cosine_similarity(g.double().reshape(-1, g.shape[-1]), r.reshape(-1, r.shape[-1]), dim=-1)
        assert float(cos.min()) >= min_cos, float(cos.min())
        assert float((g.double() - r).abs().max()) <= max_abs


@pytest.mark.parametrize("dims", [None, *JINA_DIMS])
@pytest.mark.parametrize("adapter", [None, *ADAPTERS])
def test_every_adapter_and_dimension_matches_the_reference_fp32(
    v3: Engine, adapter: str | None, dims: int | None
) -> None:
    folder = v3.info.root
    index = len(ADAPTERS) - 1 if adapter is None else ADAPTERS.index(adapter)  # absent = text-matching
    prompt = INSTRUCTIONS[adapter] if adapter else ""
    weights = reference_weights(folder, index)
    want = [mean_embedding(folder, weights, ids, dims) for ids in _ids(folder, [prompt + t for t in TEXTS])]
    got = v3.encode_sync(TEXTS, PoolingParams(dimensions=dims, adapter=adapter)).outputs
    _compare(got, want, 0.99999, 2e-5)


def test_adapters_differ_and_explicit_default_equals_absent(v3: Engine) -> None:
    outs = {a: v3.encode_sync(TEXTS[:1], PoolingParams(adapter=a)).outputs[0] for a in ADAPTERS}
    absent = v3.encode_sync(TEXTS[:1], PoolingParams()).outputs[0]
    assert torch.equal(absent, outs["text-matching"])
    for a in ADAPTERS[:-1]:
        assert float(F.cosine_similarity(outs[a], absent, dim=0)) < 0.999


def test_mixed_adapters_in_one_batch_each_get_their_own(v3: Engine) -> None:
    items, params = [], []
    for i, adapter in enumerate([None, "retrieval.query", "retrieval.passage", None, "separation"]):
        p = v3.resolve_params(PoolingParams(adapter=adapter, dimensions=16 if i % 2 else None))
        items += v3.prepare([TEXTS[i % 3]], p, TokenOptions())
        params.append(p)
    batched = v3.run_batch(items, params)
    for item, p, out in zip(items, params, batched, strict=True):
        alone = v3.run_batch([item], [p])[0]
        assert torch.allclose(out, alone, atol=1e-5)


def test_switch_mode_merges_on_demand_and_equals_held(v3: Engine) -> None:
    assert isinstance(v3._adapter, JinaEmbedder)
    lora = v3._adapter.parts.lora
    assert isinstance(lora, TaskLoRA)
    held = v3.encode_sync(TEXTS, PoolingParams(adapter="separation")).outputs
    lora.max_held, lora._held = 0, type(lora._held)()  # apply the delta on every switch
    try:
        before = lora.merges
        switched = v3.encode_sync(TEXTS, PoolingParams(adapter="separation")).outputs
        again = v3.encode_sync(TEXTS, PoolingParams(adapter="separation")).outputs
        assert lora.merges >= before + 2
    finally:
        lora.max_held = 4
    for a, b, c in zip(held, switched, again, strict=True):
        assert torch.equal(a, b) and torch.equal(b, c)


def test_unknown_adapter_lists_the_models_adapters(v3: Engine) -> None:
    with pytest.raises(InvalidInputError) as err:
        v3.resolve_params(PoolingParams(adapter="summarize"))
    assert err.value.param == "adapter"
    assert "retrieval.query, retrieval.passage, separation, classification, text-matching" in err.value.message


def test_adapter_on_a_model_without_adapters_is_refused(tiny_store: Callable[[str], Path]) -> None:
    engine = Engine.load(ModelSpec(source=str(tiny_store("bert_st_mean"))))
    with pytest.raises(InvalidInputError, match="has no LoRA adapters") as err:
        engine.resolve_params(PoolingParams(adapter="retrieval.query"))
    assert err.value.param == "adapter"


def test_matryoshka_texts_are_vllms(v3: Engine) -> None:
    with pytest.raises(InvalidInputError) as err:
        v3.resolve_params(PoolingParams(dimensions=12))
    assert err.value.message == (
        'Model "jinaai/jina-embeddings-v3" only supports [8, 16, 32] matryoshka dimensions, '
        "use other output dimensions will lead to poor results."
    )


@pytest.mark.parametrize("adapter", [None, "retrieval.query"])
def test_bf16_serving_stays_close(tiny_store: Callable[[str], Path], adapter: str | None) -> None:
    folder = tiny_store("jina_v3")
    engine = _load(folder, dtype="bfloat16")
    index = len(ADAPTERS) - 1 if adapter is None else ADAPTERS.index(adapter)
    prompt = INSTRUCTIONS[adapter] if adapter else ""
    weights = reference_weights(folder, index)
    want = [mean_embedding(folder, weights, ids, 16) for ids in _ids(folder, [prompt + t for t in TEXTS])]
    _compare(engine.encode_sync(TEXTS, PoolingParams(dimensions=16, adapter=adapter)).outputs, want, 0.999, 0.03)


def test_bf16_checkpoint_merges_in_its_dtype(tiny_store: Callable[[str], Path]) -> None:
    folder = tiny_store("jina_v3_bf16")
    engine = _load(folder)  # fp32 compute on weights rounded to bf16 after the merge, like vLLM
    for adapter in ("retrieval.passage", None):
        index = len(ADAPTERS) - 1 if adapter is None else ADAPTERS.index(adapter)
        prompt = INSTRUCTIONS[adapter] if adapter else ""
        weights = reference_weights(folder, index)
        want = [mean_embedding(folder, weights, ids, None) for ids in _ids(folder, [prompt + t for t in TEXTS])]
        _compare(engine.encode_sync(TEXTS, PoolingParams(adapter=adapter)).outputs, want, 0.99999, 2e-5)


def test_unreachable_auto_map_loads_and_trust_remote_code_is_required(tiny_model: Callable[[str], Path]) -> None:
    folder = tiny_model("jina_v3")
    point_auto_map_at_hub(folder)
    with pytest.raises(ModelLoadError, match=r"XLMRobertaFlashConfig.*trust_remote_code"):
        Engine.load(ModelSpec(source=str(folder)))
    engine = _load(folder)
    assert isinstance(engine._adapter, JinaEmbedder)
    assert engine.info.matryoshka_dimensions == tuple(JINA_DIMS) and engine.info.pooling_type == "MEAN"
    assert engine.info.max_model_len == 128  # 130 positions less RoBERTa's pad offset


@pytest.mark.parametrize("kind", ["jina_v3", "jina_colbert_v2"])
def test_the_checkpoints_own_code_never_runs(tiny_model: Callable[[str], Path], kind: str) -> None:
    folder = tiny_model(kind)
    (folder / "configuration_xlm_roberta.py").write_text("raise RuntimeError('remote code executed')\n")
    engine = _load(folder, hf_overrides=COLBERT if "colbert" in kind else {})
    assert isinstance(engine._adapter, JinaFlashColBERT if "colbert" in kind else JinaEmbedder)


def test_fixture_config_module_is_the_class_vllm_asserts(tiny_store: Callable[[str], Path]) -> None:
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(tiny_store("jina_v3"), trust_remote_code=True)
    assert type(config).__name__ == "XLMRobertaFlashConfig"


def test_missing_tensor_is_a_load_error_naming_the_file(tiny_model: Callable[[str], Path]) -> None:
    from safetensors.torch import load_file, save_file

    folder = tiny_model("jina_colbert_v2")
    state = load_file(str(folder / "model.safetensors"))
    del state["roberta.encoder.layers.1.mlp.fc2.bias"]
    save_file(state, str(folder / "model.safetensors"))
    with pytest.raises(ModelLoadError, match=r"model\.safetensors.*encoder\.layers\.1\.mlp\.fc2\.bias"):
        _load(folder)


# -- jina-colbert-v2 -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def colbert(tiny_store: Callable[[str], Path]) -> Iterator[Engine]:
    engine = _load(tiny_store("jina_colbert_v2"), name="jinaai/jina-colbert-v2", hf_overrides=COLBERT)
    yield engine
    engine.close()


def _marked(folder: Path, text: str, marker: str) -> list[int]:
    tok = XLMRobertaTokenizer.from_pretrained(folder)
    ids = tok(text)["input_ids"]
    return [ids[0], tok.convert_tokens_to_ids(marker), *ids[1:]]


@pytest.mark.parametrize("dims", [None, 96, 64])
def test_colbert_query_and_document_match_the_reference(colbert: Engine, dims: int | None) -> None:
    folder = colbert.info.root
    weights = reference_weights(folder, None)
    tok = XLMRobertaTokenizer.from_pretrained(folder)
    query = _marked(folder, "hello world", "[QueryMarker]")
    query += [tok.mask_token_id] * (32 - len(query))  # expansion to 32, attended
    doc = _marked(folder, TEXTS[1], "[DocumentMarker]")
    got_q = colbert.encode_sync(
        ["hello world"], PoolingParams(task="token_embed", embedding_mode="query", dimensions=dims)
    )
    got_d = colbert.encode_sync(
        [TEXTS[1]], PoolingParams(task="token_embed", embedding_mode="document", dimensions=dims)
    )
    assert got_q.prompt_token_ids == [query] and got_d.prompt_token_ids == [doc]
    _compare(got_q.outputs, [token_embeddings(folder, weights, query, dims)], 0.99999, 2e-5)
    _compare(got_d.outputs, [token_embeddings(folder, weights, doc, dims)], 0.99999, 2e-5)


def test_colbert_published_dimensions_and_bf16(colbert: Engine, tiny_store: Callable[[str], Path]) -> None:
    assert isinstance(colbert._adapter, JinaFlashColBERT) and colbert._adapter.output_size("token_embed") == 128
    with pytest.raises(InvalidInputError, match=r"only supports \[128, 96, 64\] matryoshka dimensions"):
        colbert.resolve_params(PoolingParams(task="token_embed", dimensions=32))
    folder = tiny_store("jina_colbert_v2")
    bf16 = _load(folder, hf_overrides=COLBERT, dtype="bfloat16")
    doc = _marked(folder, TEXTS[0], "[DocumentMarker]")
    got = bf16.encode_sync([TEXTS[0]], PoolingParams(task="token_embed", embedding_mode="document")).outputs
    _compare(got, [token_embeddings(folder, reference_weights(folder, None), doc, None)], 0.999, 0.03)


def test_colbert_loads_under_its_own_architecture_name(tiny_store: Callable[[str], Path]) -> None:
    folder = tiny_store("jina_colbert_v2")
    assert json.loads((folder / "config.json").read_text())["architectures"] == ["HF_ColBERT"]
    engine = _load(folder)
    assert isinstance(engine._adapter, JinaFlashColBERT) and engine.late_interaction
