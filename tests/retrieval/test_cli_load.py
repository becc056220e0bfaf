"""`retrieval load` against a live server: streams files as Arrow IPC (or names them under the server's
bulk_root), prints a line per file with refused rows, exit status 1 when any row was refused."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from api.server import main
from encoder import Engine, ModelSpec
from retrieval.bulk import as_metadata, fingerprint_for
from retrieval.spec.collection import ChunkingSpec
from tests.api._server import LiveServer, bulk_server


@pytest.fixture(scope="module")
def engine(tiny_store: Callable[[str], Path]) -> Iterator[Engine]:
    e = Engine.load(ModelSpec(source=str(tiny_store("bert_st_mean")), name="tiny"))
    yield e
    e.close()


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cli-bulk-root")


@pytest.fixture(scope="module")
def server(engine: Engine, root: Path) -> Iterator[LiveServer]:
    with bulk_server(engine, root) as live:
        yield live


def _write(path: Path, engine: Engine, ids: list[str], nan_row: int | None = None) -> Path:
    vecs = np.random.default_rng(len(ids)).standard_normal((len(ids), engine.dimensions("embed"))).astype(np.float32)
    if nan_row is not None:
        vecs[nan_row, 0] = np.nan
    table = pa.table(
        {
            "id": ids,
            "text": [f"text of {i}" for i in ids],
            "dense": pa.FixedSizeListArray.from_arrays(pa.array(vecs.reshape(-1)), vecs.shape[1]),
        }
    )
    meta = as_metadata({"dense": fingerprint_for(engine, "dense", ["dense"])}, ChunkingSpec())
    pq.write_table(table.replace_schema_metadata(meta), path)
    return path


def test_load_streams_files_and_reports_refused_rows(
    server: LiveServer, engine: Engine, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "in").mkdir()
    _write(tmp_path / "in" / "a.parquet", engine, ["a1", "a2", "a3"])
    _write(tmp_path / "in" / "b.parquet", engine, ["b1", "b2", "b3"], nan_row=1)
    status = main(["load", "cli", str(tmp_path / "in"), "--url", server.url, "--create", "--batch", "2"])
    out = capsys.readouterr().out
    assert status == 1, out
    assert "a.parquet: 3 documents written (3 chunks), 0 unchanged" in out
    assert "b.parquet: 2 documents written" in out and "row 1 (id b2): vectors.dense: dense vector holds NaN" in out
    assert main(["load", "cli", str(tmp_path / "in" / "a.parquet"), "--url", server.url]) == 0
    assert "0 documents written (0 chunks), 3 unchanged" in capsys.readouterr().out


def test_load_by_server_path_and_a_missing_collection(
    server: LiveServer, engine: Engine, root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _write(root / "c.parquet", engine, ["c1", "c2"])
    assert main(["load", "nope", "c.parquet", "--server-path", "--url", server.url]) == 1
    assert "--create" in capsys.readouterr().err
    assert main(["load", "srv", "c.parquet", "--server-path", "--url", server.url, "--create"]) == 0
    assert "c.parquet: 2 documents written" in capsys.readouterr().out


def test_a_missing_path_is_one_error_line_not_a_traceback(
    server: LiveServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["load", "cli", str(tmp_path / "nope"), "--url", server.url, "--create"]) == 1
    err = capsys.readouterr().err
    assert err.strip() == f"error: `{tmp_path / 'nope'}` does not exist" and "Traceback" not in err
    (tmp_path / "bad.parquet").write_bytes(b"not parquet at all")
    assert main(["load", "cli", str(tmp_path / "bad.parquet"), "--url", server.url, "--create"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "bad.parquet" in err and "Traceback" not in err
