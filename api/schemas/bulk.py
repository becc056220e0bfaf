"""`POST /v1/collections/{name}/bulk`: a server-side path (JSON) or an Arrow IPC stream body, and the report."""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec

if TYPE_CHECKING:
    from retrieval.bulk import BulkReport

__all__ = ["ARROW_STREAM", "BulkRequest", "BulkResponse", "RejectedRow", "bulk_response"]

ARROW_STREAM = "application/vnd.apache.arrow.stream"  # the IANA media type of an Arrow IPC stream


class BulkRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Load files the server can read: Parquet (what `retrieval embed` writes), JSON Lines or Arrow IPC."""

    path: str  # file or folder relative to the server's `bulk_root`
    trust_vectors: bool = False  # load vectors whose model record is missing or names another model
    batch_documents: int = 10_000  # documents per store transaction
    id_column: str | None = None  # document id column; default doc_id, id or _id
    dense_column: str = "dense"  # dense vector column


class RejectedRow(msgspec.Struct, frozen=True):
    """One input row that was left out."""

    row: int  # 0-based input row, counted across every file in order
    id: str | None  # its document id, if it has one
    param: str  # the field at fault (id, text, vectors.dense, ...)
    message: str  # why


class BulkResponse(msgspec.Struct, frozen=True):
    """Answered once every batch is committed and indexed."""

    documents: int  # documents written (new or changed)
    unchanged: int  # documents already stored with the same content
    chunks: int  # chunks written
    encoded: int  # documents encoded on the way in (representations the input had no vectors for)
    batches: int  # store transactions
    rows: int  # input rows read
    failed: int  # rows left out (all of them)
    rejected: list[RejectedRow]  # the first 1000 rows left out, with the reason
    seq: int  # store sequence number of the last batch
    seconds: float  # wall time of the load


def bulk_response(report: BulkReport) -> BulkResponse:
    rejected = [RejectedRow(e.row, e.id, e.param, e.message) for e in report.rejected]
    return BulkResponse(
        report.documents,
        report.unchanged,
        report.chunks,
        report.encoded,
        report.batches,
        report.rows,
        report.failed,
        rejected,
        report.seq,
        round(report.seconds, 3),
    )
