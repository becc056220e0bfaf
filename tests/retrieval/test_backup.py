"""Backups of a live data directory (issue 11, item 8) at the store level: destination rules, a copy taken
while a writer commits, snapshots being rewritten during the copy, page images, and the CLI."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from api.server import main
from index.persist import save_snapshot, verify_snapshot
from retrieval.errors import InvalidRequestError
from retrieval.store import Store
from retrieval.store.backup import BACKUP_MANIFEST, backup_data_dir, check_destination, destination_under
from tests.retrieval.store._docs import make_doc, n_chunks


def test_destination_must_be_new_or_empty_and_outside_the_data_dir(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    (tmp_path / "empty").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "empty")
    for bad in (tmp_path / "full", tmp_path / "link", data, data / "inside", tmp_path / "full" / "x"):
        with pytest.raises(InvalidRequestError) as err:
            check_destination(bad, data)
        assert err.value.param == "destination"
    assert check_destination(tmp_path / "empty", data) == (tmp_path / "empty").resolve()
    assert check_destination(tmp_path / "new", data) == (tmp_path / "new").resolve()


@pytest.mark.parametrize("name", ["../up", "a/b", "/abs", "", ".", "..", ".hidden", "x" * 129])
def test_api_destination_is_one_folder_name_under_the_root(tmp_path: Path, name: str) -> None:
    with pytest.raises(InvalidRequestError):
        destination_under(str(tmp_path), name)


def test_api_destination_needs_a_root(tmp_path: Path) -> None:
    with pytest.raises(InvalidRequestError, match="backup_root"):
        destination_under(None, "nightly")
    assert destination_under(str(tmp_path), "nightly-1.2") == tmp_path.resolve() / "nightly-1.2"


def _snapshot(folder: Path, value: float) -> None:
    save_snapshot(folder, "dense", int(value), {"n": 3}, {"vectors": np.full((3, 4), value, np.float32)})


def test_backup_while_writing_holds_every_acknowledged_write(tmp_path: Path) -> None:
    data = tmp_path / "data"
    store = Store.open(data / "store.sqlite3")
    store.create_collection("c", {})
    acked: list[int] = []  # document numbers whose write returned (committed)
    stop = threading.Event()

    def write() -> None:
        i = 0
        while not stop.is_set():
            store.write("c", [make_doc(i)])
            acked.append(i)
            i += 1

    def resave() -> None:  # a snapshot rewritten over and over: new files, then the manifest, then removals
        k = 0
        while not stop.is_set():
            _snapshot(data / "indexes" / "c" / "dense", float(k))
            k += 1

    (data / "pages" / "ab").mkdir(parents=True)
    (data / "pages" / "ab" / "abcdef.png").write_bytes(b"\x89PNG page")
    threads = [threading.Thread(target=write), threading.Thread(target=resave)]
    for thread in threads:
        thread.start()
    manifest = data / "indexes" / "c" / "dense" / "manifest.json"
    while len(acked) < 20 or not manifest.is_file():  # writes acknowledged and a first snapshot saved
        threading.Event().wait(0.005)
    before = list(acked)
    result = backup_data_dir(data, tmp_path / "copy", store)
    stop.set()
    for thread in threads:
        thread.join()
    store.close()
    assert result.pages == 1 and (tmp_path / "copy" / "pages" / "ab" / "abcdef.png").read_bytes() == b"\x89PNG page"
    assert (tmp_path / "copy" / BACKUP_MANIFEST).is_file()
    for label in result.snapshots:
        verify_snapshot(tmp_path / "copy" / "indexes" / label)  # whole, or left out (`skipped`), never torn
    assert result.snapshots + result.skipped == ["c/dense"]
    with Store.open(tmp_path / "copy" / "store.sqlite3") as copy:
        assert copy.last_seq() == result.seq and result.documents == copy.stats("c")["documents"]
        for i in before:
            assert copy.get_document("c", f"d{i}").content_hash == make_doc(i).content_hash
        assert result.documents >= len(before)
        chunks: dict[str, int] = {}
        for batch in copy.iter_chunks("c"):
            for row in batch:
                chunks[row.doc_id] = chunks.get(row.doc_id, 0) + 1
        assert len(chunks) == result.documents  # and no document is partial:
        assert all(n == n_chunks(int(doc[1:]), 0) for doc, n in chunks.items()), chunks


def test_cli_backup_and_its_refusals(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "data"
    with Store.open(data / "store.sqlite3") as store:
        store.create_collection("c", {})
        store.write("c", [make_doc(1), make_doc(2)])
    assert main(["backup", str(tmp_path / "copy"), "--data-dir", str(data)]) == 0
    assert "1 collections, 2 documents" in capsys.readouterr().out
    assert main(["backup", str(tmp_path / "copy"), "--data-dir", str(data)]) == 1  # not empty any more
    assert "not an empty directory" in capsys.readouterr().err
    assert main(["backup", str(tmp_path / "other"), "--data-dir", str(tmp_path / "nothing")]) == 1
    assert "no store" in capsys.readouterr().err and not (tmp_path / "nothing").exists()
    with Store.open(tmp_path / "copy" / "store.sqlite3") as copy:
        assert copy.stats("c")["documents"] == 2
