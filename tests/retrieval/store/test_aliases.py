"""Aliases in the store: Qdrant's actions in one transaction, one namespace with collections, removal with their
collection; and the reads a reindex job scans with."""

from __future__ import annotations

import pytest

from retrieval.errors import AliasExistsError, AliasNotFoundError, CollectionNotFoundError
from retrieval.store import Store
from retrieval.store.aliases import CreateAlias, DeleteAlias, RenameAlias
from tests.retrieval.store._docs import make_doc


def test_actions_apply_in_order_all_or_none(store: Store) -> None:
    store.create_collection("d", {})
    assert store.aliases.apply([CreateAlias("a", "c"), CreateAlias("b", "c")]) == {"a": "c", "b": "c"}
    assert store.aliases.apply([DeleteAlias("a"), CreateAlias("a", "d"), RenameAlias("b", "bb")]) == {
        "a": "d",
        "bb": "c",
    }
    with pytest.raises(AliasNotFoundError) as err:
        store.aliases.apply([DeleteAlias("bb"), DeleteAlias("missing")])
    assert err.value.param == "actions[1].delete_alias.alias_name"
    assert store.aliases.all() == {"a": "d", "bb": "c"}  # the first action was rolled back


def test_one_namespace_with_collections(store: Store) -> None:
    with pytest.raises(AliasExistsError):
        store.aliases.apply([CreateAlias("c", "c")])
    store.aliases.apply([CreateAlias("a", "c")])
    with pytest.raises(AliasExistsError):
        store.create_collection("a", {})
    with pytest.raises(AliasExistsError):
        store.aliases.apply([RenameAlias("a", "c")])
    with pytest.raises(CollectionNotFoundError):
        store.aliases.apply([CreateAlias("x", "nope")])


def test_deleting_a_collection_deletes_its_aliases(store: Store) -> None:
    store.create_collection("d", {})
    store.aliases.apply([CreateAlias("a", "c"), CreateAlias("b", "d")])
    store.delete_collection("c")
    assert store.aliases.all() == {"b": "d"}


def test_documents_after_scans_in_seq_order_and_missing_from_diffs_ids(store: Store) -> None:
    for n in range(5):
        store.write("c", [make_doc(n)])
    store.write("c", [make_doc(1, version=1)])  # rewritten: now the latest
    seen, seq, last = [], 0, ""
    while batch := store.documents_after("c", seq, last, 2):
        seen += [d.id for d in batch]
        seq, last = batch[-1].seq, batch[-1].id
    assert seen == ["d0", "d2", "d3", "d4", "d1"]
    store.create_collection("t", {})
    store.write("t", [make_doc(n) for n in range(7)])
    assert store.missing_from("t", "c") == ["d5", "d6"]
    chunks = store.document_chunks("c", ["d1", "d9"], vectors=["dense"])
    assert list(chunks) == ["d1"] and all(c.dense is not None for c in chunks["d1"])


def test_reindex_job_rows(store: Store) -> None:
    store.create_collection("t", {})
    job = store.reindex_jobs.insert("j1", "c", "t", {"target": "t", "swap_alias": "live"}, 10)
    assert (job.state, job.phase, job.done, job.total, job.request["swap_alias"]) == ("queued", "copy", 0, 10, "live")
    store.reindex_jobs.progress("j1", state="running", done=4, cursor_seq=7, cursor_id="d3")
    assert [r.id for r in store.reindex_jobs.unfinished()] == ["j1"]
    store.reindex_jobs.finish("j1", "live", "t")  # the alias swap and the job's end: one transaction
    assert store.aliases.all() == {"live": "t"}
    done = store.reindex_jobs.get("j1")
    assert (done.state, done.phase, done.cursor_id, done.finished_at is not None) == ("done", "finished", "d3", True)
    assert store.reindex_jobs.unfinished() == []
