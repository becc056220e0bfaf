"""Page-image collections over in-process shards (a tiny ColQwen3 reads the pages, a tiny BERT their text): visual
searches over 3 shards equal one store's, page files live on the shard owning the page; a sharded collection's
export imports into a one-process service and answers the same, and the reverse; reindex works from and into
shards with an alias swap."""

from __future__ import annotations

import asyncio
import base64
import tarfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from encoder.inputs import ImagePart, MultimodalInput
from retrieval import ModelRegistry
from retrieval.ingest.uploads import UploadedFile
from retrieval.reindex import Reindexer, ReindexRequest
from retrieval.search.hits import Hit
from retrieval.search.planner import SearchPlan, modes_of
from retrieval.service import RetrievalService
from retrieval.sharding.routing import shard_of
from retrieval.spec.collection import CollectionSpec, PageSpec
from retrieval.transfer import scratch_dir, tar_stream
from tests.fixtures.pdfs import pdf_bytes
from tests.retrieval.sharding.equality import assert_same_candidates, assert_same_ranking, page_models
from tests.retrieval.sharding.local_group import LocalBackend

WORDS = ["apples", "rivers", "mountains", "orchards", "harbours", "deserts", "glaciers", "forests", "islands"]
PDFS = {
    f"r{i}.pdf": [f"{WORDS[(i + j) % 9]} page {j} of report {i}" if j != 2 else "" for j in range(4)] for i in range(4)
}  # four reports of four pages; the third page of each is blank (the same image: one page file)
RECTS = {0: (50.0, 50.0, 500.0, 300.0), 1: (300.0, 400.0, 200.0, 300.0), 3: (10.0, 10.0, 100.0, 700.0)}


@pytest.fixture(scope="module")
def registry(tiny_store: Callable[[str], Path]) -> Iterator[ModelRegistry]:
    registry = page_models(tiny_store)
    yield registry
    registry.close()


def _spec(name: str, shards: int) -> CollectionSpec:
    return CollectionSpec(
        name=name, dense_model="bert", multivector_model="colqwen", pages=PageSpec(dpi=72), shards=shards
    )


def _files() -> list[UploadedFile]:
    return [UploadedFile(name, pdf_bytes(texts, rects=RECTS)) for name, texts in PDFS.items()]


@pytest.fixture(scope="module")
def pages(
    tmp_path_factory: pytest.TempPathFactory, registry: ModelRegistry
) -> Iterator[tuple[RetrievalService, LocalBackend]]:
    """`one` (this process) and `three` (3 in-process shards), the same 16 pages in each."""
    root = tmp_path_factory.mktemp("sharded-pages")
    backend = LocalBackend(root / "shards")
    svc = RetrievalService.open(root / "data", registry, default_collection=None, shards=backend)
    for name, shards in (("one", 1), ("three", 3)):
        svc.create_collection_sync(_spec(name, shards))
        done = asyncio.run(svc.add_files(name, _files()))
        assert len(done.ids) == 16, done
    yield svc, backend
    svc.close()


def _image_query(svc: RetrievalService, hit: Hit) -> MultimodalInput:
    assert hit.page_image is not None
    png = svc.page_file("one", hit.page_image.digest, "image")
    return MultimodalInput((ImagePart(url="data:image/png;base64," + base64.b64encode(png).decode()),))


def _visual_plans(svc: RetrievalService) -> list[tuple[str, SearchPlan]]:
    spec = svc.spec("one")
    text = [(f"text {q}", SearchPlan(q, top_k=10, mode="multivector", modes=("multivector",))) for q in WORDS[:4]]
    hybrid = SearchPlan("rivers page", top_k=10, mode="hybrid", modes=modes_of(spec, "hybrid"))
    first = asyncio.run(svc.search("one", text[0][1]))[0]
    image = SearchPlan(_image_query(svc, first), top_k=10, mode="multivector", modes=("multivector",))
    return [*text, ("hybrid", hybrid), ("image", image)]


def _assert_same_answers(
    svc: RetrievalService, other: RetrievalService, name: str, plans: list[tuple[str, SearchPlan]], exact: bool = True
) -> None:
    """`name` answers every plan as `one` does. `exact=False` (a reindex numbers chunks in its scan order, shard by
    shard): the same scores position by position, ids swapped only between exactly tied pages (the blank ones)."""
    for label, plan in plans:
        want = asyncio.run(svc.search("one", plan))
        assert len(want) == 10, label
        got = asyncio.run(other.search(name, plan))
        if exact:
            assert_same_ranking(got, want, f"{name} {label}")
            assert [h.page_image for h in got] == [h.page_image for h in want], label
        elif plan.mode == "multivector":
            assert_same_candidates(got, want, f"{name} {label}")


def test_visual_searches_over_three_shards_equal_one_store(pages: tuple[RetrievalService, LocalBackend]) -> None:
    svc, backend = pages
    _assert_same_answers(svc, svc, "three", _visual_plans(svc))
    group = backend.groups["three"]
    counts = [core.info().documents for core in group.cores]
    assert sum(counts) == 16 and min(counts) > 0, counts
    hits = asyncio.run(svc.search("three", SearchPlan("page", top_k=16, mode="multivector", modes=("multivector",))))
    for hit in hits:  # the page's files are on the shard that owns it, and served from there
        assert hit.page_image is not None
        owner = group.cores[shard_of(hit.doc_id, 3)]
        assert owner.page_files.path(hit.page_image.digest, "image").is_file()
        for kind in ("image", "thumbnail"):
            digest = hit.page_image.digest
            assert svc.page_file("three", digest, kind) == svc.page_file("one", digest, kind)


def test_deleting_a_page_removes_its_files_from_its_shard(tmp_path: Path, registry: ModelRegistry) -> None:
    backend = LocalBackend(tmp_path / "shards")
    svc = RetrievalService.open(tmp_path / "data", registry, default_collection=None, shards=backend)
    try:
        svc.create_collection_sync(_spec("d", 3))
        asyncio.run(svc.add_files("d", _files()[:1]))
        doc = "r0.pdf#page=1"
        image = svc.get_document("d", doc)
        digest = svc.catalog.handle("d").reader().page_images("d", [doc])[doc].digest
        core = backend.groups["d"].cores[shard_of(doc, 3)]
        assert core.page_files.path(digest, "image").is_file() and image.id == doc
        assert asyncio.run(svc.delete_documents("d", [doc])) == 1
        assert not core.page_files.path(digest, "image").exists()
        with pytest.raises(Exception, match="has no page image"):
            svc.page_file("d", digest, "image")
    finally:
        svc.close()


def _export(svc: RetrievalService, name: str, dest: Path) -> Path:
    scratch = scratch_dir(svc.data_dir)
    members = asyncio.run(svc.export_collection(name, scratch))
    with open(dest, "wb") as out:
        for block in tar_stream(members):
            out.write(block)
    return dest


def _import(svc: RetrievalService, name: str, archive: Path, shards: int | None = None) -> None:
    scratch = scratch_dir(svc.data_dir)
    svc.import_collection(name, archive, scratch / "archive", shards)


def test_a_sharded_export_imported_into_one_process_answers_the_same(
    pages: tuple[RetrievalService, LocalBackend], tmp_path: Path, registry: ModelRegistry
) -> None:
    svc, _ = pages
    archive = _export(svc, "three", tmp_path / "three.tar")
    with tarfile.open(archive) as tar:  # ONE archive of the ordinary layout, every page once
        names = tar.getnames()
    ids = [f"{f}#page={n}" for f in PDFS for n in range(1, 5)]
    digests = {image.digest for image in svc.store.page_images("one", ids).values()}
    assert names[0] == "manifest.json" and sum(n.endswith(".png") for n in names) == len(digests) == 13
    alone = RetrievalService.open(tmp_path / "alone", registry, default_collection=None)  # no shards at all
    try:
        _import(alone, "imported", archive)
        info = alone.collection("imported")
        assert (info.spec.shards, info.documents) == (1, 16)
        _assert_same_answers(svc, alone, "imported", _visual_plans(svc))
        hit = asyncio.run(alone.search("imported", SearchPlan("apples", mode="multivector", modes=("multivector",))))[0]
        assert hit.page_image is not None
        assert alone.page_file("imported", hit.page_image.digest, "image") == svc.page_file(
            "three", hit.page_image.digest, "image"
        )
    finally:
        alone.close()


def test_a_one_process_export_imported_into_shards_answers_the_same(
    pages: tuple[RetrievalService, LocalBackend], tmp_path: Path
) -> None:
    svc, backend = pages
    archive = _export(svc, "one", tmp_path / "one.tar")
    _import(svc, "spread", archive, shards=3)
    try:
        info = svc.collection("spread")
        assert info.spec.shards == 3 and info.documents == 16
        group = backend.groups["spread"]
        for core in group.cores:  # every document on the shard its id hashes to
            for doc_id in core.document_ids():
                assert shard_of(doc_id, 3) == core.shard
        _assert_same_answers(svc, svc, "spread", _visual_plans(svc))
        again = _export(svc, "spread", tmp_path / "spread.tar")  # sharded -> sharded: the archive's shard count
        _import(svc, "spread-again", again)
        assert svc.collection("spread-again").spec.shards == 3
        _assert_same_answers(svc, svc, "spread-again", _visual_plans(svc)[:2])
    finally:
        for name in ("spread", "spread-again"):
            if svc.has_collection(name):
                asyncio.run(svc.delete_collection(name))


def test_a_bad_archive_leaves_no_sharded_collection(
    pages: tuple[RetrievalService, LocalBackend], tmp_path: Path
) -> None:
    """All or nothing into shards too: a document naming a page image the archive lacks fails the import after
    some batches were written, and the collection is gone from every shard."""
    svc, backend = pages
    archive = _export(svc, "one", tmp_path / "one.tar")
    damaged = tmp_path / "damaged.tar"
    with tarfile.open(archive) as src, tarfile.open(damaged, "w", format=tarfile.PAX_FORMAT) as out:
        manifest_member = src.getmember("manifest.json")
        import json

        manifest = json.loads(src.extractfile(manifest_member).read())  # type: ignore[union-attr]
        dropped = sorted(n for n in manifest["files"] if n.endswith(".png"))[-1]
        for name in (dropped, dropped.replace(".png", ".thumb.jpg")):
            del manifest["files"][name]
        manifest["pages"] -= 1
        body = json.dumps(manifest).encode()
        info = tarfile.TarInfo("manifest.json")
        info.size = len(body)
        import io

        out.addfile(info, io.BytesIO(body))
        for member in src.getmembers()[1:]:
            if member.name not in (dropped, dropped.replace(".png", ".thumb.jpg")):
                out.addfile(member, src.extractfile(member))
    with pytest.raises(Exception, match="does not hold"):
        _import(svc, "broken", damaged, shards=3)
    assert not svc.has_collection("broken")
    assert not (backend.root / "broken").exists() or not any((backend.root / "broken").iterdir())


async def _reindex(svc: RetrievalService, source: str, req: ReindexRequest) -> str:
    reindexer = Reindexer(svc)
    row = await reindexer.start(source, req)
    done = await reindexer.wait(row.id)
    assert done.state == "done", done
    return done.id


def test_reindex_from_and_into_shards_with_an_alias_swap(pages: tuple[RetrievalService, LocalBackend]) -> None:
    svc, _ = pages
    plans = _visual_plans(svc)
    try:
        asyncio.run(_reindex(svc, "three", ReindexRequest(target="three-b", swap_alias="docs")))
        assert svc.spec("three-b").shards == 3  # the source's shard count by default
        assert svc.resolve("docs") == "three-b" and svc.collection("three-b").documents == 16
        _assert_same_answers(svc, svc, "docs", plans, exact=False)
        asyncio.run(_reindex(svc, "three", ReindexRequest(target="three-one", shards=1)))  # out of the shards
        _assert_same_answers(svc, svc, "three-one", plans, exact=False)
        asyncio.run(_reindex(svc, "one", ReindexRequest(target="one-three", shards=3, swap_alias="docs")))  # into them
        assert svc.resolve("docs") == "one-three"
        _assert_same_answers(svc, svc, "docs", plans, exact=False)
        hit = asyncio.run(svc.search("one-three", plans[0][1]))[0]
        assert hit.page_image is not None and svc.page_file("one-three", hit.page_image.digest, "thumbnail")
    finally:
        for name in ("three-b", "three-one", "one-three"):
            if svc.has_collection(name):
                asyncio.run(svc.delete_collection(name))


def test_a_reindex_catches_up_with_writes_and_deletes_on_every_shard(tmp_path: Path, registry: ModelRegistry) -> None:
    """Text documents written to and deleted from a sharded source while its reindex runs are in the target when
    the alias swaps (the scan keeps one cursor per shard)."""
    from tests.retrieval.sharding.equality import corpus

    backend = LocalBackend(tmp_path / "shards")
    svc = RetrievalService.open(tmp_path / "data", registry, default_collection=None, shards=backend)
    try:
        svc.create_collection_sync(CollectionSpec(name="t", dense_model="bert", shards=3))
        docs = corpus(60)
        asyncio.run(svc.add_documents("t", docs[:40]))

        async def run() -> None:
            reindexer = Reindexer(svc)
            row = await reindexer.start("t", ReindexRequest(target="t2", swap_alias="live", batch_size=4))
            await asyncio.sleep(0)
            await svc.add_documents("t", docs[40:])
            await svc.delete_documents("t", [d.id for d in docs[:5]])
            done = await reindexer.wait(row.id)
            assert done.state == "done", done
            await svc.add_documents("live", [docs[5]])  # through the alias: the new collection

        asyncio.run(run())
        assert svc.resolve("live") == "t2"
        ids = sorted(svc.reader("t2").document_ids())
        assert ids == sorted(d.id for d in docs[5:])
    finally:
        svc.close()
