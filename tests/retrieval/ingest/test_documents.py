"""content_hash: canonical (key order, process), sensitive to every covered field, pinned for stored hashes."""

from __future__ import annotations

import math

import pytest

from retrieval.errors import InvalidRequestError
from retrieval.ingest.documents import SourceDocument, content_hash

DOC = SourceDocument(
    id="d1", text="Grüße, world", metadata={"b": [1, 2.5], "a": {"z": None, "y": True}}, source="notes/a.md", page=3
)

# Stored hashes compare against this: a change here means every stored document looks changed on re-ingest
# (bump documents.HASH_VERSION deliberately if the encoding must change).
PINNED = "34728bce4d60f43498abaabffd73bb9f1d67a335f65327d9439940215e40f0cf"


def test_key_order_and_id_do_not_matter() -> None:
    shuffled = SourceDocument(
        id="other",
        text=DOC.text,
        metadata={"a": {"y": True, "z": None}, "b": [1, 2.5]},
        source=DOC.source,
        page=DOC.page,
    )
    assert content_hash(shuffled) == content_hash(DOC)


@pytest.mark.parametrize(
    "changed",
    [
        SourceDocument("d1", "Grüße, world!", DOC.metadata, DOC.source, DOC.page),
        SourceDocument("d1", DOC.text, {"b": [1, 2.5], "a": {"z": None, "y": False}}, DOC.source, DOC.page),
        SourceDocument("d1", DOC.text, DOC.metadata, "notes/b.md", DOC.page),
        SourceDocument("d1", DOC.text, DOC.metadata, None, DOC.page),
        SourceDocument("d1", DOC.text, DOC.metadata, DOC.source, 4),
        SourceDocument("d1", DOC.text, DOC.metadata, DOC.source, None),
    ],
)
def test_every_covered_field_changes_the_hash(changed: SourceDocument) -> None:
    assert content_hash(changed) != content_hash(DOC)


def test_vectors_bytes_are_covered() -> None:
    base = content_hash(DOC)
    assert content_hash(DOC, vectors=b"\x00\x01") not in (base, content_hash(DOC, vectors=b"\x00\x02"))
    assert content_hash(DOC, vectors=b"\x00\x01") == content_hash(DOC, vectors=b"\x00\x01")
    assert content_hash(DOC, vectors=b"") != base


def test_pinned_value() -> None:
    # A fixed input gives a fixed hex in every process (json with sorted keys, no hash randomisation).
    assert content_hash(DOC) == PINNED


@pytest.mark.parametrize("bad", [{"x": math.nan}, {"x": [math.inf]}, {"x": object()}, {1: "a", "b": 2}])
def test_non_json_metadata_is_a_typed_error(bad: dict) -> None:
    with pytest.raises(InvalidRequestError) as err:
        content_hash(SourceDocument("d", "t", bad))
    assert err.value.param == "metadata"


def test_lone_surrogates_hash() -> None:
    assert len(content_hash(SourceDocument("d", "a\ud800b"))) == 64
