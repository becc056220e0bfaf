"""Validation messages (api/validation.py) for the real request structs: the full path of the field at fault, the
nearest field name for an unknown one, the values of a closed set; and through a live server's routes."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import msgspec
import pytest

from api.schemas.documents import IngestDocuments
from api.schemas.search import SearchRequest
from api.validation import explain
from retrieval import ModelRegistry
from tests.api._server import live_server


def _error(body: object, kind: type) -> str:
    with pytest.raises(msgspec.ValidationError) as err:
        msgspec.convert(body, kind)
    return str(err.value)


def test_an_unknown_field_gets_its_full_path_and_the_nearest_name() -> None:
    found = explain(_error({"q": "x"}, SearchRequest), SearchRequest)
    assert found.param == "q" and "did you mean `query`?" in found.message and "top_k, mode" in found.message
    nested = explain(_error({"documents": [{"text": "a"}, {"txt": "b"}]}, IngestDocuments), IngestDocuments)
    assert nested.param == "documents[1].txt" and "did you mean `text`?" in nested.message
    deep = explain(_error({"query": "x", "rerank": {"top": 3}}, SearchRequest), SearchRequest)
    assert deep.param == "rerank.top" and "did you mean `top_n`?" in deep.message
    far = explain(_error({"zzzz": 1}, SearchRequest), SearchRequest)
    assert "did you mean" not in far.message and "(fields: query," in far.message


def test_a_closed_set_lists_its_values_and_a_wrong_type_names_its_field() -> None:
    found = explain(_error({"query": "x", "mode": "semantic"}, SearchRequest), SearchRequest)
    assert found.param == "mode"
    assert found.message.endswith("expected one of: bm25, dense, hybrid, multivector, sparse")
    fusion = explain(_error({"query": "x", "fusion": {"method": "max"}}, SearchRequest), SearchRequest)
    assert fusion.param == "fusion.method" and "expected one of: dbsf, rrf, weighted" in fusion.message
    typed = explain(_error({"documents": [{"text": 5}]}, IngestDocuments), IngestDocuments)
    assert typed == explain("Expected `str`, got `int` - at `$.documents[0].text`", None)
    assert typed.param == "documents[0].text" and typed.message.endswith("at `documents[0].text`")


@pytest.fixture(scope="module")
def client(minilm_registry: ModelRegistry) -> Iterator[httpx.Client]:
    with live_server(minilm_registry) as live, live.client() as c:
        yield c


@pytest.mark.parametrize(
    ("path", "body", "param", "contains"),
    [
        ("search", {"query": "x", "mode": "semantic"}, "body.mode", "expected one of: bm25, dense, hybrid"),
        ("search", {"q": "x"}, "body.q", "did you mean `query`?"),
        ("search", {"query": "x", "group_by": "page"}, "body.group_by", "expected one of: document"),
        ("documents", {"documents": [{"text": "a"}, {"txt": "b"}]}, "body.documents[1].txt", "did you mean `text`?"),
    ],
)
def test_rest_errors_name_the_path_and_what_is_allowed(
    client: httpx.Client, path: str, body: dict[str, object], param: str, contains: str
) -> None:
    resp = client.post(f"/v1/collections/default/{path}", json=body)
    assert resp.status_code == 400, resp.text
    err = resp.json()["error"]
    assert err["param"] == param and contains in err["message"], err


def test_an_unknown_model_lists_the_served_ones(client: httpx.Client) -> None:
    served = "Served models: `sentence-transformers/all-MiniLM-L6-v2`."
    for path, body, param in (
        ("/v1/embeddings", {"input": "x", "model": "minilm"}, "model"),
        ("/v1/collections", {"name": "c", "dense_model": "minilm"}, "dense_model"),
    ):
        resp = client.post(path, json=body)
        assert resp.status_code == 404, resp.text
        err = resp.json()["error"]
        assert err["message"] == f"The model `minilm` does not exist. {served}" and err["param"] == param
