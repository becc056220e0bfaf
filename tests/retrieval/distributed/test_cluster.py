"""Which Ray cluster a command joins (retrieval/distributed/cluster.py): a dead one -- named, in RAY_ADDRESS or in
Ray's stale record of a cluster that died without `ray stop` -- is a clear error at once, `embed` without an
address starts its own instead, and `serve --ray` exits 1 with that error as a readable log line. Probed with
plain sockets; no Ray cluster is started here except by the `embed` run at the end."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from retrieval.distributed.cluster import LOCAL, RayClusterUnavailableError, embed_address, serve_address

ROOT = Path(__file__).resolve().parents[3]


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def ray_tmp(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A private Ray temp folder (where Ray records this machine's cluster), short enough for Ray's sockets."""
    folder = Path(tempfile.mkdtemp(prefix="rt-", dir="/tmp"))
    monkeypatch.setenv("RAY_TMPDIR", str(folder))
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    (folder / "ray").mkdir()
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def _record(folder: Path, address: str) -> Path:
    path = folder / "ray" / "ray_current_cluster"
    path.write_text(address)
    return path


def test_a_stale_record_is_a_clear_error_for_serve_and_a_fresh_start_for_embed(ray_tmp: Path) -> None:
    dead = f"127.0.0.1:{_closed_port()}"
    record = _record(ray_tmp, dead)
    with pytest.raises(RayClusterUnavailableError) as err:
        serve_address("auto")
    message = err.value.message
    assert f"no Ray cluster answers at {dead} (recorded in {record})" in message and str(record) in message
    assert "`ray stop`" in message and "stops every Ray process on this machine" in message
    assert embed_address(None) == LOCAL  # no live cluster here: embed starts its own
    with pytest.raises(RayClusterUnavailableError, match=r"\(--address\)"):
        embed_address(dead)  # a named one must answer
    with pytest.raises(RayClusterUnavailableError, match=r"\(--ray\)"):
        serve_address(dead)


def test_a_live_cluster_is_joined_and_ray_address_must_answer(ray_tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.create_server(("127.0.0.1", 0)) as listening:
        live = f"127.0.0.1:{listening.getsockname()[1]}"
        _record(ray_tmp, live)
        assert serve_address("auto") == live and embed_address(None) == live
        assert serve_address(live) == live and embed_address(f"ray://{live}") == f"ray://{live}"
    (ray_tmp / "ray" / "ray_current_cluster").unlink()
    assert serve_address("auto") is None and embed_address(None) == LOCAL  # nothing recorded: Ray starts one
    monkeypatch.setenv("RAY_ADDRESS", f"127.0.0.1:{_closed_port()}")
    for check in (lambda: serve_address("auto"), lambda: embed_address(None)):
        with pytest.raises(RayClusterUnavailableError, match=r"\(RAY_ADDRESS\)"):
            check()


def _env(ray_tmp: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "RAY_TMPDIR": str(ray_tmp)}


def test_serve_on_a_dead_cluster_exits_1_saying_so(ray_tmp: Path, tmp_path: Path) -> None:
    _record(ray_tmp, f"127.0.0.1:{_closed_port()}")
    argv = [sys.executable, "-m", "api.server", "serve", "--ray", "auto", "--port", "0", "--data-dir", str(tmp_path)]
    done = subprocess.run(argv, capture_output=True, text=True, env=_env(ray_tmp), timeout=180, cwd=ROOT)
    assert done.returncode == 1, done.stderr[-3000:]
    errors = [line for line in done.stderr.splitlines() if "level=error" in line]
    assert "start-up failed: RayClusterUnavailableError: no Ray cluster answers at 127.0.0.1:" in errors[0], errors


def test_embed_beside_a_stale_record_starts_its_own_and_prints_no_ray_lines(ray_tmp: Path, tmp_path: Path) -> None:
    _record(ray_tmp, f"127.0.0.1:{_closed_port()}")
    corpus = tmp_path / "in" / "c.jsonl"
    corpus.parent.mkdir()
    corpus.write_text('{"_id": "a", "text": "hello world"}\n{"_id": "b", "text": "another note"}\n')
    argv = [sys.executable, "-m", "api.server", "embed", str(corpus.parent), "--output", str(tmp_path / "out")]
    done = subprocess.run(argv, capture_output=True, text=True, env=_env(ray_tmp), timeout=400, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "2 documents, 2 chunks" in done.stdout and list((tmp_path / "out").glob("part-*.parquet"))
    assert done.stderr.strip() == "", done.stderr[-3000:]  # no Ray start-up notes, core worker or progress lines
