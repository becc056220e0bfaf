"""Bulk loading: Parquet / JSON Lines / Arrow IPC rows into a collection in large transactions, with a
per-row report and a check of which model made the vectors. Needs pyarrow; never Ray (the files may come
from `retrieval.distributed.embed_dataset` on a cluster, or from anywhere else).

May import: `retrieval.ingest`, `retrieval.indexes`, `retrieval.spec`, `retrieval.store` and below; never
`handle`, `sharding` or above.
"""

from __future__ import annotations

from retrieval.bulk.columns import records_table
from retrieval.bulk.loader import BulkOptions, BulkReport, BulkTarget, bulk_load, check_inputs
from retrieval.bulk.provenance import PROVENANCE_KEY, Provenance, VectorProvenanceError, as_metadata, fingerprint_for
from retrieval.bulk.rows import RowError
from retrieval.bulk.source import BULK_SUFFIXES, BulkInput, open_inputs, open_stream_file

__all__ = [
    "BULK_SUFFIXES",
    "PROVENANCE_KEY",
    "BulkInput",
    "BulkOptions",
    "BulkReport",
    "BulkTarget",
    "Provenance",
    "RowError",
    "VectorProvenanceError",
    "as_metadata",
    "bulk_load",
    "check_inputs",
    "fingerprint_for",
    "open_inputs",
    "open_stream_file",
    "records_table",
]
