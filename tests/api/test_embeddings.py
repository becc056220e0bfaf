"""`/v1/embeddings` end to end: the real openai client, vLLM's error shapes, bad input never a 500."""

from __future__ import annotations

import base64
import json

import numpy as np
import openai
import pytest

from retrieval import ModelRegistry, ServiceConfig
from tests.api._server import LiveServer, live_server
from tests.conftest import MINILM

TEXTS = ["hello", "the quick brown fox", "Größe 東京 🚀", "   spaced   out   "]


def _client(server: LiveServer, key: str = "unused") -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key=key, max_retries=0)


def _assert_error(resp: object, status: int, type_: str, contains: str = "") -> dict:
    assert resp.status_code == status, resp.text  # type: ignore[attr-defined]
    err = resp.json()["error"]  # type: ignore[attr-defined]
    assert set(err) == {"message", "type", "param", "code"}
    assert err["code"] == status and err["type"] == type_
    assert contains in err["message"]
    return err


def test_openai_client_float_and_base64_agree(minilm_server: LiveServer) -> None:
    client = _client(minilm_server)
    floats = client.embeddings.create(model=MINILM, input=TEXTS, encoding_format="float")
    default = client.embeddings.create(model=MINILM, input=TEXTS)  # the client asks base64, decodes it
    b64 = client.embeddings.create(model=MINILM, input=TEXTS, encoding_format="base64")  # left to the caller
    a = np.array([d.embedding for d in floats.data], dtype=np.float32)
    b = np.array([d.embedding for d in default.data], dtype=np.float32)
    c = np.stack([np.frombuffer(base64.b64decode(d.embedding), dtype=np.float32) for d in b64.data])
    assert a.shape == (4, 384)
    assert np.array_equal(a, b) and np.array_equal(a, c)
    assert np.allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)
    assert floats.model == MINILM and floats.usage.prompt_tokens > 0
    assert [d.index for d in floats.data] == [0, 1, 2, 3]


def test_dimensions_on_non_matryoshka_model_is_vllms_400(minilm_server: LiveServer) -> None:
    with pytest.raises(openai.BadRequestError) as err:
        _client(minilm_server).embeddings.create(model=MINILM, input="hello", dimensions=128)
    assert err.value.status_code == 400
    assert err.value.body["message"] == (  # type: ignore[index]
        f'Model "{MINILM}" does not support matryoshka representation, '
        "changing output dimensions will lead to poor results."
    )


def test_vllm_fields_token_ids_and_truncation(minilm_server: LiveServer) -> None:
    with minilm_server.client() as http:
        ids = http.post("/v1/embeddings", json={"input": [101, 7592, 102]}).json()
        text = http.post("/v1/embeddings", json={"input": "hello"}).json()
        assert np.allclose(ids["data"][0]["embedding"], text["data"][0]["embedding"], atol=1e-6)
        long_text = "word " * 400
        err = _assert_error(
            http.post("/v1/embeddings", json={"input": long_text}),
            400,
            "BadRequestError",
            "maximum context length is 256 tokens",
        )
        assert "402 tokens" in err["message"]
        ok = http.post(
            "/v1/embeddings",
            json={
                "input": long_text,
                "truncate_prompt_tokens": -1,
                "truncation_side": "left",
                "user": "u",
                "unknown_field": 1,
            },
        )
        assert ok.status_code == 200 and ok.json()["usage"]["prompt_tokens"] == 256


def test_embed_dtype_endianness_and_bytes(minilm_server: LiveServer) -> None:
    with minilm_server.client() as http:
        ref = np.array(http.post("/v1/embeddings", json={"input": "hi"}).json()["data"][0]["embedding"])
        half = http.post(
            "/v1/embeddings",
            json={"input": "hi", "encoding_format": "base64", "embed_dtype": "float16", "endianness": "big"},
        ).json()
        vec = np.frombuffer(base64.b64decode(half["data"][0]["embedding"]), dtype=">f2")
        assert np.allclose(vec, ref, atol=1e-3)
        raw = http.post("/v1/embeddings", json={"input": ["hi", "there"], "encoding_format": "bytes"})
        assert raw.headers["content-type"] == "application/octet-stream"
        meta = json.loads(raw.headers["metadata"])
        first = meta["data"][0]
        assert first["shape"] == [384]
        assert np.allclose(np.frombuffer(raw.content[first["start"] : first["end"]], dtype=np.float32), ref, atol=1e-6)


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"input": ""}, "input"),
        ({"input": []}, "input"),
        ({"input": [""]}, "input"),
        ({"input": [[]]}, "input"),
        ({"input": 5}, "input"),
        ({"input": {"a": 1}}, "input"),
        ({"input": ["a", 1]}, "input"),
        ({"input": [1.5]}, "input"),
        ({"input": [99999999]}, "input"),
        ({}, "input"),
        ({"input": "x", "dimensions": "a"}, "body.dimensions"),
        ({"input": "x", "encoding_format": "hex"}, "body.encoding_format"),
        ({"input": "x", "truncate_prompt_tokens": -5}, "truncate_prompt_tokens"),
        ({"input": "x", "truncate_prompt_tokens": 100000}, "truncate_prompt_tokens"),
        ({"input": "x", "normalize": True}, "normalize"),
        ({"input": "x", "dimensions": 0}, "dimensions"),
    ],
)
def test_bad_input_is_400_with_the_error_shape(minilm_server: LiveServer, body: dict, param: str) -> None:
    with minilm_server.client() as http:
        err = _assert_error(http.post("/v1/embeddings", json=body), 400, "BadRequestError")
        assert err["param"] == param
        assert http.get("/health").status_code == 200


def test_malformed_json_and_unknown_model(minilm_server: LiveServer) -> None:
    with minilm_server.client() as http:
        bad = http.post("/v1/embeddings", content=b'{"input": "x"', headers={"content-type": "application/json"})
        _assert_error(bad, 400, "BadRequestError")
        _assert_error(
            http.post("/v1/embeddings", json={"input": "x", "model": "nope"}),
            404,
            "NotFoundError",
            "The model `nope` does not exist.",
        )
        _assert_error(http.get("/v1/embeddings"), 405, "MethodNotAllowedError")
        _assert_error(http.get("/no/such/path"), 404, "NotFoundError")


def test_oversized_body_is_413_and_server_stays_up(minilm_registry: ModelRegistry) -> None:
    with live_server(minilm_registry, ServiceConfig(max_body_bytes=1024)) as server, server.client() as http:
        resp = http.post("/v1/embeddings", json={"input": "x" * 5000})
        _assert_error(resp, 413, "RequestEntityTooLargeError")
        assert http.post("/v1/embeddings", json={"input": "small"}).status_code == 200
        assert http.get("/health").status_code == 200


def test_api_key_guards_model_endpoints(minilm_registry: ModelRegistry) -> None:
    with live_server(minilm_registry, ServiceConfig(api_key="s3cret")) as server, server.client() as http:
        _assert_error(http.post("/v1/embeddings", json={"input": "x"}), 401, "AuthenticationError")
        assert http.get("/health").status_code == 200
        vec = _client(server, key="s3cret").embeddings.create(model=MINILM, input="x")
        assert len(vec.data[0].embedding) == 384


def test_models_health_metrics_and_openapi(minilm_server: LiveServer) -> None:
    with minilm_server.client() as http:
        models = http.get("/v1/models").json()
        assert models["object"] == "list"
        card = models["data"][0]
        assert (card["id"], card["object"], card["max_model_len"]) == (MINILM, "model", 256)
        health = http.get("/health")
        assert health.status_code == 200 and health.content == b""
        http.post("/v1/embeddings", json={"input": "metrics please"})
        metrics = http.get("/metrics").text
        assert 'retrieval_sequences_total{model="sentence-transformers/all-MiniLM-L6-v2"}' in metrics
        assert "retrieval_http_requests_total" in metrics
        schema = http.get("/docs/openapi.json").json()
        assert "/v1/embeddings" in schema["paths"]
        assert http.get("/docs").status_code == 200


CHAT_TEMPLATE = "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"


def test_chat_messages_are_rendered_with_the_template(minilm_server: LiveServer) -> None:
    messages = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hello there"}]
    with minilm_server.client() as http:
        chat = http.post("/v1/embeddings", json={"messages": messages, "chat_template": CHAT_TEMPLATE})
        assert chat.status_code == 200, chat.text
        plain = http.post(
            "/v1/embeddings", json={"input": "system: be brief\nuser: hello there\n", "add_special_tokens": False}
        )
        assert np.allclose(chat.json()["data"][0]["embedding"], plain.json()["data"][0]["embedding"], atol=1e-6)
        parts = [{"role": "user", "content": [{"type": "text", "text": "hello there"}]}]
        assert http.post("/v1/embeddings", json={"messages": parts, "chat_template": CHAT_TEMPLATE}).status_code == 200


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"messages": [{"role": "user", "content": "hi"}]}, "cannot apply the chat template"),
        ({"messages": [{"role": "user", "content": "hi"}], "input": "x"}, "exactly one of `input` or `messages`"),
        ({"messages": []}, "non-empty list"),
        ({"messages": [{"content": "no role"}], "chat_template": CHAT_TEMPLATE}, "`role`"),
        (
            {
                "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}],
                "chat_template": CHAT_TEMPLATE,
            },
            "only text parts",
        ),
        (
            {
                "messages": [{"role": "user", "content": "hi"}],
                "chat_template": CHAT_TEMPLATE,
                "add_generation_prompt": True,
                "continue_final_message": True,
            },
            "Cannot set both",
        ),
    ],
)
def test_bad_chat_requests_are_400(minilm_server: LiveServer, body: dict, message: str) -> None:
    with minilm_server.client() as http:
        _assert_error(http.post("/v1/embeddings", json=body), 400, "BadRequestError", message)
        _assert_error(http.post("/pooling", json=body), 400, "BadRequestError", message)
