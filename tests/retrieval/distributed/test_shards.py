"""Sharded collections on a real Ray cluster (the session's `ray.cluster_utils.Cluster`: three one-CPU nodes
labelled retrieval-host=a|b|c): 2 and 3 shards answer every mode exactly as one store over the same 2,000
documents; a shard actor killed during a stream of writes (with and without Ray restarting it) loses no
acknowledged write, and meanwhile searches are refused naming it or answered as partial; a node removed takes
its shard away until a node of the same host returns with its data."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import ray

from retrieval import ModelRegistry
from retrieval.distributed.shards import RayShardBackend
from retrieval.errors import ShardUnavailableError
from retrieval.ingest.documents import SourceDocument
from retrieval.search.planner import SearchPlan, modes_of
from retrieval.service import RetrievalService
from retrieval.sharding.routing import shard_of
from retrieval.spec.collection import CollectionSpec
from tests.retrieval.sharding.equality import (
    compare,
    corpus,
    every_representation,
    plans,
    queries,
    search,
)

N_DOCS = 2000


@pytest.fixture(scope="module")
def registry(four_model_registry: ModelRegistry) -> ModelRegistry:
    return four_model_registry


def _service(folder: Path, registry: ModelRegistry, timeout_s: float = 10.0) -> RetrievalService:
    backend = RayShardBackend(folder)  # actor names carry a tag of the data directory: no two tests share one
    return RetrievalService.open(folder, registry, default_collection=None, shards=backend, shard_timeout_s=timeout_s)


@contextlib.contextmanager
def _serving(folder: Path, registry: ModelRegistry, timeout_s: float = 10.0) -> Iterator[RetrievalService]:
    """A service over `folder` whose sharded collections (and their detached actors) are deleted at the end."""
    svc = _service(folder, registry, timeout_s)
    try:
        yield svc
    finally:
        for name in svc.sharded_names():
            asyncio.run(svc.delete_collection(name))
        svc.close()


@pytest.fixture(scope="module")
def filled(
    ray_address: str, tmp_path_factory: pytest.TempPathFactory, registry: ModelRegistry
) -> Iterator[RetrievalService]:
    svc = _service(tmp_path_factory.mktemp("ray-sharded"), registry)
    docs = corpus(N_DOCS)
    for name, shards in (("one", 1), ("two", 2), ("three", 3)):
        svc.create_collection_sync(every_representation(name, shards))
        for i in range(0, len(docs), 500):
            asyncio.run(svc.add_documents(name, docs[i : i + 500]))
    yield svc
    for name in ("two", "three"):
        asyncio.run(svc.delete_collection(name))
    svc.close()


def test_two_and_three_shards_answer_as_one_store(filled: RetrievalService) -> None:
    spec = filled.spec("one")
    hosts = {s.host for s in filled.collection("three").shards}
    assert hosts == {"a", "b", "c"}  # spread over the labelled nodes
    assert [filled.collection(n).documents for n in ("one", "two", "three")] == [N_DOCS] * 3
    differ = []
    for query in queries(corpus(N_DOCS), 2):
        for label, plan in plans(spec, query, "ce"):
            for name in ("two", "three"):
                if not compare(lambda n, p: search(filled, n, p), name, plan, f"{name} {label}"):
                    differ.append(f"{name} {label}")
    # every other answer differs only where a candidate list holds a float near-tie (`compare` checks that); here
    # one filtered query's token-vector list ties at its 40th candidate (float16 token scores), nothing else
    assert all("hybrid" in d and "filter=True" in d for d in differ), differ


def _actor(svc: RetrievalService, name: str, shard: int) -> Any:
    return svc.catalog.handle(name).group.actors[shard]  # type: ignore[attr-defined]


class _Writer:
    """Writes documents in small batches from a thread, retrying refused ones, recording what was acknowledged."""

    def __init__(self, svc: RetrievalService, name: str, docs: list[SourceDocument]) -> None:
        self.svc, self.name, self.docs = svc, name, docs
        self.acked: set[str] = set()
        self.refusals = 0
        self.stop = threading.Event()  # set by the test when it ends early
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        try:
            for i in range(0, len(self.docs), 4):
                batch = self.docs[i : i + 4]
                for _ in range(200):
                    if self.stop.is_set():
                        return
                    try:
                        done = loop.run_until_complete(self.svc.add_documents(self.name, batch))
                    except ShardUnavailableError as e:
                        self.refusals += 1
                        self.acked.update(e.written)
                        time.sleep(0.1)
                        continue
                    self.acked.update(done.ids + done.skipped)
                    break
        finally:
            loop.close()


def _searches_until(svc: RetrievalService, name: str, query: str, done: Callable[[], bool]) -> tuple[int, int, int]:
    """Search until `done()`: (complete answers, 503s, partial answers); a complete answer must cover every shard."""
    spec = svc.spec(name)
    plan = SearchPlan(query, mode="hybrid", modes=modes_of(spec, "hybrid"))
    partial_plan = SearchPlan(query, mode="hybrid", modes=modes_of(spec, "hybrid"), allow_partial=True)
    complete = refused = partial = 0
    while not done():
        try:
            asyncio.run(svc.search(name, plan))
            complete += 1
        except ShardUnavailableError as e:
            assert e.shards and e.total == spec.shards
            refused += 1
        _, answered = asyncio.run(svc.search_shards(name, partial_plan))
        assert answered is not None
        partial += len(answered) < spec.shards
        time.sleep(0.05)
    return complete, refused, partial


@pytest.mark.parametrize("restart", [True, False], ids=["ray-restarts-it", "killed-for-good"])
def test_a_killed_shard_loses_no_acknowledged_write(
    restart: bool, ray_address: str, tmp_path: Path, registry: ModelRegistry
) -> None:
    with _serving(tmp_path, registry, timeout_s=5.0) as svc:
        svc.create_collection_sync(CollectionSpec(name="k", dense_model="dense", shards=3))
        docs = corpus(240, seed=3)
        writer = _Writer(svc, "k", docs)
        writer.thread.start()
        try:
            while len(writer.acked) < 40:
                time.sleep(0.05)
            ray.kill(_actor(svc, "k", 1), no_restart=not restart)
            counts = _searches_until(svc, "k", docs[0].text, lambda: not writer.thread.is_alive())
        finally:
            if writer.thread.is_alive() and sys.exc_info()[0] is not None:
                writer.stop.set()
            writer.thread.join()
        # the outage was seen and said (by a refused write, or a search that was refused or partial); every
        # complete answer came from all three shards (`search` raises otherwise)
        assert writer.refusals + counts[1] + counts[2] > 0, (writer.refusals, counts)
        deadline = time.monotonic() + 60
        while svc.collection("k").shards[1].state != "alive" and time.monotonic() < deadline:
            time.sleep(0.2)
        info = svc.collection("k")
        assert [s.state for s in info.shards] == ["alive"] * 3
        assert writer.acked == {d.id for d in docs}  # every batch was retried until acknowledged
        assert info.documents == len(docs)
        for d in docs:
            assert svc.get_document("k", d.id).text == d.text
        hits = asyncio.run(svc.search("k", SearchPlan(docs[5].text, mode="dense", modes=("dense",), top_k=1)))
        assert hits[0].doc_id == docs[5].id


def test_a_removed_node_takes_its_shard_away_until_it_returns(
    ray_cluster: Any, tmp_path: Path, registry: ModelRegistry
) -> None:
    with _serving(tmp_path, registry, timeout_s=3.0) as svc:
        svc.create_collection_sync(CollectionSpec(name="n", dense_model="dense", shards=3))
        docs = corpus(120, seed=4)
        asyncio.run(svc.add_documents("n", docs))
        places = {s.host: s.shard for s in svc.collection("n").shards}
        host = "b"
        shard = places[host]
        ray_cluster.remove_node(ray_cluster.shard_nodes[host])
        plan = SearchPlan(docs[0].text, mode="hybrid", modes=modes_of(svc.spec("n"), "hybrid"))
        with pytest.raises(ShardUnavailableError, match=f"shard {shard} of 3"):
            asyncio.run(svc.search("n", plan))
        assert svc.collection("n").shards[shard].state == "unavailable"
        on_it = [d for d in docs if shard_of(d.id, 3) == shard]
        with pytest.raises(ShardUnavailableError):
            asyncio.run(svc.add_documents("n", [SourceDocument(id=on_it[0].id, text="changed")]))
        ray_cluster.shard_nodes[host] = ray_cluster.add_node(
            num_cpus=1, labels={"retrieval-host": host}, **ray_cluster.node_args
        )
        deadline = time.monotonic() + 90
        while svc.collection("n").shards[shard].state != "alive":
            assert time.monotonic() < deadline, "the shard did not come back with its node"
            time.sleep(0.5)
        assert svc.collection("n").documents == len(docs)
        assert svc.get_document("n", on_it[0].id).text == on_it[0].text  # the refused write left nothing
        assert len(asyncio.run(svc.search("n", plan))) == 10


def test_a_backup_of_every_shard_serves_the_same_collection(
    ray_address: str, tmp_path: Path, registry: ModelRegistry
) -> None:
    """`backup` copies each shard on its node next to the coordinator's copy; a service over the copy finds its
    own shards there with every document, and new writes get ids above every restored one."""
    from retrieval.cli.commands.backup import run_backup

    with _serving(tmp_path / "live", registry) as svc:
        svc.create_collection_sync(CollectionSpec(name="b", dense_model="dense", shards=2))
        docs = corpus(60, seed=6)
        asyncio.run(svc.add_documents("b", docs))
        svc.backup(tmp_path / "copy")
        args = type("Args", (), {"data_dir": str(tmp_path / "live"), "destination": str(tmp_path / "copy2")})
        args.json, args.ray = False, ray_address
        assert run_backup(args) == 0  # `retrieval backup --ray` from a process beside the server
        for copy in ("copy", "copy2"):
            shards = sorted(p.name for p in (tmp_path / copy / "shards" / "b").iterdir())
            assert shards == ["0", "1", "placement.json"], shards
            with _serving(tmp_path / copy, registry) as restored:
                assert restored.collection("b").documents == len(docs)
                extra = SourceDocument(id="late", text="written after the restore")
                asyncio.run(restored.add_documents("b", [extra]))
                plan = SearchPlan(docs[3].text, mode="dense", modes=("dense",), top_k=1)
                assert asyncio.run(restored.search("b", plan))[0].doc_id == docs[3].id
                assert restored.get_document("b", "late").text == extra.text


def test_deleting_a_sharded_collection_stops_its_actors_and_removes_its_folders(
    ray_address: str, tmp_path: Path, registry: ModelRegistry
) -> None:
    svc = _service(tmp_path / "data", registry)
    try:
        svc.create_collection_sync(CollectionSpec(name="gone", dense_model="dense", shards=2))
        asyncio.run(svc.add_documents("gone", corpus(20)))
        backend = svc.shard_backend
        assert isinstance(backend, RayShardBackend)
        names = [f"gone/{s}@{backend.tag}" for s in range(2)]
        assert all(ray.get_actor(n, namespace=backend.namespace) for n in names)
        folders = [backend.shard_folder("gone", 0).parent, tmp_path / "data" / "shards" / "gone"]
        assert all(f.is_dir() for f in folders)
        group = svc.catalog.handle("gone").group
        asyncio.run(svc.delete_collection("gone"))
        for n in names:
            with pytest.raises(ValueError):  # no live actor of that name
                ray.get_actor(n, namespace=backend.namespace)
        assert not any(f.exists() for f in folders), [list(f.iterdir()) for f in folders if f.exists()]
        answer = group.call({0: ("info", ())}, 5.0)  # a call racing the delete (a snapshot, /metrics) ...
        assert answer[0].reason == "the collection was deleted"
        with pytest.raises(ValueError):  # ... starts nothing again
            ray.get_actor(names[0], namespace=backend.namespace)
        assert svc.collections() == [] and not folders[0].exists()
    finally:
        svc.close()
