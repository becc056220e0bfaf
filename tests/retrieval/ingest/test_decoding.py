"""Strict UTF-8 (retrieval/ingest/decoding.py): BOM handling and errors that name the file and the byte offset."""

from __future__ import annotations

import pytest

from retrieval.errors import CorruptFileError
from retrieval.ingest.decoding import decode_utf8, strip_bom


def test_bom_is_stripped_once() -> None:
    assert strip_bom(b"\xef\xbb\xbf\xef\xbb\xbfx") == (b"\xef\xbb\xbfx", 3)
    assert strip_bom(b"plain") == (b"plain", 0) and strip_bom(b"") == (b"", 0)


@pytest.mark.parametrize(
    ("data", "offset", "message"),
    [
        (b"ab\xc3", 0, r"byte 0xc3 at offset 2 \(unexpected end of data\)"),
        ("é".encode() + b"\x80", 100, r"byte 0x80 at offset 102 \(invalid start byte\)"),
        (b"\xed\xa0\x80", 3, r"byte 0xed at offset 3"),  # an encoded surrogate is not UTF-8
    ],
)
def test_bad_bytes_name_the_file_and_the_offset_in_it(data: bytes, offset: int, message: str) -> None:
    with pytest.raises(CorruptFileError, match=r"^`notes\.txt` is not UTF-8 text: " + message) as err:
        decode_utf8("notes.txt", data, offset=offset)
    assert (err.value.param, err.value.received) == ("file", "notes.txt")
    assert decode_utf8("x", "日本".encode()) == "日本"
