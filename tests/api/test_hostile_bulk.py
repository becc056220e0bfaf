"""Hostile bulk loads (issue 27, items 2.6, the bulk 500s of 2.11 and the bulk items of 2.12): a symlink met while
walking a folder under `bulk_root` that leads out of it, a path holding a NUL, a `dense` column of strings (Parquet,
Arrow stream, and `retrieval load`), a truncated Arrow stream that committed batches, a truncated local Parquet
given to `retrieval load`. Each is a clear 4xx (or exit status 1 with one line), never a 5xx or a traceback; no
row outside `bulk_root` is loaded; and errors name paths relative to `bulk_root`, never the server's own."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from api.server import main
from encoder import Engine, ModelSpec
from retrieval.bulk import as_metadata, fingerprint_for
from retrieval.spec.collection import ChunkingSpec
from tests.api._server import LiveServer, bulk_server

ARROW = {"Content-Type": "application/vnd.apache.arrow.stream"}


@pytest.fixture(scope="module")
def engine(tiny_store: Callable[[str], Path]) -> Iterator[Engine]:
    e = Engine.load(ModelSpec(source=str(tiny_store("bert_st_mean")), name="tiny"))
    yield e
    e.close()


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("hostile-bulk-root")


@pytest.fixture(scope="module")
def outside(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("outside")
    (folder / "secret.jsonl").write_text('{"id": "stolen", "text": "a row from outside the bulk root"}\n')
    (folder / "more").mkdir()
    (folder / "more" / "rows.jsonl").write_text('{"id": "stolen2", "text": "another row from outside"}\n')
    return folder


@pytest.fixture(scope="module")
def server(engine: Engine, root: Path) -> Iterator[LiveServer]:
    with bulk_server(engine, root) as live, live.client() as client:
        assert client.post("/v1/collections", json={"name": "bulk", "dense_model": "tiny"}).status_code == 201
        yield live


def _documents(client: httpx.Client) -> int:
    count: int = client.get("/v1/collections/bulk").json()["documents"]
    return count


def _4xx(resp: httpx.Response, root: Path, *words: str) -> dict[str, Any]:
    assert 400 <= resp.status_code < 500, (resp.status_code, resp.text[:500])
    error: dict[str, Any] = resp.json()["error"]
    for word in words:
        assert word in error["message"], error
    assert str(root) not in resp.text and str(root.resolve()) not in resp.text, resp.text  # relative paths only
    return error


@pytest.mark.parametrize("link", ["file", "folder"])
def test_symlinks_out_of_bulk_root_are_refused_while_walking(
    server: LiveServer, root: Path, outside: Path, link: str
) -> None:
    """2.6: `{"path": "sub"}` loaded the rows of `sub/inner_link.jsonl`, a link to a file outside the root."""
    sub = root / f"sub-{link}"
    sub.mkdir()
    (sub / "fine.jsonl").write_text('{"id": "inside", "text": "a row inside the root"}\n')
    if link == "file":
        (sub / "inner_link.jsonl").symlink_to(outside / "secret.jsonl")
    else:
        (sub / "inner_dir").symlink_to(outside / "more", target_is_directory=True)
    with server.client() as client:
        before = _documents(client)
        error = _4xx(client.post("/v1/collections/bulk/bulk", json={"path": sub.name}), root, "outside")
        assert error["param"] == "path"
        assert _documents(client) == before  # refused before any row, the inside ones too
        for stolen in ("stolen", "stolen2"):
            assert client.get(f"/v1/collections/bulk/documents/{stolen}").status_code == 404
    assert main(["load", "bulk", sub.name, "--server-path", "--url", server.url]) == 1


def test_a_link_inside_the_root_is_followed(server: LiveServer, root: Path) -> None:
    (root / "real").mkdir()
    (root / "real" / "rows.jsonl").write_text('{"id": "linked-in", "text": "a row reached through a link"}\n')
    (root / "alias").mkdir()
    (root / "alias" / "rows.jsonl").symlink_to(root / "real" / "rows.jsonl")
    with server.client() as client:
        resp = client.post("/v1/collections/bulk/bulk", json={"path": "alias"})
        assert resp.status_code == 200 and resp.json()["documents"] == 1, resp.text


def test_a_path_with_a_nul_is_a_400(server: LiveServer, root: Path) -> None:
    """2.11: a NUL in `path` reached the file system (ValueError: embedded null byte) and answered 500."""
    with server.client() as client:
        for path in ("a\x00b", "\x00", "sub\x00/../x"):
            assert _4xx(client.post("/v1/collections/bulk/bulk", json={"path": path}), root)["param"] == "path"


def test_errors_name_paths_relative_to_the_bulk_root(server: LiveServer, root: Path) -> None:
    """2.12: bulk errors showed the server's absolute paths."""
    (root / "broken.parquet").write_bytes(b"PAR1 not really parquet PAR1")
    (root / "empty").mkdir()
    with server.client() as client:
        for path, word in (("missing.parquet", "missing.parquet"), ("broken.parquet", "broken.parquet"), ("empty", "")):
            _4xx(client.post("/v1/collections/bulk/bulk", json={"path": path}), root, word)


def _string_dense_table(n: int = 4) -> pa.Table:
    return pa.table({"id": [f"s{i}" for i in range(n)], "text": ["t"] * n, "dense": ["not a vector"] * n})


def _stream(table: pa.Table, batch: int = 10) -> bytes:
    sink = io.BytesIO()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        for piece in table.to_batches(batch):
            writer.write_batch(piece)
    return sink.getvalue()


def test_a_dense_column_of_strings_is_a_400(
    server: LiveServer, root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """2.11: a Parquet or Arrow `dense` column of strings was a 500 (and `retrieval load` printed the 500)."""
    pq.write_table(_string_dense_table(), root / "strings.parquet")
    with server.client() as client:
        before = _documents(client)
        path = client.post("/v1/collections/bulk/bulk", json={"path": "strings.parquet", "trust_vectors": True})
        assert _4xx(path, root, "dense")["param"] == "vectors.dense"
        body = client.post(
            "/v1/collections/bulk/bulk",
            params={"trust_vectors": True},
            content=_stream(_string_dense_table()),
            headers=ARROW,
        )
        _4xx(body, root, "dense")
        assert _documents(client) == before
    pq.write_table(_string_dense_table(), tmp_path / "strings.parquet")
    capsys.readouterr()
    assert main(["load", "bulk", str(tmp_path / "strings.parquet"), "--trust-vectors", "--url", server.url]) == 1
    err = capsys.readouterr().err
    assert "dense" in err and "500" not in err and "Traceback" not in err, err


def _vectors(engine: Engine, n: int) -> pa.Table:
    dim = engine.dimensions("embed")
    vecs = np.random.default_rng(n).standard_normal((n, dim)).astype(np.float32)
    table = pa.table(
        {
            "id": [f"t{i}" for i in range(n)],
            "text": [f"truncated stream row {i}" for i in range(n)],
            "dense": pa.FixedSizeListArray.from_arrays(pa.array(vecs.reshape(-1)), dim),
        }
    )
    return table.replace_schema_metadata(
        as_metadata({"dense": fingerprint_for(engine, "dense", ["dense"])}, ChunkingSpec())
    )


def test_a_truncated_stream_says_what_was_committed(server: LiveServer, engine: Engine, root: Path) -> None:
    """2.12: a truncated Arrow stream answered 400 after committing its first batches, without saying so."""
    whole = _stream(_vectors(engine, 50), batch=10)
    cut = whole[: len(whole) * 7 // 10]  # into the 4th record batch
    with server.client() as client:
        before = _documents(client)
        resp = client.post("/v1/collections/bulk/bulk", params={"batch_documents": 10}, content=cut, headers=ARROW)
        error = _4xx(resp, root, "committed")
        committed = _documents(client) - before
        assert committed > 0 and f"{committed} documents" in error["message"], (committed, error)
        again = client.post("/v1/collections/bulk/bulk", params={"batch_documents": 10}, content=whole, headers=ARROW)
        assert again.status_code == 200 and again.json()["unchanged"] == committed, again.text  # a rerun finishes


def test_load_of_a_truncated_local_parquet_prints_one_line(
    server: LiveServer, engine: Engine, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """2.12: `retrieval load` of a truncated local Parquet printed a 37-line traceback."""
    pq.write_table(_vectors(engine, 20), tmp_path / "whole.parquet")
    data = (tmp_path / "whole.parquet").read_bytes()
    (tmp_path / "cut.parquet").write_bytes(data[: len(data) // 2])
    capsys.readouterr()
    assert main(["load", "bulk", str(tmp_path / "cut.parquet"), "--url", server.url]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "cut.parquet" in err and "Traceback" not in err, err
    assert len(err.strip().splitlines()) == 1, err
