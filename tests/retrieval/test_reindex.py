"""The reindex and alias methods of both Python surfaces: `LocalRetrieval` in process and `RetrievalClient` over a
live server give the same answers for the same calls; an unfinished job resumes when the data directory is
opened again."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from encoder import Engine, ModelSpec
from retrieval import LocalRetrieval, ModelRegistry, RetrievalClient, ServiceConfig
from retrieval.cli import build_parser, run_command
from tests.api._server import live_server

DOCS = [{"id": f"d{i}", "text": f"page {i} of the handbook, word w{i}x"} for i in range(30)]


@pytest.fixture(scope="module")
def registry(tiny_store: Callable[[str], Path]) -> Iterator[ModelRegistry]:
    engines = [
        Engine.load(ModelSpec(source=str(tiny_store("bert_st_mean")), name="tiny")),
        Engine.load(ModelSpec(source=str(tiny_store("xlmr_cls")), name="tiny2")),
    ]
    yield ModelRegistry(engines)
    for engine in engines:
        engine.close()


def _flow(api: Any) -> dict[str, Any]:
    """The same calls on either surface; what they answered."""
    api.create_collection(name="hb1", dense_model="tiny")
    api.add_documents("hb1", DOCS)
    aliases = api.update_aliases([{"create_alias": {"alias_name": "hb", "collection_name": "hb1"}}])
    job = api.reindex("hb", "hb2", swap_alias="hb", dense_model="tiny2", chunking={"mode": "truncate"})
    after = api.aliases()
    coll = api.collection("hb")
    hits = api.search("hb", "w7x", mode="bm25", top_k=1)
    renamed = api.update_aliases([{"rename_alias": {"old_alias_name": "hb", "new_alias_name": "handbook"}}])
    return {
        "aliases": aliases,
        "job": {k: job[k] for k in ("state", "done", "total", "kind", "phase", "source", "target", "swap_alias")},
        "after": after,
        "collection": {k: coll[k] for k in ("name", "dense_model", "documents", "aliases", "available", "building")},
        "hits": [h["id"] for h in hits],
        "renamed": renamed,
    }


def test_local_and_http_surfaces_agree(registry: ModelRegistry, tmp_path: Path) -> None:
    with LocalRetrieval(tmp_path / "local", registry) as local:
        here = _flow(local)
    with live_server(registry, ServiceConfig(data_dir=str(tmp_path / "http"))) as live, RetrievalClient(live.url) as c:
        there = _flow(c)
    assert here == there
    assert here["job"] == {
        "state": "done",
        "done": 30,
        "total": 30,
        "kind": "reindex",
        "phase": "finished",
        "source": "hb1",
        "target": "hb2",
        "swap_alias": "hb",
    }
    assert here["after"] == [{"alias_name": "hb", "collection_name": "hb2"}]
    assert here["collection"]["available"] == {
        "dense": {"available": True, "model": "tiny2"},
        "bm25": {"available": True},
        "write": {"available": True},
    }
    assert here["hits"] == ["d7"]


def test_an_unfinished_job_resumes_when_the_data_directory_is_opened_again(
    registry: ModelRegistry, tmp_path: Path
) -> None:
    """A job recorded but never run (as after a crash right after it was accepted) is picked up at open."""
    with LocalRetrieval(tmp_path, registry) as local:
        local.create_collection(name="hb1", dense_model="tiny")
        local.add_documents("hb1", DOCS)
        local.service.store.reindex_jobs.insert("j1", "hb1", "hb2", {"target": "hb2", "swap_alias": "hb"}, 30)
    with LocalRetrieval(tmp_path, registry) as local:
        job = local.wait_job("j1")
        assert (job["state"], job["done"], job["target"]) == ("done", 30, "hb2"), job
        assert local.aliases() == [{"alias_name": "hb", "collection_name": "hb2"}]
        assert local.collection("hb")["documents"] == 30


def _cli(argv: list[str]) -> int:
    return run_command(build_parser().parse_args(argv))


def _job_ids(out: str) -> list[str]:
    """The job ids of `reindex <id>: ...` summary lines."""
    return [line.split()[1].rstrip(":") for line in out.splitlines() if line.startswith("reindex ")]


def test_cli_reindex_and_aliases(registry: ModelRegistry, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with live_server(registry, ServiceConfig(data_dir=str(tmp_path))) as live, RetrievalClient(live.url) as client:
        client.create_collection(name="hb1", dense_model="tiny")
        client.add_documents("hb1", DOCS)
        url = ["--url", live.url]
        assert _cli(["aliases", "set", "hb", "hb1", *url]) == 0
        assert capsys.readouterr().out == "hb -> hb1\n"
        argv = ["reindex", "hb", "--target", "hb2", "--dense-model", "tiny2", "--swap-alias", "hb", "--quiet", *url]
        assert _cli(argv) == 0
        out = capsys.readouterr().out
        assert "`hb2` built from `hb1`, 30 documents; alias `hb` names `hb2`" in out, out
        assert _cli(["aliases", "set", "hb", "hb1", *url]) == 0  # re-pointed back, in one request
        capsys.readouterr()
        (job_id,) = _job_ids(out)
        assert _cli(["reindex", "--job", job_id, "--quiet", *url]) == 0  # an old job: the alias has moved since
        assert "alias `hb` was moved to `hb2` by this job and now names `hb1`" in capsys.readouterr().out
        assert _cli(["aliases", "rename", "hb", "handbook", *url]) == 0
        assert capsys.readouterr().out.splitlines()[-1] == "handbook -> hb1"
        assert _cli(["reindex", "--job", job_id, "--quiet", *url]) == 0
        assert "and has been deleted since" in capsys.readouterr().out
        assert _cli(["reindex", "hb1", "--target", "hb2", "--quiet", *url]) == 1  # hb2 exists
        assert "already exists" in capsys.readouterr().err
        assert _cli(["aliases", "delete", "handbook", *url]) == 0
        assert client.aliases() == []
        assert _cli(["aliases", "delete", *url]) == 2
