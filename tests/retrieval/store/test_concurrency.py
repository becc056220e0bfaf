"""Readers on several threads while one thread writes: no errors, no torn reads, seq never goes back."""

from __future__ import annotations

import threading
from pathlib import Path

from retrieval.store import Store
from tests.retrieval.store._docs import doc_id, make_doc, n_chunks

N_DOCS = 8
N_WRITES = 30


def _expected_chunks(v: int) -> int:
    return sum(n_chunks(i, v) for i in range(N_DOCS))


def test_readers_never_see_a_partial_write(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "s.db")
    store.create_collection("c", {})
    store.write("c", [make_doc(i, 0) for i in range(N_DOCS)])
    done = threading.Event()
    failures: list[BaseException] = []
    seen_versions: set[int] = set()

    def writer() -> None:
        try:
            for v in range(1, N_WRITES + 1):
                store.write("c", [make_doc(i, v) for i in range(N_DOCS)])
        except BaseException as e:
            failures.append(e)
        finally:
            done.set()

    def reader(worker: int) -> None:
        last = 0
        try:
            while not done.is_set():
                seq = store.last_seq()
                assert seq >= last
                last = seq
                row = store.get_collection("c")
                # one snapshot: the chunk total must be that of a single version of every document
                assert row.documents == N_DOCS and row.chunks in {_expected_chunks(v) for v in range(N_WRITES + 1)}
                doc = store.get_document("c", doc_id(worker % N_DOCS))
                version = int(doc.content_hash.split(":")[1])
                assert len(doc.chunk_keys) == n_chunks(worker % N_DOCS, version)
                rows = [r for b in store.iter_chunks("c", after_seq=seq - 1, batch=5) for r in b]
                assert all(r.seq >= seq for r in rows)
                seen_versions.add(version)
        except BaseException as e:
            failures.append(e)

    threads = [threading.Thread(target=writer)] + [threading.Thread(target=reader, args=(k,)) for k in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    store.close()
    assert not failures, failures
    assert len(seen_versions) > 1  # the readers really ran while the writer wrote


def test_writes_from_several_threads_are_serialised(tmp_path: Path) -> None:
    with Store.open(tmp_path / "s.db") as store:
        store.create_collection("c", {})
        results: list[int] = []
        lock = threading.Lock()

        def write(k: int) -> None:
            for j in range(5):
                seq = store.write("c", [make_doc(100 * k + j)]).seq
                with lock:
                    results.append(seq)

        threads = [threading.Thread(target=write, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert sorted(results) == list(range(2, 22))  # seq 1 created the collection; no seq given twice
        assert store.get_collection("c").documents == 20
