"""Snapshots: atomic replace, manifest fields, corruption and format errors that name the file."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from index.errors import IndexCorruptError, IndexFormatError
from index.persist import (
    FORMAT_VERSION,
    MANIFEST,
    load_snapshot,
    remove_leftovers,
    save_snapshot,
    verify_snapshot,
)


def _save(root: Path, seq: int = 7) -> None:
    arrays = {"a": np.arange(10, dtype=np.int64), "b": np.ones((3, 4), np.float16)}
    save_snapshot(root, "dense", seq, {"dim": 4}, arrays, {"blob": np.frombuffer(b"hello", np.uint8)})


def test_round_trip_and_manifest(tmp_path: Path) -> None:
    _save(tmp_path)
    manifest = json.loads((tmp_path / MANIFEST).read_text())
    assert manifest["format_version"] == FORMAT_VERSION and manifest["kind"] == "dense" and manifest["seq"] == 7
    assert {"bytes", "sha256", "file"} <= set(manifest["files"]["a"])
    snap = load_snapshot(tmp_path, "dense")
    np.testing.assert_array_equal(snap.array("a"), np.arange(10))
    assert snap.array("b").dtype == np.float16 and snap.blob("blob").tobytes() == b"hello"
    assert snap.seq == 7 and snap.require("dim") == 4


def test_resave_replaces_and_removes_stale_files(tmp_path: Path) -> None:
    _save(tmp_path, seq=1)
    _save(tmp_path, seq=2)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert len(names) == 4 and MANIFEST in names and not any(".tmp" in n for n in names)
    assert load_snapshot(tmp_path, "dense").seq == 2


def _data_file(root: Path, name: str) -> Path:
    return root / json.loads((root / MANIFEST).read_text())["files"][name]["file"]


def test_truncated_file_is_named(tmp_path: Path) -> None:
    _save(tmp_path)
    path = _data_file(tmp_path, "a")
    path.write_bytes(path.read_bytes()[:-5])
    with pytest.raises(IndexCorruptError, match="truncated") as err:
        load_snapshot(tmp_path, "dense")
    assert err.value.path == path


def test_flipped_byte_is_named(tmp_path: Path) -> None:
    _save(tmp_path)
    path = _data_file(tmp_path, "b")
    raw = bytearray(path.read_bytes())
    raw[-1] ^= 0xFF
    path.write_bytes(bytes(raw))
    with pytest.raises(IndexCorruptError, match="sha256") as err:
        load_snapshot(tmp_path, "dense")
    assert err.value.path == path


def test_missing_file_and_bad_manifest(tmp_path: Path) -> None:
    with pytest.raises(IndexCorruptError, match="missing"):
        load_snapshot(tmp_path, "dense")
    _save(tmp_path)
    _data_file(tmp_path, "blob").unlink()
    with pytest.raises(IndexCorruptError, match="missing"):
        load_snapshot(tmp_path, "dense")
    (tmp_path / MANIFEST).write_text("{not json")
    with pytest.raises(IndexCorruptError) as err:
        load_snapshot(tmp_path, "dense")
    assert err.value.path.name == MANIFEST


def test_other_format_version_or_kind(tmp_path: Path) -> None:
    _save(tmp_path)
    with pytest.raises(IndexFormatError, match="kind"):
        load_snapshot(tmp_path, "sparse")
    manifest = json.loads((tmp_path / MANIFEST).read_text())
    manifest["format_version"] = FORMAT_VERSION + 1
    (tmp_path / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(IndexFormatError, match="format_version"):
        load_snapshot(tmp_path, "dense")


@pytest.mark.parametrize("entry", ["absolute", "../a.npy", "x"])
def test_a_manifest_names_only_files_in_its_folder(tmp_path: Path, entry: str) -> None:
    """A snapshot may come from elsewhere (an imported archive, issue 27 item 2.5): an entry whose `file` is a
    path (absolute, or `..`) is corrupt even when that file has the right size and sha256; so is an entry that
    is not an object at all."""
    folder = tmp_path / "snap"
    _save(folder)
    manifest = json.loads((folder / MANIFEST).read_text())
    outside = tmp_path / "a.npy"
    outside.write_bytes((folder / manifest["files"]["a"]["file"]).read_bytes())  # same bytes, same checksum
    if entry == "x":
        manifest["files"]["a"] = "x"
    else:
        manifest["files"]["a"]["file"] = str(outside) if entry == "absolute" else entry
    (folder / MANIFEST).write_text(json.dumps(manifest))
    for read in (lambda: load_snapshot(folder, "dense"), lambda: verify_snapshot(folder)):
        with pytest.raises(IndexCorruptError, match="not a file name in the folder"):
            read()


def test_object_arrays_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="pickle"):
        save_snapshot(tmp_path, "dense", None, {}, {"x": np.array([{"a": 1}], dtype=object)})


def test_remove_leftovers_deletes_what_a_killed_save_left_and_nothing_else(tmp_path: Path) -> None:
    _save(tmp_path)
    kept = sorted(p.name for p in tmp_path.iterdir())
    debris = [".vectors.abc.npy.tmp-1234abcd", "vectors.0123456789ab.npy", "raw.0123456789ab.bin"]
    for name in debris:
        (tmp_path / name).write_bytes(b"half")
    (tmp_path / "notes.txt").write_text("not ours")
    assert remove_leftovers(tmp_path) == sorted(debris)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([*kept, "notes.txt"])
    assert load_snapshot(tmp_path, "dense").seq == 7
    assert remove_leftovers(tmp_path / "absent") == []


def test_remove_leftovers_without_a_manifest_removes_every_data_file(tmp_path: Path) -> None:
    _save(tmp_path)
    (tmp_path / MANIFEST).write_text("{torn")
    assert len(remove_leftovers(tmp_path)) == 3 and [p.name for p in tmp_path.iterdir()] == [MANIFEST]


def test_verify_snapshot_checks_files_without_a_kind(tmp_path: Path) -> None:
    _save(tmp_path)
    assert verify_snapshot(tmp_path)["kind"] == "dense"
    target = next(p for p in tmp_path.iterdir() if p.suffix == ".bin")
    target.write_bytes(b"\x00" * 4)
    with pytest.raises(IndexCorruptError, match=target.name):
        verify_snapshot(tmp_path)
    manifest = json.loads((tmp_path / MANIFEST).read_text())
    (tmp_path / MANIFEST).write_text(json.dumps({**manifest, "format_version": FORMAT_VERSION + 1}))
    with pytest.raises(IndexFormatError):
        verify_snapshot(tmp_path)
