"""How deeply JSON text nests, measured on the raw bytes before anything decodes it.

Decoders recurse once per level of nesting: 100,000 nested arrays (200 kB) exhaust Python's recursion limit inside
msgspec or `json` and surface as a `RecursionError`, a 500 in a server. Every JSON body and every JSON / JSON Lines
file is therefore measured first and refused past `MAX_JSON_DEPTH`, far below that limit and far above any real
request (a filter nested a dozen levels, multi-vectors at three). The measure is vectorised: string literals are
blanked with one regular expression (their brackets are text), then the running count of opening minus closing
brackets is taken over the bracket bytes only.
"""

from __future__ import annotations

import re

import numpy as np

from retrieval.errors import NestingTooDeepError

__all__ = ["MAX_JSON_DEPTH", "check_json_depth", "json_depth"]

MAX_JSON_DEPTH = 64  # deepest nesting of arrays and objects accepted in a JSON body or file
_STRING = re.compile(rb'"(?:[^"\\]++|\\.)*+"', re.DOTALL)  # a JSON string literal (possessive: linear time)
_STEP = np.zeros(256, np.int8)  # +1 for each byte that opens a level, -1 for each that closes one
_STEP[np.frombuffer(b"[{", np.uint8)] = 1
_STEP[np.frombuffer(b"]}", np.uint8)] = -1


def json_depth(data: bytes) -> int:
    """The deepest nesting of arrays and objects in JSON text `data` (0 for a scalar). Brackets inside strings do
    not count; text that is not valid JSON gets a number too (its decoder rejects it afterwards).

    >>> json_depth(b'{"a": [1, {"b": "[[[ not brackets"}], "c": {}}')
    3
    >>> json_depth(b"[" * 100_000 + b"]" * 100_000)
    100000
    >>> json_depth(b'"\\\\"[["')
    0
    """
    if data.count(b"[") + data.count(b"{") == 0:
        return 0
    text = _STRING.sub(b'""', data) if b'"' in data else data
    steps = _STEP[np.frombuffer(text, np.uint8)]
    return int(np.cumsum(steps[steps != 0], dtype=np.int32).max(initial=0))


def check_json_depth(data: bytes, *, param: str, what: str = "The JSON body", limit: int = MAX_JSON_DEPTH) -> None:
    """Raise `NestingTooDeepError` naming `what` and `param` when `data` nests deeper than `limit`.

    Cheap for the common case: a text with at most `limit` opening brackets cannot nest deeper, and counting them
    is one pass of `bytes.count` each.
    """
    if data.count(b"[") + data.count(b"{") <= limit:
        return
    depth = json_depth(data)
    if depth > limit:
        raise NestingTooDeepError(what, depth, limit, param=param)
