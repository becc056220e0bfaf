"""Crash consistency of the real server process (issue 11, item 1), checked against a numpy reference.

A collection with dense, multi-vector and BM25 indexes takes a stream of upserts and deletes with client
vectors from two writers while the server snapshots its indexes every 50 ms; the server is SIGKILLed at seeded
random moments (every other kill waits for a snapshot file being written), restarted on the same data
directory, and everything it answers is compared with the reference of acknowledged writes
(`_vector_crash.check`). The fast variant runs 25 kills; the `slow` one 200. A damaged snapshot (bytes
flipped, truncated, another format version, a file missing) is detected, never served, and rebuilt.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api._crash import CrashDriver, ForkLauncher, ServerProcess
from tests.api._vector_crash import COLLECTION, MV_MODEL, SPEC, Op, Tally, VectorWriter, check

FAMILIES = ("dense", "multivector", "bm25")
SNAPSHOT_INTERVAL_S = 0.05


def _server(launcher: ForkLauncher, tiny_store: Callable[[str], Path], root: Path) -> ServerProcess:
    extra = (f"{MV_MODEL}={tiny_store('hf_colbert')}",)
    config = {"snapshot_interval_s": SNAPSHOT_INTERVAL_S}
    return ServerProcess(launcher, tiny_store("bert_st_mean"), root / "data", config, extra_models=extra)


def _family_files(data_dir: Path) -> dict[str, tuple[set[str], set[str]]]:
    """Family -> (files its manifest names, files present) in the collection's snapshot folders."""
    out = {}
    for family in FAMILIES:
        folder = data_dir / "indexes" / COLLECTION / family
        present = {p.name for p in folder.iterdir()} if folder.is_dir() else set()
        named: set[str] = set()
        if "manifest.json" in present:
            manifest = json.loads((folder / "manifest.json").read_text())
            named = {e["file"] for e in manifest["files"].values()}
            named |= {manifest["meta"].get("tokens", {}).get("file", "")}  # the compressed kind's token file
        out[family] = (named, present)
    return out


def _leftovers(data_dir: Path) -> set[str]:
    """Files a save in progress has written and no manifest names yet (temporary files included)."""
    return {f"{fam}/{n}" for fam, (named, present) in _family_files(data_dir).items() for n in present - named} - {
        f"{fam}/manifest.json" for fam in FAMILIES
    }


def _saving(data_dir: Path) -> bool:
    return any(".tmp-" in name for name in _leftovers(data_dir))


class Crasher(CrashDriver):
    """One data directory through a succession of killed server processes (vector writes, numpy reference)."""

    def __init__(self, server: ServerProcess, seed: int, spec: dict[str, Any] = SPEC) -> None:
        super().__init__(server, seed, spec, Tally())

    def cycle(self, during_save: bool) -> None:
        """Stream writes, SIGKILL (given `during_save`, at the first moment a snapshot file is being written,
        within a second), restart, check against the reference."""
        stop = threading.Event()
        writers = [
            VectorWriter(self.server.url, f"w{k}", self.states, self.rng.getrandbits(32), stop) for k in range(2)
        ]
        for writer in writers:
            writer.start()
        time.sleep(self.rng.uniform(0.05, 0.5))
        deadline = time.monotonic() + 1.0
        while during_save and not _saving(self.server.data_dir) and time.monotonic() < deadline:
            time.sleep(0.0005)
        self.server.kill()
        pending: list[Op] = self.join_writers(writers)
        left = _leftovers(self.server.data_dir)
        self.tally.mid_file += any(".tmp-" in name for name in left)
        self.tally.mid_save += any(".tmp-" not in name for name in left)
        self.server.start()
        self.tally.opened[self.server.opened(COLLECTION).how] += 1
        assert not left & _leftovers(self.server.data_dir), left  # the debris was removed at open
        with self.server.client() as client:
            check(client, self.states, pending, self.rng, self.tally)
        self.tally.cycles += 1


@pytest.mark.parametrize(
    "cycles",
    [pytest.param(25, id="25"), pytest.param(200, id="200", marks=[pytest.mark.slow, pytest.mark.timeout(3600)])],
)
def test_sigkill_cycles_match_the_numpy_reference(
    fork_launcher: ForkLauncher, tiny_store: Callable[[str], Path], tmp_path: Path, cycles: int
) -> None:
    started = time.monotonic()
    run = Crasher(_server(fork_launcher, tiny_store, tmp_path), seed=1100 + cycles)
    run.begin()
    for k in range(cycles):
        run.cycle(during_save=k % 2 == 1)
    run.server.terminate()
    tally = run.tally
    print(f"\ncrash consistency: {tally} in {time.monotonic() - started:.1f} s")
    assert tally.cycles == cycles and tally.acked_ops >= cycles, tally
    assert tally.checked_present > 0 and tally.checked_absent > 0 and tally.searches >= 3 * cycles, tally
    assert tally.mid_file + tally.mid_save > 0, tally  # some kills landed inside a snapshot save
    assert tally.opened["snapshot"] >= cycles // 2, tally  # a half-written save never spoils the previous one


COMPRESSED = {**SPEC, "index": {"multivector": {"kind": "compressed", "dtype": "float32"}}}


def test_sigkill_cycles_with_the_compressed_multivector_index(
    fork_launcher: ForkLauncher, tiny_store: Callable[[str], Path], tmp_path: Path
) -> None:
    """The compressed kind (codes in RAM, token vectors in an append-only file that snapshots reference by length
    and checksum) under the same kills: every acknowledged document is found with its exact MaxSim score, the token
    file grows in place across snapshots and restarts (rows past a snapshot are cut, the store replays them)."""
    run = Crasher(_server(fork_launcher, tiny_store, tmp_path), seed=1300, spec=COMPRESSED)
    run.begin()
    for k in range(10):
        run.cycle(during_save=k % 2 == 1)
    run.server.terminate()
    tally = run.tally
    assert tally.cycles == 10 and tally.acked_ops >= 10 and tally.checked_present > 0, tally
    assert tally.opened["snapshot"] >= 5, tally
    folder = run.server.data_dir / "indexes" / COLLECTION / "multivector"
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["meta"]["config"]["kind"] == "compressed"
    assert [p.name for p in folder.glob("tokens.*.f16")] == [manifest["meta"]["tokens"]["file"]]


def _flip(path: Path) -> None:
    data = bytearray(path.read_bytes())
    for i in range(len(data) // 2, min(len(data), len(data) // 2 + 8)):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _other_version(manifest: Path) -> None:
    body = json.loads(manifest.read_text())
    manifest.write_text(json.dumps({**body, "format_version": body["format_version"] + 1}))


def _largest(folder: Path) -> Path:
    return max((p for p in folder.iterdir() if p.name != "manifest.json"), key=lambda p: p.stat().st_size)


DAMAGES: list[tuple[str, str, Callable[[Path], None]]] = [
    ("flipped", "dense", lambda folder: _flip(_largest(folder))),
    ("truncated", "multivector", lambda folder: _truncate(_largest(folder))),
    ("other format version", "bm25", lambda folder: _other_version(folder / "manifest.json")),
    ("file missing", "multivector", lambda folder: _largest(folder).unlink()),
]


def _rebuilds(client: httpx.Client) -> float:
    """`retrieval_index_opens_total{how="rebuild"}` of the collection, from /metrics."""
    line = f'retrieval_index_opens_total{{collection="{COLLECTION}",how="rebuild"}} '
    found = [row for row in client.get("/metrics").text.splitlines() if row.startswith(line)]
    return float(found[0].removeprefix(line)) if found else 0.0


def test_damaged_snapshot_is_rebuilt_never_served(
    fork_launcher: ForkLauncher, tiny_store: Callable[[str], Path], tmp_path: Path
) -> None:
    """Each restart starts from the complete snapshots its predecessor wrote at shutdown, with one damaged."""
    run = Crasher(_server(fork_launcher, tiny_store, tmp_path), seed=1200)
    run.begin()
    run.cycle(during_save=False)  # some acknowledged history, checked once
    for damage, family, harm in DAMAGES:
        run.server.terminate()  # the shutdown writes complete snapshots
        folder = run.server.data_dir / "indexes" / COLLECTION / family
        harm(folder)
        run.server.start()
        log = run.server.log_text()
        assert run.server.opened(COLLECTION).how == "rebuild", (damage, log[-3000:])
        assert f"snapshot {folder} is unusable" in log, (damage, log[-3000:])
        with run.server.client() as client:
            assert _rebuilds(client) == 1.0, damage
            check(client, run.states, [], run.rng, run.tally)  # the rebuilt indexes answer as the reference
    run.server.terminate()
