"""Markdown front matter: a leading ``---`` YAML block (Jekyll, Hugo, Obsidian) read into metadata.

The block is YAML read by PyYAML's safe loader (no object construction), bounded before anything is built:
at most `MAX_BYTES` of YAML, `MAX_DEPTH` levels of nesting (checked on the parser's events, so nesting never
reaches the recursive composer) and `MAX_ALIASES` aliases; the loaded value may expand (aliases are shared, not
copied, until the metadata is made JSON) to at most `MAX_VALUES` values, so an alias bomb is refused while it is
being walked. Lists and maps stay lists and maps (filters match arrays by element), dates become ISO-8601
strings, keys become strings. A block that is not valid YAML, or is over a bound, raises `CorruptFileError`
naming the file: a per-file error, never a hang. A block holding something other than a map (a paragraph
between two thematic breaks) is not front matter, and the text comes back whole.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import yaml

from retrieval.errors import CorruptFileError

__all__ = ["MAX_ALIASES", "MAX_BYTES", "MAX_DEPTH", "MAX_VALUES", "split_front_matter"]

MAX_BYTES = 64 * 1024  # YAML text of one front matter block
MAX_DEPTH = 32  # nesting of maps and lists
MAX_ALIASES = 256  # `*alias` references
MAX_VALUES = 10_000  # values (scalars, maps, lists) once aliases are expanded
_INT64 = (-(2**63), 2**63 - 1)
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml's parser when PyYAML was built with it
_OPENS = (yaml.MappingStartEvent, yaml.SequenceStartEvent)
_CLOSES = (yaml.MappingEndEvent, yaml.SequenceEndEvent)


def _block(text: str) -> tuple[str, str] | None:
    """(the YAML between a first ``---`` line and the next ``---`` or ``...`` line, the text after it)."""
    lines = text.splitlines(keepends=True)
    if not lines or lines[0].rstrip() != "---":
        return None
    for i, line in enumerate(lines[1:], start=1):
        if line.strip() in ("---", "..."):
            return "".join(lines[1:i]), "".join(lines[i + 1 :])
    return None


def _bad(name: str, what: str) -> CorruptFileError:
    return CorruptFileError(f"`{name}`: front matter {what}", param="file", received=name)


def _check_events(name: str, block: str) -> None:
    """Depth and alias bounds, on the parser's event stream (iterative: deep nesting cannot recurse)."""
    depth = aliases = 0
    for event in yaml.parse(block, Loader=_Loader):
        if isinstance(event, _OPENS):
            depth += 1
            if depth > MAX_DEPTH:
                raise _bad(name, f"nests deeper than {MAX_DEPTH} levels")
        elif isinstance(event, _CLOSES):
            depth -= 1
        elif isinstance(event, yaml.AliasEvent):
            aliases += 1
            if aliases > MAX_ALIASES:
                raise _bad(name, f"has more than {MAX_ALIASES} aliases")


class _Converter:
    """The loaded YAML as JSON values, counting every value visited (aliases expand here)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.left = MAX_VALUES

    def __call__(self, value: object) -> Any:
        self.left -= 1
        if self.left < 0:
            raise _bad(self.name, f"expands to more than {MAX_VALUES} values (aliases referring to aliases?)")
        if isinstance(value, dict):
            return {self._key(k): self(v) for k, v in value.items()}
        if isinstance(value, list | set | tuple):
            return [self(v) for v in value]
        return self._scalar(value)

    def _key(self, key: object) -> str:
        if isinstance(key, dict | list | set | tuple):
            raise _bad(self.name, "has a key that is a map or a list")
        if isinstance(key, bool):
            return "true" if key else "false"
        return key if isinstance(key, str) else str(self._scalar(key))

    def _scalar(self, value: object) -> Any:
        if isinstance(value, dt.date):  # datetime too
            return value.isoformat()
        if isinstance(value, float) and not math.isfinite(value):
            raise _bad(self.name, f"holds {value}, which JSON metadata cannot store")
        if isinstance(value, int) and not isinstance(value, bool) and not _INT64[0] <= value <= _INT64[1]:
            return str(value)  # beyond 64 bits: kept exactly, as text
        if isinstance(value, bytes):
            raise _bad(self.name, "holds binary data (!!binary)")
        return value


def split_front_matter(text: str, name: str = "text") -> tuple[dict[str, Any], str]:
    """A leading YAML front matter block of ``text`` as metadata, and the text after it; ``name`` (the file) is
    what errors name.

    >>> split_front_matter("---\\ntitle: Notes\\ntags: [a, b]\\ndate: 2024-05-01\\n---\\n# Body\\n")
    ({'title': 'Notes', 'tags': ['a', 'b'], 'date': '2024-05-01'}, '# Body\\n')
    >>> split_front_matter("---\\nA paragraph between two rules.\\n---\\nx")  # not a map: not front matter
    ({}, '---\\nA paragraph between two rules.\\n---\\nx')
    """
    found = _block(text)
    if found is None:
        return {}, text
    block, rest = found
    if len(block.encode("utf-8", "surrogatepass")) > MAX_BYTES:
        raise _bad(name, f"is over the limit of {MAX_BYTES} bytes")
    try:
        _check_events(name, block)
        value = yaml.load(block, Loader=_Loader)  # a safe loader: plain data, never objects
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 2}" if mark is not None else ""  # +1: 1-based, +1: the opening ---
        problem = getattr(exc, "problem", None) or str(exc)
        raise _bad(name, f"is not valid YAML{where}: {problem}") from exc
    if value is None:
        return {}, rest
    if not isinstance(value, dict):
        return {}, text
    return _Converter(name)(value), rest
