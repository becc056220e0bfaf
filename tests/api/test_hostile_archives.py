"""Hostile import archives (issue 27, items 2.4, 2.5, 2.9 and the `.npy` of 2.11): GNU sparse members that expand
far past the body (any layout name can carry one), an index snapshot manifest naming a file outside the archive,
tampered snapshot metadata, an object array in `vectors/dense.npy`, vectors of the wrong width. Each is answered
4xx (never 5xx), or for a damaged snapshot the index is rebuilt from the rows; and whatever the answer, a refused
import leaves nothing: no collection, no store rows, no index snapshots, no page files, no scratch files."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from encoder import Engine, ModelSpec
from retrieval import ModelRegistry, ServiceConfig
from tests.api._server import LiveServer, live_server
from tests.retrieval.transfer.test_snapshots import _repack

TAR = {"Content-Type": "application/x-tar"}
COLL = "/v1/collections"
MiB = 1 << 20


@pytest.fixture(scope="module")
def server(tiny_store: Callable[[str], Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    engine = Engine.load(ModelSpec(source=str(tiny_store("bert_st_mean")), name="tiny"))
    data = tmp_path_factory.mktemp("data")
    config = ServiceConfig(data_dir=str(data), max_import_bytes=4 * MiB)
    try:
        with live_server(ModelRegistry([engine]), config) as live, live.client() as client:
            spec = {"name": "src", "dense_model": "tiny", "chunking": {"max_tokens": 8, "overlap": 2}}
            assert client.post(COLL, json=spec).status_code == 201
            docs = [{"id": f"d{i}", "text": f"river bridge number {i} over the stone road"} for i in range(20)]
            assert client.post(f"{COLL}/src/documents", json={"documents": docs}).status_code == 200
            yield live
    finally:
        engine.close()


@pytest.fixture(scope="module")
def archive(server: LiveServer, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("archive") / "src.tar"
    with server.client() as client:
        resp = client.get(f"{COLL}/src/export")
        assert resp.status_code == 200
        out.write_bytes(resp.content)
    return out


def _pages(server: LiveServer) -> set[Path]:
    return set((server.data_dir / "pages").rglob("*.*")) if (server.data_dir / "pages").is_dir() else set()


def _import(client: httpx.Client, body: bytes, name: str) -> httpx.Response:
    return client.post(f"{COLL}/import", params={"name": name}, content=body, headers=TAR)


def assert_nothing_left(server: LiveServer, client: httpx.Client, name: str, pages: set[Path]) -> None:
    """No collection `name`, no store row of it, no snapshot folder, no new page file, no scratch files."""
    assert client.get(f"{COLL}/{name}").status_code == 404
    store = server.app.state.service.store
    assert name not in {row.name for row in store.list_collections()}
    assert not (server.data_dir / "indexes" / name).exists()
    assert _pages(server) == pages
    assert not list((server.data_dir / "transfers").glob("*"))


def _refused(server: LiveServer, body: bytes, name: str, *words: str) -> dict[str, Any]:
    with server.client() as client:
        pages = _pages(server)
        resp = _import(client, body, name)
        assert 400 <= resp.status_code < 500, (resp.status_code, resp.text[:500])
        error: dict[str, Any] = resp.json()["error"]
        for word in words:
            assert word in error["message"], error
        assert_nothing_left(server, client, name, pages)
        assert client.get("/readyz").status_code == 200
    return error


# -- sparse members: bytes on disk bounded by bytes received ---------------------------------------------------
def gnu_sparse(name: str, real_size: int, data: bytes) -> bytes:
    """A GNU sparse member (type `S`): `data` stored at the end of a file of `real_size` bytes, a hole before it
    (what `tar --sparse --format=gnu` writes for a file made by `truncate`)."""
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.type = len(data), 0o644, tarfile.GNUTYPE_SPARSE
    head = bytearray(info.tobuf(tarfile.GNU_FORMAT)[-tarfile.BLOCKSIZE :])
    head[386:398] = tarfile.itn(real_size - len(data), 12, tarfile.GNU_FORMAT)  # the one map entry: offset
    head[398:410] = tarfile.itn(len(data), 12, tarfile.GNU_FORMAT)  # ... and length
    head[483:495] = tarfile.itn(real_size, 12, tarfile.GNU_FORMAT)  # the expanded size
    head[148:156] = b" " * 8
    head[148:156] = b"%06o\0 " % sum(head)
    pad = -len(data) % tarfile.BLOCKSIZE
    return bytes(head) + data + tarfile.NUL * pad


def _with_sparse(archive: Path, member: str, real_size: int) -> bytes:
    """`archive` with `member` (added or replaced) as a sparse member expanding to `real_size` bytes."""
    out = io.BytesIO()
    with tarfile.open(archive) as src:
        for info in src:
            if info.name == member:
                continue
            data = src.extractfile(info).read()  # type: ignore[union-attr]
            out.write(info.tobuf(tarfile.PAX_FORMAT) + data + tarfile.NUL * (-len(data) % tarfile.BLOCKSIZE))
    out.write(gnu_sparse(member, real_size, b'{"id": "x"}\n'))
    return out.getvalue() + tarfile.NUL * (2 * tarfile.BLOCKSIZE)


@pytest.mark.parametrize("member", ["documents.jsonl", f"pages/{'ab' * 32}.png"])
def test_sparse_members_are_refused_before_they_expand(server: LiveServer, archive: Path, member: str) -> None:
    """2.4: a 10 KiB body declaring a 64 MiB member (16x the import limit) was written out whole, then refused."""
    body = _with_sparse(archive, member, 64 * MiB)
    assert len(body) < 64 * 1024
    with tarfile.open(fileobj=io.BytesIO(body)) as tar:  # what Python's tarfile (and GNU tar) make of it
        assert tar.getmember(member).issparse() and tar.getmember(member).size == 64 * MiB
    _refused(server, body, "sparse", "sparse")


# -- files named by the archive's manifests ---------------------------------------------------------------------
def _bm25_entry(root: Path) -> tuple[dict[str, Any], str, Path]:
    """The bm25 snapshot manifest, the name of its first data file entry, and that file."""
    manifest = json.loads((root / "indexes/bm25/manifest.json").read_text())
    key = next(iter(manifest["files"]))
    return manifest, key, root / "indexes/bm25" / manifest["files"][key]["file"]


@pytest.mark.parametrize("where", ["absolute", "relative"])
def test_a_snapshot_manifest_names_only_members(server: LiveServer, archive: Path, tmp_path: Path, where: str) -> None:
    """2.5: an entry whose `file` is a path outside the archive (right size and sha256, the member left out) was
    read from the server's disk: the import answered 201 with `"bm25": "snapshot"`."""
    outside = tmp_path / "outside.npy"

    def point_outside(root: Path, manifest: dict[str, Any]) -> None:
        snap, key, member = _bm25_entry(root)
        outside.write_bytes(member.read_bytes())
        member.unlink()
        snap["files"][key]["file"] = str(outside) if where == "absolute" else "../" * 5 + outside.name
        (root / "indexes/bm25/manifest.json").write_text(json.dumps(snap))

    body = _repack(archive, tmp_path / "evil.tar", point_outside).read_bytes()
    if where == "relative":  # the data directory: where 5 `..` land from <data>/transfers/<tmp>/archive/indexes/bm25
        outside = outside.rename(server.data_dir / outside.name)
    try:
        _refused(server, body, "outside", "not a member")
    finally:
        outside.unlink()


# -- tampered snapshot metadata: the family is rebuilt from the rows, the import is whole ------------------------
def _tamper_dense_meta(root: Path, manifest: dict[str, Any]) -> None:
    path = root / "indexes/dense/manifest.json"
    snap = json.loads(path.read_text())
    snap["meta"]["dim"] = [1]
    path.write_text(json.dumps(snap))


def _tamper_dense_files(root: Path, manifest: dict[str, Any]) -> None:
    path = root / "indexes/dense/manifest.json"
    snap = json.loads(path.read_text())
    snap["files"]["slot_ids"] = "x"
    path.write_text(json.dumps(snap))


@pytest.mark.parametrize("tamper", [_tamper_dense_meta, _tamper_dense_files])
def test_tampered_snapshot_meta_is_rebuilt_not_half_made(
    server: LiveServer, archive: Path, tmp_path: Path, tamper: Callable[[Path, dict[str, Any]], None]
) -> None:
    """2.9: a snapshot manifest with `dim: [1]` or `files: {"slot_ids": "x"}` (checksums fixed) was a 500 after
    the store commit, leaving a collection that answered 400 "not loaded"; now that index is rebuilt."""
    body = _repack(archive, tmp_path / "tampered.tar", tamper).read_bytes()
    with server.client() as client:
        resp = _import(client, body, "tampered")
        assert resp.status_code == 201, resp.text
        assert resp.json()["indexes"] == {"dense": "rebuilt", "bm25": "snapshot"}
        for mode in ("dense", "bm25"):
            got = client.post(f"{COLL}/tampered/search", json={"query": "bridge number 7", "mode": mode, "top_k": 3})
            want = client.post(f"{COLL}/src/search", json={"query": "bridge number 7", "mode": mode, "top_k": 3})
            assert got.status_code == 200 and got.json()["data"] == want.json()["data"], (mode, got.text)
        assert client.delete(f"{COLL}/tampered").status_code == 200


# -- vectors: an object array, a wrong width ----------------------------------------------------------------------
def _object_dense(root: Path, manifest: dict[str, Any]) -> None:
    rows = np.load(root / "vectors/dense.npy")
    objects = np.empty(len(rows), dtype=object)
    objects[:] = [list(r) for r in rows]
    np.save(root / "vectors/dense.npy", objects, allow_pickle=True)  # a pickle inside: must never be loaded


def _wider_dense(root: Path, manifest: dict[str, Any]) -> None:
    rows = np.load(root / "vectors/dense.npy")
    np.save(root / "vectors/dense.npy", np.hstack([rows, rows[:, :1]]).astype(np.float32))


def _narrow_dims(root: Path, manifest: dict[str, Any]) -> None:
    manifest["dims"]["dense"] = 3


@pytest.mark.parametrize(
    ("edit", "word"), [(_object_dense, "dense.npy"), (_wider_dense, "dense"), (_narrow_dims, "dense")]
)
def test_bad_vectors_are_a_400(
    server: LiveServer, archive: Path, tmp_path: Path, edit: Callable[[Path, dict[str, Any]], None], word: str
) -> None:
    """2.11: an object array in `vectors/dense.npy` was a 500; so is every other vector file that is not what the
    manifest says (dtype, shape, width)."""
    body = _repack(archive, tmp_path / "vectors.tar", edit).read_bytes()
    _refused(server, body, "vectors", word)


def _page_and_object_dense(root: Path, manifest: dict[str, Any]) -> None:
    png = b"\x89PNG\r\n\x1a\n not really an image, never decoded by an import"
    (root / "pages").mkdir(exist_ok=True)
    (root / f"pages/{_sha(png)}.png").write_bytes(png)
    (root / f"pages/{_sha(png)}.thumb.jpg").write_bytes(b"a thumbnail")
    manifest["pages"] = 1
    _object_dense(root, manifest)


def test_a_refused_import_removes_the_page_files_it_wrote(server: LiveServer, archive: Path, tmp_path: Path) -> None:
    """Page images are written before the store transaction; an import refused after that removes them."""
    body = _repack(archive, tmp_path / "pages.tar", _page_and_object_dense).read_bytes()
    _refused(server, body, "paged", "dense.npy")


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
