"""`/tokenize` and `/detokenize` end to end with vLLM's fields."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from encoder import Engine, ModelSpec
from retrieval import ModelRegistry
from tests.api._server import live_server

TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


@pytest.fixture(scope="module")
def tiny(tiny_store: Callable[[str], Path]) -> dict[str, Path]:
    return {"bert": tiny_store("bert_ce"), "qwen": tiny_store("qwen2_cls_right")}


@pytest.fixture(scope="module")
def client(tiny: dict[str, Path]) -> Iterator[httpx.Client]:
    registry = ModelRegistry([Engine.load(ModelSpec(source=str(p), name=n)) for n, p in tiny.items()])
    with live_server(registry) as live, live.client() as c:
        yield c
    registry.close()


def test_tokenize_prompt_matches_the_tokenizer(client: httpx.Client, tiny: dict[str, Path]) -> None:
    from transformers import AutoTokenizer

    hf = AutoTokenizer.from_pretrained(tiny["bert"])
    body = client.post("/tokenize", json={"prompt": "Hello world!", "return_token_strs": True}).json()
    assert body["tokens"] == hf("Hello world!")["input_ids"] and body["count"] == len(body["tokens"])
    assert body["max_model_len"] == 128
    assert body["token_strs"] == ["[CLS]", "hello", "world", "!", "[SEP]"]
    plain = client.post("/tokenize", json={"prompt": "Hello world!", "add_special_tokens": False}).json()
    assert plain["tokens"] == body["tokens"][1:-1] and plain["token_strs"] is None
    assert client.post("/detokenize", json={"tokens": plain["tokens"]}).json() == {"prompt": "hello world!"}


def test_tokenize_chat_messages(client: httpx.Client) -> None:
    messages = [{"role": "user", "content": "hi there"}]
    body = {"model": "qwen", "messages": messages, "chat_template": TEMPLATE, "return_token_strs": True}
    with_prompt = client.post("/tokenize", json=body).json()
    text = client.post("/detokenize", json={"model": "qwen", "tokens": with_prompt["tokens"]}).json()["prompt"]
    assert text == "<|im_start|>user\nhi there<|im_end|>\n<|im_start|>assistant\n"
    bare = client.post("/tokenize", json={**body, "add_generation_prompt": False}).json()
    assert bare["count"] < with_prompt["count"]


@pytest.mark.parametrize(
    ("path", "body", "message"),
    [
        ("/tokenize", {}, "exactly one of `prompt` or `messages`"),
        ("/tokenize", {"prompt": "a", "messages": []}, "exactly one of `prompt` or `messages`"),
        ("/tokenize", {"messages": [{"role": "user", "content": "x"}]}, "chat template"),
        ("/tokenize", {"prompt": 5}, "validation error"),
        (
            "/tokenize",
            {
                "messages": [{"role": "user", "content": "x"}],
                "add_generation_prompt": True,
                "continue_final_message": True,
            },
            "Cannot set both",
        ),
        ("/detokenize", {}, "tokens"),
        ("/detokenize", {"tokens": [-1]}, "outside the vocabulary"),
        ("/detokenize", {"tokens": ["a"]}, "validation error"),
    ],
)
def test_errors(client: httpx.Client, path: str, body: dict, message: str) -> None:
    resp = client.post(path, json=body)
    assert resp.status_code == 400, resp.text
    assert message in resp.json()["error"]["message"]
