"""A collection's in-memory indexes, derived from the store: the set of one index per family (`IndexSet`:
apply writes, replay the store's rows past a snapshot, rebuild, upgrade to a larger kind), its snapshots on
disk and the read/write lock searches and writes share.

May import: `retrieval.spec`, `retrieval.store`, `retrieval.common`, `retrieval.errors`, and `index`."""

from retrieval.indexes.index_set import Family, IndexSet, ReadWriteLock, load_index

__all__ = ["Family", "IndexSet", "ReadWriteLock", "load_index"]
