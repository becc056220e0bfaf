"""Every index family speaks the verbs of `index.Index`; something lacking one does not pass for an index."""

from __future__ import annotations

from index import BM25Index, DenseIndex, Index, MultiVectorIndex, SparseIndex


def test_every_family_is_an_index() -> None:
    for index in (DenseIndex(8), MultiVectorIndex(8), SparseIndex(), BM25Index()):
        assert isinstance(index, Index), type(index).__name__
        assert index.seq is None and len(index) == 0


def test_an_object_without_search_is_not_an_index() -> None:
    class NoSearch:
        seq = None

        def __len__(self) -> int:
            return 0

        def add(self, ids: object, items: object) -> None: ...

        def remove(self, ids: object) -> None: ...

        def save(self, directory: object, seq: object = None) -> None: ...

    assert not isinstance(NoSearch(), Index)
