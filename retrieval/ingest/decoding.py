"""Strict UTF-8 decoding of file bytes; a failure names the file and the byte offset of the first bad byte."""

from __future__ import annotations

import codecs

from retrieval.errors import CorruptFileError

__all__ = ["decode_utf8", "strip_bom"]


def strip_bom(data: bytes) -> tuple[bytes, int]:
    """``data`` without a leading UTF-8 byte-order mark, and how many bytes were removed (0 or 3).

    >>> strip_bom(b"\\xef\\xbb\\xbfhi")
    (b'hi', 3)
    """
    if data.startswith(codecs.BOM_UTF8):
        return data[len(codecs.BOM_UTF8) :], len(codecs.BOM_UTF8)
    return data, 0


def decode_utf8(name: str, data: bytes, *, offset: int = 0) -> str:
    """``data`` decoded as strict UTF-8, else :class:`CorruptFileError` naming ``name`` and the byte offset.

    ``offset`` is where ``data`` starts in the file, so offsets reported for a slice (a JSONL line, text after
    a BOM) are offsets in the whole file.

    >>> decode_utf8("a.txt", "héllo".encode())
    'héllo'
    >>> decode_utf8("a.txt", b"ok\\xff", offset=10)
    Traceback (most recent call last):
    ...
    retrieval.errors.CorruptFileError: `a.txt` is not UTF-8 text: byte 0xff at offset 12 (invalid start byte)
    """
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        where = offset + exc.start
        msg = f"`{name}` is not UTF-8 text: byte 0x{data[exc.start]:02x} at offset {where} ({exc.reason})"
        raise CorruptFileError(msg, param="file", received=name) from exc
