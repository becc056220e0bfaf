"""Reading an archive (retrieval/transfer/archive.py) is bounded by the bytes received (issue 27, 2.4): a GNU sparse
member is refused before a byte of it is written, and members may never add up to more than the archive's own
size (or the given budget), checked while they are written."""

from __future__ import annotations

import tarfile
from pathlib import Path

import pytest

from retrieval.errors import InvalidRequestError
from retrieval.transfer import open_archive
from tests.api.test_hostile_archives import gnu_sparse

MiB = 1 << 20


def _member(name: str, data: bytes) -> bytes:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info.tobuf(tarfile.PAX_FORMAT) + data + tarfile.NUL * (-len(data) % tarfile.BLOCKSIZE)


def _tar(path: Path, *members: bytes) -> Path:
    path.write_bytes(b"".join(members) + tarfile.NUL * (2 * tarfile.BLOCKSIZE))
    return path


def _written(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def test_a_sparse_member_is_refused_before_it_is_written(tmp_path: Path) -> None:
    path = _tar(tmp_path / "t.tar", _member("manifest.json", b"{}"), gnu_sparse("documents.jsonl", 256 * MiB, b"{}\n"))
    root = tmp_path / "out"
    root.mkdir()
    with pytest.raises(InvalidRequestError, match="sparse"):
        open_archive(path, root)
    assert _written(root) < 1024, _written(root)


def test_members_never_add_up_to_more_than_the_budget(tmp_path: Path) -> None:
    body = b"x" * 300_000
    path = _tar(tmp_path / "t.tar", _member("documents.jsonl", body), _member("chunks.jsonl", body))
    for budget in (200_000, 500_000):  # the first member alone, then the second, goes past it
        root = tmp_path / f"out-{budget}"
        root.mkdir()
        with pytest.raises(InvalidRequestError, match="more than"):
            open_archive(path, root, max_bytes=budget)
        assert _written(root) <= budget
    root = tmp_path / "whole"
    root.mkdir()
    with pytest.raises(InvalidRequestError, match="manifest"):  # within the archive's own size: read, then refused
        open_archive(path, root)
    assert _written(root) == 600_000 <= path.stat().st_size
