"""Metadata filters in the Pinecone/Chroma operator form: parse, evaluate in Python, compile to SQLite.

Grammar (RETRIEVAL_API.md, "Filters")::

    filter  := {}                                   (matches every document)
             | {"$and": [filter, ...]} | {"$or": [filter, ...]}
             | {"<field>": scalar}                  (equality)
             | {"<field>": {"<op>": value, ...}}    (several operators are and-ed)
             | {key: ..., key: ...}                 (several keys are and-ed)
    op      := $eq | $ne | $gt | $gte | $lt | $lte | $in | $nin

A field name is a dotted path into the metadata (``"a.b"`` is ``metadata["a"]["b"]``). Scalars are str, int
(64-bit), finite float, bool and None; range operators take a number, or an ISO-8601 date or datetime
(``"2024-01-31"``, ``"2024-01-31T09:30:00+02:00"``). :func:`matches` is the reference semantics and
:func:`compile_filter` gives the same answers in SQLite:

* a **missing** field (or a path through a non-object) fails ``$eq``, the ranges and ``$in``, and **matches**
  ``$ne`` and ``$nin`` ("is not x" holds for a document without the field), as in Chroma and MongoDB;
* ints and floats compare numerically (``1 == 1.0``); bools are not numbers (``True != 1``); a string never
  equals or orders against a number; ``None`` equals only a JSON ``null``;
* an **array** field matches when any of its elements does (MongoDB's rule): ``{"tags": "a"}`` and
  ``{"tags": {"$in": ["a", "b"]}}`` match ``{"tags": ["a", "c"]}``, ``$ne``/``$nin`` match when no element
  does, a range holds when some numeric element satisfies it (elements that are arrays or objects never match);
* an object field value equals no scalar (it fails ``$eq``/``$in``, matches ``$ne``/``$nin``);
* a date range compares ISO-8601 text values as instants on the UTC time line (`retrieval.store.dates`: an offset
  is honoured, a datetime without one is UTC, a date is its day from 00:00 UTC, and a date operand stands for its
  whole day); values that are not such text -- numbers included -- never order against a date, as numbers never
  order against text. Equality stays exact: ``{"day": "2024-01-31"}`` matches that text only.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias, cast, get_args

from retrieval.errors import InvalidFilterError
from retrieval.store.dates import SQL_FUNCTION, Instant, bound, instant_ms, parse_instant

__all__ = [
    "And",
    "Compare",
    "CompareOp",
    "Filter",
    "Membership",
    "MembershipOp",
    "Or",
    "Scalar",
    "compile_filter",
    "matches",
    "parse_filter",
]

CompareOp = Literal["$eq", "$ne", "$gt", "$gte", "$lt", "$lte"]
"""Operators comparing a field with one value; the last four take a number or an ISO-8601 date or datetime."""

MembershipOp = Literal["$in", "$nin"]
"""Operators testing a field against a list of values."""

Scalar: TypeAlias = str | int | float | bool | None
"""A filter value (JSON scalar)."""

_RANGE_OPS = ("$gt", "$gte", "$lt", "$lte")
_FIELD_OPS = (*get_args(CompareOp), *get_args(MembershipOp))
_LOGICAL_OPS = ("$and", "$or")
_SCALAR_TYPES = "str, int, float, bool, null"
_INT64 = (-(2**63), 2**63 - 1)
_MAX_DEPTH = 32
_SQL_RANGE = {"$gt": ">", "$gte": ">=", "$lt": "<", "$lte": "<="}
_MISSING = object()


@dataclass(frozen=True)
class Compare:
    """``field <op> value``."""

    field: str  # dotted path as the client wrote it, e.g. "a.b"
    op: CompareOp  # the operator
    value: Scalar  # the operand (a number, or ISO-8601 date text, for the range operators)

    @property
    def path(self) -> tuple[str, ...]:
        """The keys to follow into the metadata."""
        return tuple(self.field.split("."))


@dataclass(frozen=True)
class Membership:
    """``field $in [values]`` or ``field $nin [values]``."""

    field: str  # dotted path as the client wrote it
    op: MembershipOp  # "$in" or "$nin"
    values: tuple[Scalar, ...]  # the candidates (may be empty: $in matches nothing, $nin everything)

    @property
    def path(self) -> tuple[str, ...]:
        """The keys to follow into the metadata."""
        return tuple(self.field.split("."))


@dataclass(frozen=True)
class And:
    """Every clause holds; no clauses matches everything (the empty filter ``{}``)."""

    clauses: tuple[Filter, ...]  # sub-filters


@dataclass(frozen=True)
class Or:
    """At least one clause holds (never empty after parsing)."""

    clauses: tuple[Filter, ...]  # sub-filters, at least one


Filter: TypeAlias = Compare | Membership | And | Or
"""A parsed filter."""


# ---------------------------------------------------------------------------------------------- parsing


def _fail(field: str, message: str, received: object, allowed: object) -> InvalidFilterError:
    return InvalidFilterError(
        f"Filter on `{field}`: {message}", param=f"filter.{field}", received=received, allowed=allowed
    )


def _clean_text(text: str) -> bool:
    """No NUL (SQLite's JSON functions cut text there) and no lone surrogate (not encodable as UTF-8)."""
    return "\x00" not in text and not any("\ud800" <= c <= "\udfff" for c in text)


def _check_field(field: str) -> None:
    bad_char = any(c in field for c in '"\\') or any(ord(c) < 0x20 for c in field) or not _clean_text(field)
    if not field or field.startswith("$") or "" in field.split(".") or bad_char:
        raise _fail(
            field,
            "a field name is a non-empty dotted path of keys, not starting with `$`, without "
            "empty keys, quotes, backslashes or control characters.",
            field,
            "field names like `a` or `a.b`",
        )


def _scalar(field: str, value: object, op: str) -> Scalar:
    """Validate an equality / membership operand."""
    ok = value is None or isinstance(value, str | bool)
    ok = ok or (isinstance(value, int) and _INT64[0] <= value <= _INT64[1])
    ok = ok or (isinstance(value, float) and math.isfinite(value))
    if not ok:
        raise _fail(
            field,
            f"`{op}` takes a scalar ({_SCALAR_TYPES}; ints within 64 bits, finite floats); got {type(value).__name__}.",
            value,
            _SCALAR_TYPES,
        )
    if isinstance(value, str) and not _clean_text(value):
        raise _fail(field, "strings must be valid Unicode without NUL characters.", value, "strings without NUL")
    return cast(Scalar, value)


def _operator(field: str, op: str, value: object) -> Filter:
    if op not in _FIELD_OPS:
        hint = "" if op.startswith("$") else f" (a nested key is written as a dotted path: `{field}.{op}`)"
        raise _fail(
            field, f"unknown operator `{op}`; allowed operators: {', '.join(_FIELD_OPS)}{hint}.", op, list(_FIELD_OPS)
        )
    if op in ("$in", "$nin"):
        if not isinstance(value, list):
            raise _fail(
                field,
                f"`{op}` takes a list of scalars; got {type(value).__name__}.",
                value,
                f"a list of {_SCALAR_TYPES}",
            )
        return Membership(field, cast(MembershipOp, op), tuple(_scalar(field, v, op) for v in value))
    if op in _RANGE_OPS and not _orderable(value):
        raise _fail(
            field,
            f"`{op}` takes a number (int or float, not bool) or an ISO-8601 date or datetime (2024-01-31, "
            f"2024-01-31T09:30:00Z, 2024-01-31T09:30+02:00); got {_shown(value)}.",
            value,
            "int, float, ISO-8601 date or datetime",
        )
    return Compare(field, cast(CompareOp, op), _scalar(field, value, op))


def _orderable(value: object) -> bool:
    """A range operand: a number (not bool), or text that is an ISO-8601 date or datetime."""
    if isinstance(value, str):
        return parse_instant(value) is not None
    return isinstance(value, int | float) and not isinstance(value, bool)


def _shown(value: object) -> str:
    return repr(value) if isinstance(value, str) else type(value).__name__


def _field(field: str, spec: object) -> Filter:
    _check_field(field)
    if not isinstance(spec, dict):
        if isinstance(spec, list):
            raise _fail(field, 'a list is not a value; use {"$in": [...]}.', spec, _SCALAR_TYPES)
        return Compare(field, "$eq", _scalar(field, spec, "$eq"))
    if not spec:
        raise _fail(field, f"an operator object needs at least one of {', '.join(_FIELD_OPS)}.", spec, list(_FIELD_OPS))
    parts = tuple(_operator(field, str(op), value) for op, value in spec.items())
    return parts[0] if len(parts) == 1 else And(parts)


def _logical(op: str, value: object, depth: int) -> Filter:
    if op not in _LOGICAL_OPS:
        raise _fail(
            op, f"unknown logical operator `{op}`; allowed: $and, $or (or a field name).", op, list(_LOGICAL_OPS)
        )
    if not isinstance(value, list) or not value:
        raise _fail(op, f"`{op}` takes a non-empty list of filters.", value, "a non-empty list of filters")
    clauses = tuple(_parse(item, depth + 1) for item in value)
    return And(clauses) if op == "$and" else Or(clauses)


def _parse(raw: object, depth: int) -> Filter:
    if depth > _MAX_DEPTH:
        raise InvalidFilterError(
            f"Filter is nested deeper than {_MAX_DEPTH} levels.", param="filter", received=depth, allowed=_MAX_DEPTH
        )
    if not isinstance(raw, dict):
        raise InvalidFilterError(
            f"A filter is a JSON object; got {type(raw).__name__}.", param="filter", received=raw, allowed="object"
        )
    parts = tuple(
        _logical(key, value, depth) if str(key).startswith("$") else _field(str(key), value)
        for key, value in raw.items()
    )
    return parts[0] if len(parts) == 1 else And(parts)


def parse_filter(raw: object) -> Filter:
    """Validate a decoded JSON filter and return its typed form.

    Raises:
        InvalidFilterError: ``param="filter.<field>"`` (or ``"filter.$and"`` ...) naming the field, with the
            allowed operators or types; ``param="filter"`` when ``raw`` is not an object or nests too deep.

    >>> parse_filter({"year": {"$gte": 2020}, "lang": "en"})
    And(clauses=(Compare(field='year', op='$gte', value=2020), Compare(field='lang', op='$eq', value='en')))
    """
    return _parse(raw, 0)


# ---------------------------------------------------------------------------------------------- Python


def _lookup(metadata: Mapping[str, Any], path: tuple[str, ...]) -> object:
    value: object = metadata
    for key in path:
        if not isinstance(value, Mapping) or key not in value:
            return _MISSING
        value = value[key]
    return value


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _kind(value: object) -> str:
    if value is None or isinstance(value, bool | str):
        return type(value).__name__
    return "number" if _is_number(value) else "other"


def _equal(value: object, operand: Scalar) -> bool:
    return _kind(value) == _kind(operand) != "other" and value == operand


def _candidates(value: object) -> list[object]:
    """The values a field's leaf tests look at: an array's elements, or the value itself (none when missing)."""
    if value is _MISSING:
        return []
    return value if isinstance(value, list) else [value]


def _orders(value: object, op: str, operand: Scalar) -> bool:
    if isinstance(operand, str):  # a date: ISO text values only, as instants (retrieval.store.dates)
        ms = instant_ms(value)
        if ms is None:
            return False
        sql_op, limit = bound(op, cast(Instant, parse_instant(operand)))
        return {">": ms > limit, ">=": ms >= limit, "<": ms < limit, "<=": ms <= limit}[sql_op]
    if not _is_number(value):
        return False  # a string, bool, null or nested value never orders against a number
    a, b = cast(float, value), cast(float, operand)
    return {"$gt": a > b, "$gte": a >= b, "$lt": a < b, "$lte": a <= b}[op]


def _compare(f: Compare, metadata: Mapping[str, Any]) -> bool:
    values = _candidates(_lookup(metadata, f.path))
    if f.op in ("$eq", "$ne"):
        found = any(_equal(v, f.value) for v in values)
        return found if f.op == "$eq" else not found
    return any(_orders(v, f.op, f.value) for v in values)


def matches(f: Filter, metadata: Mapping[str, Any]) -> bool:
    """Whether one document's metadata satisfies the filter (the reference semantics; see the module doc).

    >>> f = parse_filter({"year": {"$gte": 2020}, "lang": {"$in": ["en", "fr"]}})
    >>> matches(f, {"year": 2021, "lang": "fr"}), matches(f, {"year": 2021.5}), matches(f, {"year": True})
    (True, False, False)
    >>> matches(parse_filter({"tag": {"$ne": "x"}}), {})  # a missing field matches $ne
    True
    >>> matches(parse_filter({"tags": {"$in": ["a"]}}), {"tags": ["b", "a"]})  # any element of an array
    True
    """
    if isinstance(f, And):
        return all(matches(c, metadata) for c in f.clauses)
    if isinstance(f, Or):
        return any(matches(c, metadata) for c in f.clauses)
    if isinstance(f, Membership):
        found = any(_equal(value, v) for value in _candidates(_lookup(metadata, f.path)) for v in f.values)
        return found if f.op == "$in" else not found
    return _compare(f, metadata)


# ---------------------------------------------------------------------------------------------- SQLite


def _json_path(path: tuple[str, ...]) -> str:
    """SQLite JSON path with every key quoted: ("a", "b c") -> '$."a"."b c"' (keys never hold `"` or `\\`)."""
    return "$" + "".join(f'."{key}"' for key in path)


_ValueTest = Callable[[str, str, list[object]], tuple[str, list[object]]]
"""(SQL of a JSON value's type, SQL of its value, the parameters each of them takes) -> a test and its params."""


def _in_test(values: tuple[Scalar, ...]) -> _ValueTest:
    """A test that one JSON value equals one of ``values`` (by the rules of :func:`matches`)."""

    def test(typ: str, val: str, args: list[object]) -> tuple[str, list[object]]:
        terms: list[str] = []
        params: list[object] = []
        for kind, is_kind in (("str", f"{typ} = 'text'"), ("number", f"{typ} IN ('integer', 'real')")):
            group = [v for v in values if _kind(v) == kind]
            if group:
                terms.append(f"({is_kind} AND {val} IN ({', '.join('?' * len(group))}))")
                params += [*args, *args, *group]
        for constant, json_type in ((None, "null"), (True, "true"), (False, "false")):
            if any(v is constant for v in values):
                terms.append(f"{typ} = '{json_type}'")
                params += args
        return ("(" + " OR ".join(terms) + ")" if terms else "0"), params

    return test


def _range_test(op: str, operand: Scalar) -> _ValueTest:
    """A test that one JSON value is a number (or, for a date operand, ISO text) in relation ``op`` to ``operand``."""
    if isinstance(operand, str):
        sql_op, limit = bound(op, cast(Instant, parse_instant(operand)))

        def dated(typ: str, val: str, args: list[object]) -> tuple[str, list[object]]:
            return f"({typ} = 'text' AND {SQL_FUNCTION}({val}) {sql_op} ?)", [*args, *args, limit]

        return dated

    def test(typ: str, val: str, args: list[object]) -> tuple[str, list[object]]:
        return f"({typ} IN ('integer', 'real') AND {val} {_SQL_RANGE[op]} ?)", [*args, *args, operand]

    return test


def _sql_any(column: str, path: str, test: _ValueTest) -> tuple[str, list[object]]:
    """1 when the field's value, or any element of it when it is an array, passes ``test``."""
    scalar, scalar_params = test(f"json_type({column}, ?)", f"json_extract({column}, ?)", [path])
    element, element_params = test("_el.type", "_el.value", [])
    array = f"json_type({column}, ?) = 'array' AND EXISTS (SELECT 1 FROM json_each({column}, ?) AS _el WHERE {element})"
    return f"({scalar} OR ({array}))", [*scalar_params, path, path, *element_params]


def _sql_leaf(f: Compare | Membership, column: str) -> tuple[str, list[object]]:
    path = _json_path(f.path)
    if isinstance(f, Compare) and f.op in _SQL_RANGE:
        return _sql_any(column, path, _range_test(f.op, f.value))
    values = f.values if isinstance(f, Membership) else (f.value,)
    found, params = _sql_any(column, path, _in_test(values))
    if f.op in ("$eq", "$in"):
        return found, params
    return f"(json_type({column}, ?) IS NULL OR NOT {found})", [path, *params]


def compile_filter(f: Filter, column: str = "metadata") -> tuple[str, list[object]]:
    """A SQLite ``WHERE`` fragment over a JSON text column, plus its parameters, equivalent to :func:`matches`.

    Field paths travel as parameters (``json_extract(metadata, ?)`` with ``'$."a"."b"'``), so no client text
    is ever part of the SQL; ``column`` is the caller's own identifier. The column must hold JSON written
    without escaping non-ASCII characters (``msgspec.json`` or ``json.dumps(..., ensure_ascii=False)``):
    SQLite matches path keys against the raw key text. A NULL column behaves as empty metadata.

    >>> sql, params = compile_filter(parse_filter({"a.b": {"$gt": 1}}), column="m")
    >>> sql.split(" OR ")[0]  # the value itself; the rest tests each element when it is an array (json_each)
    "((json_type(m, ?) IN ('integer', 'real') AND json_extract(m, ?) > ?)"
    >>> params
    ['$."a"."b"', '$."a"."b"', 1, '$."a"."b"', '$."a"."b"', 1]
    """
    if isinstance(f, And | Or):
        if not f.clauses:
            return "1", []
        parts = [compile_filter(c, column) for c in f.clauses]
        joiner = " AND " if isinstance(f, And) else " OR "
        return "(" + joiner.join(sql for sql, _ in parts) + ")", [p for _, params in parts for p in params]
    return _sql_leaf(f, column)
