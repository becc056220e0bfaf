"""Durability of the real server process: SIGKILL during a stream of acknowledged writes and during snapshot
writes, a corrupt snapshot at start, and a clean SIGTERM restart (DESIGN.md, "Storage and durability contract").

Every start is a separate server process (`api.server.main` over one data directory, forked from a warm
process; the `slow` variant spawns `python -m api.server` each time). After each restart every acknowledged
document must be found by GET and by every mode with all of its chunks, deleted ids never, and the request in
flight at the kill must have left its documents all old or all new.
"""

from __future__ import annotations

import json
import random
import shutil
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.api._crash import CrashDriver, ExecLauncher, ForkLauncher, Launcher, ServerProcess
from tests.api._crash_stream import COLLECTION, MODES, SPEC, Op, Tally, Version, Writer, search, verify

FAMILIES = MODES  # the crash collection's index families (dense + BM25)


@pytest.fixture
def launcher(fork_launcher: ForkLauncher) -> ForkLauncher:
    return fork_launcher


def _snapshot_files(data_dir: Path) -> dict[str, tuple[set[str], set[str]]]:
    """Family -> (files its manifest names, files present) under the crash collection's snapshot folder."""
    out = {}
    for family in FAMILIES:
        folder = data_dir / "indexes" / COLLECTION / family
        present = {p.name for p in folder.iterdir()} if folder.is_dir() else set()
        named: set[str] = set()
        if "manifest.json" in present:
            named = {e["file"] for e in json.loads((folder / "manifest.json").read_text())["files"].values()}
        out[family] = (named, present)
    return out


def _saving(data_dir: Path) -> bool:
    """A snapshot is being written right now (a temporary file exists)."""
    return any(".tmp-" in name for _, present in _snapshot_files(data_dir).values() for name in present)


class CrashRun(CrashDriver):
    """One data directory through many server processes; `states` is the model of acknowledged writes."""

    def __init__(self, server: ServerProcess, seed: int) -> None:
        super().__init__(server, seed, SPEC, Tally())

    def _writers(self, stop: threading.Event) -> list[Writer]:
        writers = [Writer(self.server.url, f"w{k}", self.states, self.rng.getrandbits(32), stop) for k in range(2)]
        for writer in writers:
            writer.start()
        return writers

    def cycle(self, seconds: float, kill_when: Callable[[], bool] | None = None) -> None:
        """Stream writes, SIGKILL the server after `seconds` (then, given `kill_when`, at the first instant it
        holds, within a second), restart, check."""
        writers = self._writers(threading.Event())
        time.sleep(seconds)
        deadline = time.monotonic() + 1.0
        while kill_when is not None and not kill_when() and time.monotonic() < deadline:
            time.sleep(0.0005)
        self.server.kill()
        pending: list[Op] = self.join_writers(writers)
        files = _snapshot_files(self.server.data_dir)
        self.tally.partial_snapshots += any(present - named - {"manifest.json"} for named, present in files.values())
        complete = all("manifest.json" in present for _, present in files.values())
        self._restart_and_verify(pending, expect_snapshot=complete and kill_when is not None)

    def clean_stop(self, seconds: float, stopped: Callable[[], None]) -> None:
        """Stream writes for `seconds`, stop the writers, SIGTERM the server, call `stopped()`, restart, check."""
        stop = threading.Event()
        writers = self._writers(stop)
        time.sleep(seconds)
        stop.set()
        assert self.join_writers(writers) == []
        self.server.terminate()
        stopped()
        self._restart_and_verify([], expect_snapshot=True)

    def _restart_and_verify(self, pending: list[Op], expect_snapshot: bool) -> None:
        self.server.start()
        opened = self.server.opened(COLLECTION)
        self.tally.opened[opened.how] += 1
        if expect_snapshot:  # a complete snapshot is on disk: it must load (a half-written one never replaces it)
            assert opened.how == "snapshot", self.server.log_text()[-3000:]
        with self.server.client() as client:
            verify(client, self.states, pending, opened, self.tally)
        self.tally.cycles += 1


def _crash_run(launcher: Launcher, tiny: Path, root: Path, seed: int, **config: Any) -> CrashRun:
    run = CrashRun(ServerProcess(launcher, tiny, root / "data", config), seed)
    run.begin()
    return run


def _report(name: str, tally: Tally, started: float) -> None:
    print(f"\n{name}: {tally} in {time.monotonic() - started:.1f} s")


def _stream_with_kills(run: CrashRun, cycles: int, kill_when: Callable[[], bool] | None = None) -> None:
    for _ in range(cycles):
        run.cycle(run.rng.uniform(0.2, 1.2), kill_when)
    run.server.terminate()
    tally = run.tally
    assert tally.cycles == cycles and tally.acked_ops >= cycles, tally
    assert tally.checked_present > 0 and tally.checked_absent > 0, tally


def test_sigkill_during_write_stream(launcher: ForkLauncher, tiny_store: Callable[[str], Path], tmp_path: Path) -> None:
    started = time.monotonic()
    run = _crash_run(launcher, tiny_store("bert_st_mean"), tmp_path, seed=9)
    _stream_with_kills(run, cycles=10)
    _report("kills during writes", run.tally, started)
    assert sum(run.tally.inflight.values()) > 0, run.tally


def test_sigkill_during_snapshot_writes(
    launcher: ForkLauncher, tiny_store: Callable[[str], Path], tmp_path: Path
) -> None:
    started = time.monotonic()
    run = _crash_run(launcher, tiny_store("bert_st_mean"), tmp_path, seed=10, snapshot_interval_s=0.02)
    data_dir = run.server.data_dir
    _stream_with_kills(run, cycles=5, kill_when=lambda: _saving(data_dir))
    _report("kills during snapshots", run.tally, started)
    assert run.tally.opened["snapshot"] >= 4, run.tally


def test_sigterm_restart_loads_snapshots(
    launcher: ForkLauncher, tiny_store: Callable[[str], Path], tmp_path: Path
) -> None:
    run = _crash_run(launcher, tiny_store("bert_st_mean"), tmp_path, seed=11)
    data_dir = run.server.data_dir

    def saved_at_shutdown() -> None:  # the default 30 s interval never ticked: the shutdown wrote these
        with sqlite3.connect(data_dir / "store.sqlite3") as db:
            last_seq = int(db.execute("SELECT value FROM meta WHERE key = 'seq'").fetchone()[0])
        for family in FAMILIES:
            manifest = json.loads((data_dir / "indexes" / COLLECTION / family / "manifest.json").read_text())
            assert manifest["seq"] == last_seq, (family, manifest["seq"], last_seq)

    run.clean_stop(1.0, saved_at_shutdown)
    run.server.terminate()
    assert run.tally.opened == {"snapshot": 1} and run.tally.checked_present > 0, run.tally


def _flip(path: Path) -> None:
    data = bytearray(path.read_bytes())
    for i in range(len(data) // 2, min(len(data), len(data) // 2 + 8)):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _largest(folder: Path) -> Path:
    return max((p for p in folder.iterdir() if p.name != "manifest.json"), key=lambda p: p.stat().st_size)


QUERIES = ("lion tiger river", "copper violin", "castle wagon tunnel", "orchid rose lotus cactus")


def _results(run: CrashRun) -> dict[tuple[str, str], dict[str, float]]:
    """Every hit's score per (query, mode): all hits, so ties at a cut-off cannot differ."""
    with run.server.client() as client:
        return {
            (q, mode): {h["id"]: h["score"] for h in search(client, query=q, mode=mode, top_k=1000)}
            for q in QUERIES
            for mode in MODES
        }


def _same(got: dict[Any, dict[str, float]], want: dict[Any, dict[str, float]]) -> None:
    assert got.keys() == want.keys()
    for key, hits in want.items():
        assert got[key].keys() == hits.keys() and len(hits) > 0, key
        assert got[key] == pytest.approx(hits, rel=1e-5, abs=1e-6), key


def _put(run: CrashRun, docs: dict[str, str]) -> None:
    with run.server.client() as client:
        body = [{"id": i, "text": t, "metadata": {"uid": i, "v": 0}} for i, t in docs.items()]
        assert client.post(f"/v1/collections/{COLLECTION}/documents", json={"documents": body}).status_code == 200
        assert client.post(f"/v1/collections/{COLLECTION}/documents/delete", json={"ids": ["c3"]}).status_code == 200
    run.states.update({i: Version(t, {"uid": i, "v": 0}) for i, t in docs.items()})
    run.states["c3"] = None


DAMAGES: list[tuple[str, Callable[[Path], None], Callable[[Path], Path]]] = [
    ("dense", _flip, _largest),  # bytes flipped in the FAISS index
    ("bm25", _truncate, _largest),  # the texts cut in half
    ("dense", _truncate, lambda folder: folder / "manifest.json"),  # the manifest cut in half
]


def test_corrupt_snapshot_is_rebuilt_from_the_store(
    launcher: ForkLauncher, tiny_store: Callable[[str], Path], tmp_path: Path
) -> None:
    run = _crash_run(launcher, tiny_store("bert_st_mean"), tmp_path, seed=12)
    rng = random.Random(12)
    _put(run, {f"c{i}": " ".join(rng.choices(QUERIES[i % 4].split() * 3 + ["moose"], k=4 + i % 13)) for i in range(30)})
    served = _results(run)
    for family, damage, target in DAMAGES:  # each restart starts from the snapshots its predecessor saved
        run.server.terminate()
        folder = run.server.data_dir / "indexes" / COLLECTION / family
        damage(target(folder))
        run._restart_and_verify([], expect_snapshot=False)
        log = run.server.log_text()
        assert run.server.opened(COLLECTION).how == "rebuild", log[-3000:]
        assert f"snapshot {folder} is unusable" in log, log[-3000:]  # detected, named, never served
        _same(_results(run), served)
    run.server.terminate()
    shutil.rmtree(run.server.data_dir / "indexes")  # a fresh rebuild from the store
    run._restart_and_verify([], expect_snapshot=False)
    rebuilt = _results(run)
    _same(rebuilt, served)
    run.server.terminate()
    run._restart_and_verify([], expect_snapshot=True)  # the rebuilt indexes were snapshotted at shutdown
    _same(_results(run), rebuilt)
    run.server.terminate()
    assert run.tally.opened == {"rebuild": 4, "snapshot": 1}, run.tally


@pytest.mark.slow
def test_sigkill_many_times_real_interpreter(tiny_store: Callable[[str], Path], tmp_path: Path) -> None:
    """The same stream through `python -m api.server` itself, 20 kills, snapshots every 0.3 s."""
    launcher = ExecLauncher()
    try:
        started = time.monotonic()
        run = _crash_run(launcher, tiny_store("bert_st_mean"), tmp_path, seed=13, snapshot_interval_s=0.3)
        _stream_with_kills(run, cycles=20)
        _report("kills through python -m api.server", run.tally, started)
        assert run.tally.opened["snapshot"] > 0 and sum(run.tally.inflight.values()) > 0, run.tally
    finally:
        launcher.close()


def test_recreated_collection_never_loads_the_deleted_ones_snapshot(
    launcher: ForkLauncher, tiny_store: Callable[[str], Path], tmp_path: Path
) -> None:
    """A kill right after a collection delete commits leaves its snapshot folder behind; a new collection of
    the same name must not come up from it (its chunk ids would stay in the indexes, displacing live hits)."""
    run = _crash_run(launcher, tiny_store("bert_st_mean"), tmp_path, seed=14)
    _put(run, {f"c{i}": f"{QUERIES[i % 4]} moose" for i in range(20)})
    run.server.terminate()
    folder = run.server.data_dir / "indexes" / COLLECTION
    run.server.start()
    shutil.copytree(folder, tmp_path / "left-behind")
    with run.server.client() as client:
        assert client.delete(f"/v1/collections/{COLLECTION}").status_code == 200
        shutil.copytree(tmp_path / "left-behind", folder, dirs_exist_ok=True)  # the rmtree never ran
        assert client.post("/v1/collections", json=SPEC).status_code == 201
    run.states = dict.fromkeys(run.states)
    _put(run, {f"n{i}": f"{QUERIES[i % 4]} olive" for i in range(5)})
    run.server.kill()  # before any snapshot of the new collection (30 s interval)
    run._restart_and_verify([], expect_snapshot=False)
    run.server.terminate()
