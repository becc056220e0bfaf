"""A reindex survives a real SIGKILL of the server: the source is untouched (every row as before), the alias
still names it, and the job resumes at the next start from its cursor, or, when the next start does not serve
the target's model, fails cleanly and deletes the half-built target."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.api._crash import ForkLauncher, ServerProcess
from tests.api.test_reindex import docs, wait_job

N = 400


def _rows(data_dir: Path) -> dict[str, Any]:
    """The source's rows and the aliases, read from the store file of a stopped server."""
    with sqlite3.connect(f"file:{data_dir / 'store.sqlite3'}?mode=ro", uri=True) as conn:
        return {
            "documents": conn.execute(
                "SELECT id, text, metadata, content_hash, seq FROM documents WHERE collection = 'src' ORDER BY id"
            ).fetchall(),
            "chunks": conn.execute(
                "SELECT chunk_id, key, seq, dense FROM chunks WHERE collection = 'src' ORDER BY chunk_id"
            ).fetchall(),
            "aliases": conn.execute("SELECT alias, collection FROM aliases").fetchall(),
        }


def _job_row(data_dir: Path, job_id: str) -> tuple[Any, ...]:
    with sqlite3.connect(f"file:{data_dir / 'store.sqlite3'}?mode=ro", uri=True) as conn:
        row: tuple[Any, ...] = conn.execute("SELECT state, done FROM reindex_jobs WHERE id = ?", (job_id,)).fetchone()
    return row


def _killed_mid_reindex(server: ServerProcess) -> tuple[str, dict[str, Any]]:
    """Fill `src` (alias `live`), start a reindex into `dst` over `tiny2`, SIGKILL the server halfway."""
    server.start()
    with server.client() as client:
        assert client.post("/v1/collections", json={"name": "src", "dense_model": "tiny"}).status_code == 201
        for start in range(0, N, 100):
            resp = client.post("/v1/collections/src/documents", json={"documents": docs(N)[start : start + 100]})
            assert resp.status_code == 200, resp.text
        alias = {"create_alias": {"alias_name": "live", "collection_name": "src"}}
        assert client.post("/v1/aliases", json={"actions": [alias]}).status_code == 200
    server.terminate()
    before = _rows(server.data_dir)
    server.start()
    with server.client() as client:
        body = {"target": "dst", "dense_model": "tiny2", "swap_alias": "live", "batch_size": 2}
        resp = client.post("/v1/collections/live/reindex", json=body)
        assert resp.status_code == 202, resp.text
        job_id = resp.json()["id"]
        deadline = time.monotonic() + 60
        while (job := client.get(f"/v1/jobs/{job_id}").json())["done"] < N // 10:
            assert job["state"] in ("queued", "running") and time.monotonic() < deadline, job
            time.sleep(0.005)
    server.kill()
    state, done = _job_row(server.data_dir, job_id)
    assert state == "running" and 0 < done < N, (state, done)
    assert _rows(server.data_dir) == before  # the source is untouched, the alias still names it
    return job_id, before


def test_sigkill_mid_reindex_then_the_job_resumes(
    fork_launcher: ForkLauncher, tiny_store: Callable[[str], Path], tmp_path: Path
) -> None:
    extra = (f"tiny2={tiny_store('xlmr_cls')}",)
    server = ServerProcess(fork_launcher, tiny_store("bert_st_mean"), tmp_path / "data", extra_models=extra)
    job_id, before = _killed_mid_reindex(server)
    server.start()
    try:
        with server.client() as client:
            job = wait_job(client, job_id)
            assert (job["state"], job["phase"], job["target"]) == ("done", "finished", "dst"), job
            live = client.get("/v1/collections/live").json()
            assert (live["name"], live["documents"], live["dense_model"]) == ("dst", N, "tiny2")
            for i in (0, 133, N - 1):
                resp = client.post("/v1/collections/live/search", json={"query": f"ud{i}x", "mode": "bm25", "top_k": 1})
                assert [h["id"] for h in resp.json()["data"]] == [f"d{i}"]
    finally:
        server.terminate()
    after = _rows(server.data_dir)
    assert after["aliases"] == [("live", "dst")]
    assert {k: v for k, v in after.items() if k != "aliases"} == {k: v for k, v in before.items() if k != "aliases"}


def test_sigkill_mid_reindex_then_a_start_without_its_model_fails_it_cleanly(
    fork_launcher: ForkLauncher, tiny_store: Callable[[str], Path], tmp_path: Path
) -> None:
    extra = (f"tiny2={tiny_store('xlmr_cls')}",)
    server = ServerProcess(fork_launcher, tiny_store("bert_st_mean"), tmp_path / "data", extra_models=extra)
    job_id, before = _killed_mid_reindex(server)
    server.extra_models = ()  # the next start serves `tiny` only
    server.start()
    try:
        with server.client() as client:
            job = wait_job(client, job_id)
            assert job["state"] == "failed" and "tiny2" in job["error"], job
            assert client.get("/v1/collections/dst").status_code == 404  # the half-built target is gone
            assert client.get("/v1/collections/live").json()["name"] == "src"
            hits = client.post("/v1/collections/live/search", json={"query": "ud7x", "mode": "bm25", "top_k": 1})
            assert [h["id"] for h in hits.json()["data"]] == ["d7"]
    finally:
        server.terminate()
    assert _rows(server.data_dir) == before
