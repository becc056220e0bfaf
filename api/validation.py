r"""Readable request validation errors: the full path of the field at fault and what it accepts.

msgspec says *what* is wrong (`Object contains unknown field \`txt\``, `Invalid enum value 'semantic'`) and
*where* (`$.documents[0]`); `explain` turns that into a message a client can act on, by walking the request type
along the path: an unknown field gets the path `documents[0].txt` and the nearest field name (`did you mean
\`text\`?`) with the fields that exist there, a value outside a closed set lists the values allowed. REST
validation errors (`api.errors`) and MCP tool arguments (`api.mcp`) both go through it.
"""

from __future__ import annotations

import difflib
import re
from typing import Any

import msgspec
from msgspec import inspect

__all__ = ["Explained", "explain", "split_error"]

_UNKNOWN = re.compile(r"Object contains unknown field `([^`]*)`")
_ENUM = re.compile(r"Invalid enum value (.+)$")
_AT = re.compile(r" - at `\$(.*)`$")
_SEGMENT = re.compile(r"\.([^.\[\]]+)|\[(\d+)\]")


class Explained(msgspec.Struct, frozen=True):
    """A validation error as a client sees it."""

    message: str  # what is wrong and what is allowed
    param: str | None  # the field's path, e.g. `documents[0].txt` (None: the body as a whole)


def split_error(error: str) -> tuple[str, str]:
    """msgspec's `"<what> - at `$<path>`"` -> (what, path without `$`); path "" when none is named.

    >>> split_error("Invalid enum value 'x' - at `$.mode`")
    ("Invalid enum value 'x'", '.mode')
    """
    found = _AT.search(error)
    return (error[: found.start()], found.group(1)) if found else (error, "")


def _segments(path: str) -> list[str | int]:
    return [name if name else int(index) for name, index in _SEGMENT.findall(path)]


def _dotted(segments: list[str | int]) -> str:
    out = ""
    for s in segments:
        out += f"[{s}]" if isinstance(s, int) else (f".{s}" if out else s)
    return out


def _step(node: Any, segment: str | int) -> Any:
    """The type one path segment below `node` (None when the path leaves the known types)."""
    node = _unwrap(node)
    if isinstance(segment, int) and isinstance(node, inspect.ListType | inspect.TupleType | inspect.VarTupleType):
        return getattr(node, "item_type", None)
    if isinstance(node, inspect.StructType) and isinstance(segment, str):
        return next((f.type for f in node.fields if f.encode_name == segment), None)
    if isinstance(node, inspect.DictType):
        return node.value_type
    return None


def _unwrap(node: Any) -> Any:
    """The one struct, list or closed set among a union's types (`X | None`), else the node itself."""
    if isinstance(node, inspect.UnionType):
        useful = [t for t in node.types if not isinstance(t, inspect.NoneType)]
        return useful[0] if len(useful) == 1 else node
    return node


def _at(root: type, segments: list[str | int]) -> Any:
    """The type at `segments` below `root` (None when it cannot be told)."""
    try:
        node: Any = inspect.type_info(root)
    except Exception:  # a type msgspec cannot describe: the message goes out as msgspec wrote it
        return None
    for segment in segments:
        if node is None:
            return None
        node = _step(node, segment)
    return _unwrap(node)


def _suggest(name: str, fields: list[str]) -> str:
    close = [f for f in fields if f.startswith(name) or name.startswith(f)] if name else []
    close = close or difflib.get_close_matches(name, fields, n=1, cutoff=0.6)
    return f"; did you mean `{close[0]}`?" if close else ""


def explain(error: str, root: type | None) -> Explained:
    """`error` (msgspec's message, with its `- at `$...`` suffix when it has one) about a request of type `root`
    (None: unknown) as a message naming the field's full path and what is allowed there: an unknown field `q`
    of a search is "... unknown field `q`; did you mean `query`? (fields: query, top_k, ...)" with param `q`,
    one inside the first document is param `documents[0].txt`; `"mode": "semantic"` lists the modes.
    """
    what, path = split_error(error)
    segments = _segments(path)
    unknown = _UNKNOWN.match(what)
    node = _at(root, segments) if root is not None else None
    if unknown:
        field = unknown.group(1)
        named = _dotted([*segments, field])
        if isinstance(node, inspect.StructType):
            names = [f.encode_name for f in node.fields]
            return Explained(f"{what}{_suggest(field, names)} (fields: {', '.join(names)})", named)
        return Explained(what, named)
    param = _dotted(segments) or None
    if _ENUM.match(what) and isinstance(node, inspect.LiteralType | inspect.EnumType):
        values = node.values if isinstance(node, inspect.LiteralType) else [m.value for m in node.cls]
        where = f" for `{param}`" if param else ""
        return Explained(f"{what}{where}; expected one of: {', '.join(str(v) for v in values)}", param)
    return Explained(f"{what} at `{param}`" if param else what, param)
