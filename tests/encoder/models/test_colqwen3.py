"""ColQwen3 family: the four layouts load through `Engine.load`, match a hand-built Qwen3-VL reference, and
retrieve an identical image first."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from safetensors.torch import load_file

from encoder import Engine, ImagePart, InvalidInputError, ModelLoadError, ModelSpec, MultimodalInput, PoolingParams
from encoder.types import TokenOptions
from poolers.maxsim import maxsim
from tests.fixtures.colqwen3 import COLQWEN3_LAYOUTS

TOKEN_EMBED = PoolingParams(task="token_embed")
_PREFIX = {"tomoro": "vlm.model.", "ops": "", "colpali": "model.", "nemotron": "model."}
_HEAD = {"tomoro": "embedding_proj_layer.", "colpali": "custom_text_proj."}
_WIDTH = {"tomoro": 16, "ops": 32, "colpali": 16, "nemotron": 32}


def _image(seed: int, size: tuple[int, int] = (56, 40)) -> Image.Image:
    pixels = (np.random.RandomState(seed).rand(size[1], size[0], 3) * 255).astype("uint8")
    return Image.fromarray(pixels)


def _page(seed: int) -> MultimodalInput:
    return MultimodalInput((ImagePart(image=_image(seed)),))


@pytest.fixture(scope="module")
def engines(tiny_store: Callable[[str], Path]) -> dict[str, Engine]:
    return {name: Engine.load(ModelSpec(source=str(tiny_store(f"colqwen3_{name}")))) for name in COLQWEN3_LAYOUTS}


def _reference(folder: Path, layout: str, item: MultimodalInput, engine: Engine, causal: bool = True) -> torch.Tensor:
    """transformers' Qwen3VLModel run by hand on the image processor's output, then the layout's math."""
    from transformers import AutoConfig, AutoImageProcessor, AutoTokenizer, Qwen3VLModel

    config = AutoConfig.from_pretrained(folder)
    state = load_file(str(folder / "model.safetensors"))
    prefix = _PREFIX[layout]
    own = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix) and "lm_head" not in k}
    model = Qwen3VLModel(config).eval()
    model.load_state_dict(own, strict=True)
    bidirectional = layout == "nemotron" and not causal
    if bidirectional:
        model.language_model.config.is_causal = False
        for layer in model.language_model.layers:
            layer.self_attn.is_causal = False
    captured: list[torch.Tensor] = []
    model.language_model.layers[-1].register_forward_hook(lambda _m, _i, out: captured.append(out))
    processor = AutoImageProcessor.from_pretrained(folder)
    images = [p.image for p in item.parts if isinstance(p, ImagePart)]
    feats = processor(images=images, size={"shortest_edge": 64, "longest_edge": 64 * 64}, return_tensors="pt")
    tok = AutoTokenizer.from_pretrained(folder)
    n = int(feats["image_grid_thw"][0].prod()) // 4
    text = "".join(p.text if not isinstance(p, ImagePart) else "<|vision_start|>" + "<|image_pad|>" * n + "<|vision_end|>" for p in item.parts)  # type: ignore[union-attr]
    ids = torch.tensor([tok(text)["input_ids"]])
    mm = (ids == config.image_token_id).long()
    with torch.no_grad():
        hidden = model(
            input_ids=ids, attention_mask=torch.ones_like(ids), pixel_values=feats["pixel_values"],
            image_grid_thw=feats["image_grid_thw"], mm_token_type_ids=mm,
        ).last_hidden_state[0]
    if layout == "nemotron":
        hidden = captured[-1][0]  # the last decoder layer's output, before the final RMSNorm
    if layout in _HEAD:
        hidden = F.linear(hidden, state[_HEAD[layout] + "weight"], state[_HEAD[layout] + "bias"])
    return F.normalize(hidden, dim=-1)


@pytest.mark.parametrize("layout", COLQWEN3_LAYOUTS)
def test_layout_matches_hand_built_reference(
    layout: str, engines: dict[str, Engine], tiny_store: Callable[[str], Path]
) -> None:
    engine = engines[layout]
    assert engine.kind == "multi-vector" and engine.accepts_images and engine.default_task == "token_embed"
    assert engine.dimensions("token_embed") == _WIDTH[layout]
    item = _page(3)
    got = engine.encode_sync([item], TOKEN_EMBED).multivectors()[0]
    ref = _reference(tiny_store(f"colqwen3_{layout}"), layout, item, engine, causal=False).numpy()
    assert got.shape == ref.shape and got.shape[1] == _WIDTH[layout]
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    cosine = (got * ref).sum(1)
    assert cosine.min() > 0.9999


def test_nemotron_attends_both_ways(engines: dict[str, Engine], tiny_store: Callable[[str], Path]) -> None:
    """A later token changes the first position's vector only when attention is bidirectional."""
    nemo, colpali = engines["nemotron"], engines["colpali"]
    for engine, expect_change in ((nemo, True), (colpali, False)):
        a, b = engine.encode_sync(["alpha beta gamma", "alpha beta delta"], TOKEN_EMBED).multivectors()
        changed = not np.allclose(a[0], b[0], atol=1e-6)
        assert changed is expect_change
    causal = _reference(tiny_store("colqwen3_nemotron"), "nemotron", _page(4), nemo, causal=True)
    bidir = nemo.encode_sync([_page(4)], TOKEN_EMBED).multivectors()[0]
    assert (causal.numpy() * bidir).sum(1).min() < 0.999


@pytest.mark.parametrize("layout", COLQWEN3_LAYOUTS)
def test_identical_image_query_scores_highest(layout: str, engines: dict[str, Engine]) -> None:
    engine = engines[layout]
    opts = TokenOptions(prompt_name=engine.prompt("document"))
    pages = engine.encode_sync([_page(s) for s in (10, 11, 12)], TOKEN_EMBED, opts).multivectors()
    query = engine.encode_sync([_page(11)], TOKEN_EMBED, opts).multivectors()[0]
    scores = [float(maxsim(torch.from_numpy(query), torch.from_numpy(p)[None])[0]) for p in pages]
    assert int(np.argmax(scores)) == 1 and scores[1] == pytest.approx(len(query), rel=1e-5)


def test_family_prompts(engines: dict[str, Engine]) -> None:
    engine = engines["colpali"]
    assert (engine.prompt("query"), engine.prompt("document")) == ("query", "document")
    plain = engine.encode_sync(["a cat"], TOKEN_EMBED).prompt_token_ids[0]
    query = engine.encode_sync(["a cat"], TOKEN_EMBED, TokenOptions(prompt_name="query")).prompt_token_ids[0]
    eos = engine.tokenize("<|endoftext|>", add_special_tokens=False)
    assert query == plain + eos * 10
    page = engine.encode_sync([_page(1)], TOKEN_EMBED, TokenOptions(prompt_name="document")).prompt_token_ids[0]
    assert page[: len(engine.tokenize("<|im_start|>user\n<|vision_start|>"))] == engine.tokenize(
        "<|im_start|>user\n<|vision_start|>"
    )
    assert page[-len(eos) * 2 :][-1] == eos[0]
    with pytest.raises(InvalidInputError, match="not one of this model's prompts"):
        engine.encode_sync(["x"], TOKEN_EMBED, TokenOptions(prompt_name="passage"))


def test_matryoshka_and_visual_token_bound(tiny_store: Callable[[str], Path]) -> None:
    folder = str(tiny_store("colqwen3_ops"))
    engine = Engine.load(ModelSpec(source=folder, hf_overrides={"matryoshka_dimensions": [8], "max_num_visual_tokens": 4}))
    big = MultimodalInput((ImagePart(image=_image(5, (300, 200))),))
    out = engine.encode_sync([big], PoolingParams(task="token_embed", dimensions=8))
    ids = out.prompt_token_ids[0]
    image_pad = engine.tokenize("<|image_pad|>", add_special_tokens=False)[0]
    assert 1 <= ids.count(image_pad) <= 4 and out.multivectors()[0].shape[1] == 8
    np.testing.assert_allclose(np.linalg.norm(out.multivectors()[0], axis=1), 1.0, atol=1e-5)
    with pytest.raises(InvalidInputError, match="only supports"):
        engine.encode_sync(["x"], PoolingParams(task="token_embed", dimensions=5))
    with pytest.raises(ModelLoadError, match="max_num_visual_tokens"):
        Engine.load(ModelSpec(source=folder, hf_overrides={"max_num_visual_tokens": 10**9}))


def test_chat_messages_become_the_same_input(engines: dict[str, Engine]) -> None:
    import base64
    import io

    engine = engines["colpali"]
    buf = io.BytesIO()
    _image(7).save(buf, format="PNG")
    url = "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()
    messages = [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": url}}, {"type": "text", "text": "Describe the image."}]}]
    item = engine.render_chat_input(messages)
    assert isinstance(item, MultimodalInput) and sum(isinstance(p, ImagePart) for p in item.parts) == 1
    via_chat = engine.encode_sync([item], TOKEN_EMBED).multivectors()[0]
    direct = MultimodalInput(
        tuple(ImagePart(image=_image(7)) if isinstance(p, ImagePart) else p for p in item.parts)
    )
    np.testing.assert_allclose(via_chat, engine.encode_sync([direct], TOKEN_EMBED).multivectors()[0], atol=1e-5)
