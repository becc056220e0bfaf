"""A 3-shard page-image collection on the session's Ray cluster: a shard actor killed while PDFs are uploaded loses
no acknowledged page (Ray restarts it; it reopens its own store, snapshots and page files), and afterwards visual
searches answer exactly as one store over the same pages, page files served from the owning shard."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import ray

from retrieval import ModelRegistry
from retrieval.errors import ShardUnavailableError
from retrieval.ingest.uploads import UploadedFile
from retrieval.search.planner import SearchPlan
from retrieval.service import RetrievalService
from retrieval.spec.collection import CollectionSpec, PageSpec
from retrieval.transfer import scratch_dir, tar_stream
from tests.fixtures.pdfs import pdf_bytes
from tests.retrieval.distributed.test_shards import _actor, _serving
from tests.retrieval.sharding.equality import assert_same_ranking, page_models

WORDS = ["apples", "rivers", "mountains", "orchards", "harbours", "deserts", "glaciers", "forests"]
FILES = [UploadedFile(f"p{i}.pdf", pdf_bytes([f"{w} report {i}", f"page two of {i}"])) for i, w in enumerate(WORDS)]


@pytest.fixture(scope="module")
def registry(tiny_store: Callable[[str], Path]) -> Iterator[ModelRegistry]:
    registry = page_models(tiny_store)
    yield registry
    registry.close()


def _spec(name: str, shards: int) -> CollectionSpec:
    return CollectionSpec(
        name=name, dense_model="bert", multivector_model="colqwen", pages=PageSpec(dpi=36, window=2), shards=shards
    )


class _Uploader:
    """Uploads one PDF at a time from a thread, retrying refused ones; records the pages acknowledged."""

    def __init__(self, svc: RetrievalService, name: str) -> None:
        self.svc, self.name = svc, name
        self.acked: set[str] = set()
        self.refusals = 0
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        try:
            for f in FILES:
                for _ in range(100):
                    try:
                        done = loop.run_until_complete(self.svc.add_files(self.name, [f]))
                    except ShardUnavailableError:
                        self.refusals += 1
                        time.sleep(0.2)
                        continue
                    self.acked.update(done.ids + done.skipped)
                    break
        finally:
            loop.close()


def test_a_killed_page_shard_loses_no_acknowledged_page(
    ray_address: str, tmp_path: Path, registry: ModelRegistry
) -> None:
    with _serving(tmp_path, registry, timeout_s=5.0) as svc:
        svc.create_collection_sync(_spec("one", 1))
        asyncio.run(svc.add_files("one", FILES))
        svc.create_collection_sync(_spec("k", 3))
        uploader = _Uploader(svc, "k")
        uploader.thread.start()
        while len(uploader.acked) < 4 and uploader.thread.is_alive():
            time.sleep(0.05)
        ray.kill(_actor(svc, "k", 1), no_restart=False)  # its process dies; Ray starts it again from its folder
        uploader.thread.join(timeout=240)
        assert not uploader.thread.is_alive()
        deadline = time.monotonic() + 60
        while svc.collection("k").shards[1].state != "alive" and time.monotonic() < deadline:
            time.sleep(0.2)
        assert [s.state for s in svc.collection("k").shards] == ["alive"] * 3
        want = {f"{f.name}#page={n}" for f in FILES for n in (1, 2)}
        assert uploader.acked == want  # every upload was retried until acknowledged
        assert svc.collection("k").documents == len(want)
        for doc_id in sorted(want):
            assert svc.get_document("k", doc_id).id == doc_id
        for query in WORDS[:3]:
            plan = SearchPlan(query, top_k=10, mode="multivector", modes=("multivector",))
            expected = asyncio.run(svc.search("one", plan))
            got = asyncio.run(svc.search("k", plan))
            assert_same_ranking(got, expected, f"k {query}")
            for hit in got[:3]:
                assert hit.page_image is not None
                png = svc.page_file("k", hit.page_image.digest, "image")
                assert png == svc.page_file("one", hit.page_image.digest, "image")
        _export_and_import(svc, tmp_path, registry)


def _export_and_import(svc: RetrievalService, tmp_path: Path, registry: ModelRegistry) -> None:
    """The shard actors' parts, fetched through Ray calls, make one archive that a one-process service imports and
    answers from exactly as the sharded collection does."""
    scratch = scratch_dir(svc.data_dir)
    archive = tmp_path / "k.tar"
    with open(archive, "wb") as out:
        for block in tar_stream(asyncio.run(svc.export_collection("k", scratch))):
            out.write(block)
    alone = RetrievalService.open(tmp_path / "alone", registry, default_collection=None)
    try:
        alone.import_collection("k", archive, scratch_dir(alone.data_dir) / "archive")
        for query in WORDS:
            plan = SearchPlan(query, top_k=10, mode="hybrid", modes=("dense", "multivector", "bm25"))
            assert_same_ranking(asyncio.run(alone.search("k", plan)), asyncio.run(svc.search("k", plan)), query)
    finally:
        alone.close()
