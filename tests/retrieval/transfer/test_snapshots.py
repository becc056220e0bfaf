"""An imported collection comes up from the archive's index snapshots (retrieval/transfer/snapshots.py): a trained
IVF keeps its centroids exactly, every mode scores as the source did, a restart loads the installed snapshots;
a family whose snapshot is missing, damaged, from other index settings or keyed by other chunks is rebuilt from
the imported rows (and the result says so), as every family of a format version 1 archive is."""

from __future__ import annotations

import asyncio
import json
import shutil
import tarfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import faiss
import msgspec
import numpy as np
import pytest

from encoder import Engine, ModelSpec
from index import DenseConfig, DenseIndex, MultiVectorConfig
from retrieval import ModelRegistry
from retrieval.errors import InvalidRequestError
from retrieval.ingest.documents import SourceDocument
from retrieval.search.planner import SearchPlan, modes_of
from retrieval.service import RetrievalService
from retrieval.spec.collection import CollectionSpec, IndexSpec
from retrieval.transfer import scratch_dir, tar_stream
from retrieval.transfer.archive import MANIFEST, checksum

WORDS = ["river", "road", "bridge", "tower", "field", "lake", "stone", "forest", "hill", "valley", "harbour", "market"]
QUERIES = ["river bridge", "stone tower on the hill", "market harbour", "forest lake valley", "road"]
IVF = DenseConfig(kind="ivf_flat", metric="cosine", nlist=3, nprobe=1)  # one list probed: hits follow centroids


@pytest.fixture(scope="module")
def registry(tiny_store: Callable[[str], Path]) -> Iterator[ModelRegistry]:
    reg = ModelRegistry([Engine.load(ModelSpec(source=str(tiny_store("bert_st_mean")), name="tiny"))])
    yield reg
    reg.close()


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def _docs(start: int, n: int) -> list[SourceDocument]:
    rng = np.random.default_rng(start)
    return [
        SourceDocument(id=f"d{i}", text=" ".join(rng.choice(WORDS, 9)), metadata={"i": i})
        for i in range(start, start + n)
    ]


def _results(svc: RetrievalService, name: str) -> dict[str, list[tuple[str, float]]]:
    out = {}
    for mode in ("dense", "bm25", "hybrid"):
        for q in QUERIES:
            plan = SearchPlan(q, mode=mode, modes=modes_of(svc.spec(name), mode), top_k=8)  # type: ignore[arg-type]
            out[f"{mode}:{q}"] = [(h.id, h.score) for h in run(svc.search(name, plan))]
    return out


def _centroids(svc: RetrievalService, name: str) -> np.ndarray:
    dense = svc.catalog.handle(name).indexes.indexes["dense"]
    assert isinstance(dense, DenseIndex) and dense.kind == "ivf_flat"
    ivf = faiss.extract_index_ivf(dense.faiss_index)
    return ivf.quantizer.reconstruct_n(0, ivf.nlist)


def _export(svc: RetrievalService, name: str, out: Path) -> Path:
    scratch = scratch_dir(svc.data_dir)
    try:
        members = run(svc.export_collection(name, scratch))
        with open(out, "wb") as f:
            for block in tar_stream(members):
                f.write(block)
    finally:
        shutil.rmtree(scratch)
    return out


def _import(svc: RetrievalService, archive: Path, name: str) -> dict[str, str]:
    scratch = scratch_dir(svc.data_dir)
    try:
        info, origins = svc.import_collection(name, archive, scratch / "archive")
    finally:
        shutil.rmtree(scratch)
    assert info.spec.name == name
    return dict(origins)


@pytest.fixture(scope="module")
def source(registry: ModelRegistry, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, Any]]]:
    """An IVF collection written in several steps (trained on the first, upserts and deletes after), exported;
    (the archive, the source's results and centroids)."""
    root = tmp_path_factory.mktemp("source")
    svc = RetrievalService.open(root / "data", registry, default_collection=None)
    try:
        svc.create_collection_sync(CollectionSpec(name="src", dense_model="tiny", index=IndexSpec(dense=IVF)))
        run(svc.add_documents("src", _docs(0, 120)))  # the IVF trains on these (39 points a list)
        run(svc.add_documents("src", _docs(120, 40)))
        run(svc.add_documents("src", [*_docs(200, 3), SourceDocument(id="d5", text="river river bridge")]))
        run(svc.delete_documents("src", ["d7", "d30"]))  # tombstones travel too
        archive = _export(svc, "src", root / "src.tar")
        yield archive, {"results": _results(svc, "src"), "centroids": _centroids(svc, "src")}
    finally:
        svc.close()


@pytest.fixture
def target(registry: ModelRegistry, tmp_path: Path) -> Iterator[RetrievalService]:
    svc = RetrievalService.open(tmp_path / "target", registry, default_collection=None)
    yield svc
    svc.close()


def test_import_adopts_the_snapshots_and_a_restart_loads_them(
    source: tuple[Path, dict[str, Any]], target: RetrievalService, registry: ModelRegistry
) -> None:
    archive, reference = source
    with tarfile.open(archive) as tar:
        names = tar.getnames()
    assert {"indexes/dense/manifest.json", "indexes/bm25/manifest.json"} <= set(names)
    target.create_collection_sync(CollectionSpec(name="first", dense_model="tiny"))  # other chunk ids are taken
    run(target.add_documents("first", _docs(500, 5)))
    assert _import(target, archive, "copy") == {"dense": "snapshot", "bm25": "snapshot"}
    assert target.opened["copy"] == "snapshot"
    np.testing.assert_array_equal(_centroids(target, "copy"), reference["centroids"])  # not retrained
    assert _results(target, "copy") == reference["results"]  # the same hits, scores equal exactly, every mode
    run(target.add_documents("copy", [SourceDocument(id="late", text="zebra crossing")]))
    plan = SearchPlan("zebra", mode="bm25", modes=("bm25",), top_k=3)  # it takes writes as any collection
    assert [h.id for h in run(target.search("copy", plan))] == ["late"]
    target.close()
    again = RetrievalService.open(target.data_dir, registry, default_collection=None)
    try:
        assert again.opened["copy"] == "snapshot"  # the installed snapshots, with the later write replayed
        np.testing.assert_array_equal(_centroids(again, "copy"), reference["centroids"])
        run(again.delete_documents("copy", ["late"]))
        assert _results(again, "copy") == reference["results"]
    finally:
        again.close()


def _repack(archive: Path, out: Path, edit: Callable[[Path, dict[str, Any]], None]) -> Path:
    """`archive` with `edit(folder, manifest)` applied to its extracted members, checksums listed anew (so only
    what `edit` did is wrong with it)."""
    root = out.with_suffix(".d")
    with tarfile.open(archive) as tar:
        tar.extractall(root, filter="data")
    manifest = json.loads((root / MANIFEST).read_text())
    edit(root, manifest)
    files = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file() and p.name != MANIFEST)
    files += [f"{p.parent.relative_to(root).as_posix()}/{MANIFEST}" for p in root.glob(f"indexes/*/{MANIFEST}")]
    manifest["files"] = {n: msgspec.to_builtins(checksum(root / n)) for n in sorted(set(files))}
    (root / MANIFEST).write_text(json.dumps(manifest))
    members = [(MANIFEST, root / MANIFEST), *((n, root / n) for n in manifest["files"])]
    with open(out, "wb") as f:
        for block in tar_stream(members):
            f.write(block)
    return out


def _drop_bm25(root: Path, manifest: dict[str, Any]) -> None:
    shutil.rmtree(root / "indexes" / "bm25")
    manifest["indexes"] = ["dense"]


def _damage_dense(root: Path, manifest: dict[str, Any]) -> None:
    blob = next((root / "indexes" / "dense").glob("faiss.*.bin"))
    data = bytearray(blob.read_bytes())
    data[-5] ^= 0xFF  # the archive's checksum is listed anew: the snapshot's own manifest catches it
    blob.write_bytes(bytes(data))


def _other_settings(root: Path, manifest: dict[str, Any]) -> None:
    manifest["spec"]["index"]["dense"]["nprobe"] = 2  # the collection asks for another dense index


def _other_chunks(root: Path, manifest: dict[str, Any]) -> None:
    path = root / "chunks.jsonl"
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    lines[0]["chunk_id"] += 10_000  # keyed by a chunk the snapshots do not hold
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))


def _version_1(root: Path, manifest: dict[str, Any]) -> None:
    """What a server before index snapshots wrote: no indexes/, no chunk_id."""
    shutil.rmtree(root / "indexes")
    _strip_chunk_ids(root)
    manifest["format_version"] = 1
    del manifest["indexes"]


def _strip_chunk_ids(root: Path) -> None:
    path = root / "chunks.jsonl"
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    path.write_text("".join(json.dumps({k: v for k, v in line.items() if k != "chunk_id"}) + "\n" for line in lines))


@pytest.mark.parametrize(
    ("edit", "origins"),
    [
        (_drop_bm25, {"dense": "snapshot", "bm25": "rebuilt"}),
        (_damage_dense, {"dense": "rebuilt", "bm25": "snapshot"}),
        (_other_settings, {"dense": "rebuilt", "bm25": "snapshot"}),
        (_other_chunks, {"dense": "rebuilt", "bm25": "rebuilt"}),
        (_version_1, {"dense": "rebuilt", "bm25": "rebuilt"}),
    ],
)
def test_an_unusable_snapshot_is_rebuilt_and_said(
    source: tuple[Path, dict[str, Any]],
    target: RetrievalService,
    tmp_path: Path,
    edit: Callable[[Path, dict[str, Any]], None],
    origins: dict[str, str],
) -> None:
    archive, reference = source
    assert _import(target, _repack(archive, tmp_path / "edited.tar", edit), "copy") == origins
    assert target.opened["copy"] == "rebuild"
    assert target.collection("copy").documents == 161
    if origins["dense"] == "rebuilt":  # retrained on every row, not on the first write: other centroids
        assert not np.array_equal(_centroids(target, "copy"), reference["centroids"])
    results = _results(target, "copy")
    for key, hits in reference["results"].items():
        if key.startswith("bm25:"):
            assert results[key] == hits, key  # BM25 scores do not depend on how the index came up
        elif key.startswith("dense:"):  # a document both find scores the same (its cosine)
            found, expected = dict(results[key]), dict(hits)
            both = found.keys() & expected.keys()
            assert both and all(found[d] == expected[d] for d in both), key


def test_a_version_1_archive_listing_snapshots_or_a_later_version_is_refused(
    source: tuple[Path, dict[str, Any]], target: RetrievalService, tmp_path: Path
) -> None:
    def claims_snapshots(root: Path, manifest: dict[str, Any]) -> None:
        _strip_chunk_ids(root)
        manifest["format_version"] = 1
        del manifest["indexes"]

    def later(root: Path, manifest: dict[str, Any]) -> None:
        manifest["format_version"] = 3

    with pytest.raises(InvalidRequestError, match="format version 1 carries no index snapshots"):
        _import(target, _repack(source[0], tmp_path / "v1.tar", claims_snapshots), "copy")
    with pytest.raises(InvalidRequestError, match="format version 3; this server reads 1 and 2"):
        _import(target, _repack(source[0], tmp_path / "v3.tar", later), "copy")
    assert not target.has_collection("copy") and target.store.list_collections() == []


def test_a_compressed_multivector_index_travels_with_its_token_file(
    registry: ModelRegistry, tmp_path: Path, target: RetrievalService
) -> None:
    """Export copies the token file the snapshot names; the import moves it into the new collection's snapshot
    folder (appends land there), and a restart loads it."""
    compressed = IndexSpec(multivector=MultiVectorConfig(kind="compressed"))
    spec = CollectionSpec(name="mv", dense_model="tiny", multivector_model="tiny", index=compressed)
    src = RetrievalService.open(tmp_path / "source", registry, default_collection=None)
    try:
        src.create_collection_sync(spec)
        run(src.add_documents("mv", _docs(0, 60)))
        run(src.delete_documents("mv", ["d3"]))
        want = _mv_results(src, "mv")
        archive = _export(src, "mv", tmp_path / "mv.tar")
    finally:
        src.close()
    with tarfile.open(archive) as tar:
        assert any(n.startswith("indexes/multivector/tokens.") for n in tar.getnames())
    assert _import(target, archive, "copy")["multivector"] == "snapshot"
    assert _mv_results(target, "copy") == want
    folder = target.data_dir / "indexes" / "copy" / "multivector"
    run(target.add_documents("copy", _docs(100, 2)))
    target.close()
    [token_file] = folder.glob("tokens.*.f16")
    assert token_file.name == json.loads((folder / "manifest.json").read_text())["meta"]["tokens"]["file"]
    again = RetrievalService.open(target.data_dir, registry, default_collection=None)
    try:
        assert again.opened["copy"] == "snapshot"
        run(again.delete_documents("copy", ["d100", "d101"]))
        assert _mv_results(again, "copy") == want
    finally:
        again.close()


def _mv_results(svc: RetrievalService, name: str) -> dict[str, list[tuple[str, float]]]:
    out = {}
    for q in QUERIES:
        plan = SearchPlan(q, mode="multivector", modes=("multivector",), top_k=8)
        out[q] = [(h.id, h.score) for h in run(svc.search(name, plan))]
    return out
