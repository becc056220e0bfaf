"""`/v1/aliases` end to end: Qdrant's actions applied atomically and durably, and every collection route taking
an alias where it takes a name."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from retrieval import ModelRegistry, ServiceConfig
from tests.api._retrieval import assert_error, ingest, ranked_ids
from tests.api._server import live_server

MINILM = "sentence-transformers/all-MiniLM-L6-v2"


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("aliases")


@pytest.fixture(scope="module")
def client(minilm_registry: ModelRegistry, data_dir: Path) -> Iterator[httpx.Client]:
    with live_server(minilm_registry, ServiceConfig(data_dir=str(data_dir))) as live, live.client() as c:
        for name in ("v1", "v2"):
            assert c.post("/v1/collections", json={"name": name, "dense_model": MINILM}).status_code == 201
        ingest(c, "v1", [{"id": "a", "text": "the first version of the manual"}])
        ingest(c, "v2", [{"id": "b", "text": "the second version of the manual"}])
        yield c


def _aliases(client: httpx.Client) -> dict[str, str]:
    listed = client.get("/v1/aliases")
    assert listed.status_code == 200, listed.text
    return {a["alias_name"]: a["collection_name"] for a in listed.json()["data"]}


def _act(client: httpx.Client, *actions: dict[str, object]) -> httpx.Response:
    return client.post("/v1/aliases", json={"actions": list(actions)})


def test_create_resolve_and_switch_in_one_request(client: httpx.Client) -> None:
    created = _act(client, {"create_alias": {"alias_name": "manual", "collection_name": "v1"}})
    assert created.status_code == 200, created.text
    assert _aliases(client)["manual"] == "v1"
    query = {"query": "manual version", "mode": "dense", "top_k": 5}
    assert ranked_ids(client, "manual", **query) == ["a"]
    assert client.get("/v1/collections/manual").json()["name"] == "v1"
    assert client.get("/v1/collections/v1").json()["aliases"] == ["manual"]
    assert client.get("/v1/collections/manual/documents/a").json()["id"] == "a"
    # Qdrant's switch: delete then create, atomically
    switched = _act(
        client,
        {"delete_alias": {"alias_name": "manual"}},
        {"create_alias": {"alias_name": "manual", "collection_name": "v2"}},
    )
    assert switched.status_code == 200, switched.text
    assert ranked_ids(client, "manual", **query) == ["b"]
    # writes and deletes through the alias land in its collection
    ingest(client, "manual", [{"id": "c", "text": "an appendix to the manual"}])
    assert client.get("/v1/collections/v2").json()["documents"] == 2
    assert client.delete("/v1/collections/manual/documents/c").status_code == 200
    assert client.get("/v1/collections/v2").json()["documents"] == 1


def test_rename_and_delete(client: httpx.Client) -> None:
    assert _act(client, {"create_alias": {"alias_name": "old-name", "collection_name": "v1"}}).status_code == 200
    renamed = _act(client, {"rename_alias": {"old_alias_name": "old-name", "new_alias_name": "new-name"}})
    assert renamed.status_code == 200, renamed.text
    aliases = _aliases(client)
    assert aliases["new-name"] == "v1" and "old-name" not in aliases
    assert _act(client, {"delete_alias": {"alias_name": "new-name"}}).status_code == 200
    assert "new-name" not in _aliases(client)
    assert_error(client.get("/v1/collections/new-name"), 404, "new-name")


def test_a_failing_action_rolls_back_the_whole_list(client: httpx.Client) -> None:
    before = _aliases(client)
    resp = _act(
        client,
        {"create_alias": {"alias_name": "fresh", "collection_name": "v1"}},
        {"delete_alias": {"alias_name": "no-such-alias"}},
    )
    err = assert_error(resp, 404, "no-such-alias")
    assert err["param"] == "actions[1].delete_alias.alias_name"
    assert _aliases(client) == before  # `fresh` was not created


@pytest.mark.parametrize(
    ("action", "status", "text"),
    [
        ({"create_alias": {"alias_name": "v2", "collection_name": "v1"}}, 409, "collection"),  # a collection's name
        ({"create_alias": {"alias_name": "x", "collection_name": "nope"}}, 404, "nope"),
        ({"create_alias": {"alias_name": "bad name!", "collection_name": "v1"}}, 400, "alias"),
        ({"rename_alias": {"old_alias_name": "nope", "new_alias_name": "x"}}, 404, "nope"),
        ({"create_alias": {"alias_name": "x", "collection_name": "v1"}, "delete_alias": {"alias_name": "x"}}, 400, ""),
    ],
)
def test_invalid_actions(client: httpx.Client, action: dict[str, object], status: int, text: str) -> None:
    assert_error(_act(client, action), status, text)


def test_names_are_one_namespace(client: httpx.Client) -> None:
    assert _act(client, {"create_alias": {"alias_name": "taken", "collection_name": "v1"}}).status_code == 200
    assert_error(client.post("/v1/collections", json={"name": "taken", "dense_model": MINILM}), 409, "alias")
    dup = _act(client, {"create_alias": {"alias_name": "taken", "collection_name": "v2"}})
    assert_error(dup, 409, "alias of `v1`")


def test_aliases_go_with_their_collection(client: httpx.Client) -> None:
    assert client.post("/v1/collections", json={"name": "scratch", "dense_model": MINILM}).status_code == 201
    assert _act(client, {"create_alias": {"alias_name": "tmp", "collection_name": "scratch"}}).status_code == 200
    assert client.delete("/v1/collections/tmp").status_code == 200  # deletes `scratch`, through its alias
    assert "tmp" not in _aliases(client)
    assert_error(client.get("/v1/collections/scratch"), 404, "scratch")


def test_aliases_survive_a_restart(minilm_registry: ModelRegistry, tmp_path: Path) -> None:
    config = ServiceConfig(data_dir=str(tmp_path / "data"))
    with live_server(minilm_registry, config) as live, live.client() as c:
        assert _act(c, {"create_alias": {"alias_name": "docs", "collection_name": "default"}}).status_code == 200
    with live_server(minilm_registry, config) as live, live.client() as c:
        assert _aliases(c) == {"docs": "default"}
        assert c.get("/v1/collections/docs").json()["name"] == "default"


def test_an_alias_named_default_keeps_default_from_being_created(
    minilm_registry: ModelRegistry, tmp_path: Path
) -> None:
    config = ServiceConfig(data_dir=str(tmp_path / "data"))
    with live_server(minilm_registry, config) as live, live.client() as c:
        assert c.post("/v1/collections", json={"name": "main", "dense_model": MINILM}).status_code == 201
        assert c.delete("/v1/collections/default").status_code == 200
        assert _act(c, {"create_alias": {"alias_name": "default", "collection_name": "main"}}).status_code == 200
    with live_server(minilm_registry, config) as live, live.client() as c:
        assert [coll["name"] for coll in c.get("/v1/collections").json()["data"]] == ["main"]
        assert c.get("/v1/collections/default").json()["name"] == "main"
