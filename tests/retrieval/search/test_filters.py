"""Metadata filters: examples per operator and error, and SQLite (`compile_filter`) agreeing with `matches`."""

from __future__ import annotations

import datetime as dt
import doctest
import sqlite3
from collections.abc import Iterator
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from retrieval.errors import InvalidFilterError
from retrieval.search import filters
from retrieval.search.filters import And, Compare, Membership, Or, compile_filter, matches, parse_filter
from retrieval.store import dates

DOCS: dict[int, dict[str, Any]] = {
    1: {"year": 2021, "lang": "en", "score": 0.5, "draft": False, "tags": ["a", "c", 7, ["x"], {"a": 1}]},
    2: {"year": 2019.0, "lang": "fr", "score": 1, "draft": True, "meta": {"src": "pubmed", "n": 3}, "tags": []},
    3: {"year": "2020", "lang": None, "draft": 1},
    4: {},
    5: {"year": True, "lang": "en", "meta": "flat"},
    7: {"day": "2024-01-31", "at": "2024-01-31T23:30:00+00:00", "seen": ["2023-12-31", "not a date"]},
    8: {"day": "2024-02-01", "at": "2024-02-01T01:00:00+02:00", "seen": ["2024-03-05T10:00"]},
    9: {"day": "2023-02-29", "at": "2024-01-31T12:00:00.250", "seen": 20240131},  # no such day; a number
    10: {"day": 1706659200000, "at": "2024-01-31 12:00"},  # a number is never a date
}


def _connect() -> sqlite3.Connection:
    """An in-memory database with the store's `iso_instant` function, as every store connection has."""
    conn = sqlite3.connect(":memory:")
    dates.register(conn)
    return conn


@pytest.fixture(scope="module")
def db() -> Iterator[sqlite3.Connection]:
    conn = _connect()
    conn.execute("CREATE TABLE docs (id INTEGER, metadata TEXT)")
    conn.executemany("INSERT INTO docs VALUES (?, ?)", [(i, msgspec.json.encode(m).decode()) for i, m in DOCS.items()])
    conn.execute("INSERT INTO docs VALUES (6, NULL)")  # no metadata at all behaves as {}
    yield conn
    conn.close()


def both(db: sqlite3.Connection, raw: object) -> set[int]:
    """Ids selected by the Python reference, checked equal to the ids SQLite selects."""
    f = parse_filter(raw)
    py = {i for i, m in {**DOCS, 6: {}}.items() if matches(f, m)}
    sql, params = compile_filter(f)
    assert {row[0] for row in db.execute(f"SELECT id FROM docs WHERE {sql}", params)} == py
    return py


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"lang": "en"}, {1, 5}),
        ({"lang": {"$eq": "en"}}, {1, 5}),
        ({"lang": None}, {3}),  # null equals only null, never a missing field
        ({"lang": {"$ne": "en"}}, {2, 3, 4, 6}),  # a missing field matches $ne
        ({"lang": {"$ne": None}}, {1, 2, 4, 5, 6}),
        ({"year": 2019}, {2}),  # int and float compare numerically
        ({"year": {"$gt": 2019}}, {1}),  # the string "2020" and True never order against numbers
        ({"year": {"$gte": 2019}}, {1, 2}),
        ({"year": {"$lt": 2021}}, {2}),
        ({"year": {"$lte": 2021.0}}, {1, 2}),
        ({"year": {"$gt": 2000, "$lt": 2020}}, {2}),  # several operators are and-ed
        ({"draft": True}, {2}),  # True is not 1
        ({"draft": 1}, {3}),
        ({"draft": False}, {1}),
        ({"score": {"$in": [1.0, "x"]}}, {2}),
        ({"lang": {"$in": ["fr", None]}}, {2, 3}),
        ({"lang": {"$in": []}}, set()),
        ({"lang": {"$nin": ["en"]}}, {2, 3, 4, 6}),  # a missing field matches $nin
        ({"lang": {"$nin": []}}, {1, 2, 3, 4, 5, 6}),
        ({"meta.src": "pubmed"}, {2}),  # dotted path = nested key
        ({"meta.src": {"$ne": "pubmed"}}, {1, 3, 4, 5, 6}),  # "flat".src is missing
        ({"meta.n": {"$gte": 3}}, {2}),
        ({"tags": "a"}, {1}),  # an array matches when one of its elements does
        ({"tags": {"$ne": "a"}}, {2, 3, 4, 5, 6}),  # ... and $ne when none does (the empty array too)
        ({"tags": {"$in": ["z", "c"]}}, {1}),
        ({"tags": {"$nin": ["c"]}}, {2, 3, 4, 5, 6}),
        ({"tags": 7.0}, {1}),
        ({"tags": {"$gt": 5}}, {1}),  # a range holds when a numeric element satisfies it
        ({"tags": {"$lt": 5}}, set()),
        ({"tags": "x"}, set()),  # elements that are arrays or objects never match
        ({"tags.a": 1}, set()),
        ({"meta": {"$nin": ["flat"]}}, {1, 2, 3, 4, 6}),
        ({"lang": "en", "year": 2021}, {1}),  # several fields are and-ed
        ({"$and": [{"lang": "en"}, {"year": True}]}, {5}),
        ({"$or": [{"lang": "fr"}, {"year": "2020"}]}, {2, 3}),
        ({"$or": [{"$and": [{"lang": "en"}, {"draft": False}]}, {"meta.n": 3}]}, {1, 2}),
        ({}, {1, 2, 3, 4, 5, 6}),
    ],
)
def test_operators(db: sqlite3.Connection, raw: object, expected: set[int]) -> None:
    assert both(db, raw) - {7, 8, 9, 10} == expected  # (the date documents hold none of these fields)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"day": {"$gte": "2024-01-01"}}, {7, 8}),  # ISO text only: not the impossible 2023-02-29, not a number
        ({"day": {"$gte": "2024-01-01", "$lte": "2024-01-31"}}, {7}),  # a date operand is its whole day
        ({"at": {"$lte": "2024-01-31"}}, {7, 8, 9, 10}),  # ... so 23:30 that day is "<= 2024-01-31"
        ({"at": {"$gt": "2024-01-31"}}, set()),  # and "> 2024-01-31" starts the next day (8 is 23:00Z the 31st)
        ({"at": {"$lt": "2024-01-31T23:00Z"}}, {9, 10}),  # 8 is 2024-01-31T23:00Z: not before it
        ({"at": {"$gte": "2024-01-31T23:00:00+00:00"}}, {7, 8}),
        ({"at": {"$gt": "2024-01-31T12:00:00.249Z"}}, {7, 8, 9}),  # a datetime without offset is UTC; ms count
        ({"at": {"$gt": "2024-01-31T14:00+02:00"}}, {7, 8, 9}),  # 12:00Z, and 9 is 12:00:00.250Z
        ({"seen": {"$lt": "2024-01-01"}}, {7}),  # an array: some element, text elements only
        ({"seen": {"$gte": "2024-03-05T09:00Z", "$lt": "2024-03-06"}}, {8}),
        ({"day": "2024-01-31"}, {7}),  # equality stays exact text equality
        ({"year": {"$gt": "2000-01-01"}}, set()),  # numbers never order against a date
    ],
)
def test_date_ranges(db: sqlite3.Connection, raw: object, expected: set[int]) -> None:
    assert both(db, raw) == expected


def test_parsed_shapes() -> None:
    assert parse_filter({"a": 1}) == Compare("a", "$eq", 1)
    assert parse_filter({"a.b": {"$in": [1, "x"]}}) == Membership("a.b", "$in", (1, "x"))
    assert parse_filter({"a": {"$gt": 1, "$lt": 5}}) == And((Compare("a", "$gt", 1), Compare("a", "$lt", 5)))
    assert parse_filter({"$or": [{"a": 1}, {}]}) == Or((Compare("a", "$eq", 1), And(())))
    assert Compare("a.b.c", "$eq", 1).path == ("a", "b", "c")


@pytest.mark.parametrize(
    ("raw", "param", "in_message"),
    [
        ({"year": {"$regex": "x"}}, "filter.year", "$eq, $ne, $gt, $gte, $lt, $lte, $in, $nin"),
        ({"year": {"gt": 1}}, "filter.year", "`year.gt`"),
        ({"year": {}}, "filter.year", "at least one"),
        ({"lang": {"$in": "en"}}, "filter.lang", "list"),
        ({"lang": {"$nin": {"en": 1}}}, "filter.lang", "list"),
        ({"lang": {"$in": [["en"]]}}, "filter.lang", "scalar"),
        ({"lang": ["en", "fr"]}, "filter.lang", "$in"),
        ({"lang": {"$eq": {"x": 1}}}, "filter.lang", "scalar"),
        ({"year": {"$gt": "2020"}}, "filter.year", "ISO-8601 date"),
        ({"day": {"$gte": "2024-02-30"}}, "filter.day", "ISO-8601 date"),
        ({"day": {"$gte": "31/01/2024"}}, "filter.day", "'31/01/2024'"),
        ({"year": {"$lte": True}}, "filter.year", "not bool"),
        ({"year": {"$gte": None}}, "filter.year", "number"),
        ({"year": 2**63}, "filter.year", "64 bits"),
        ({"year": float("nan")}, "filter.year", "finite"),
        ({"year": {"$lt": float("inf")}}, "filter.year", "finite"),
        ({"name": "a\x00b"}, "filter.name", "NUL"),
        ({"name": {"$in": ["ok", "\ud800"]}}, "filter.name", "valid Unicode"),
        ({"\udfff": 1}, "filter.\udfff", "dotted path"),
        ({"$and": []}, "filter.$and", "non-empty list"),
        ({"$or": {"a": 1}}, "filter.$or", "non-empty list"),
        ({"$not": [{"a": 1}]}, "filter.$not", "$and, $or"),
        ({"$and": [{"a": {"$bad": 1}}]}, "filter.a", "$bad"),
        ({"a..b": 1}, "filter.a..b", "dotted path"),
        ({"a.": 1}, "filter.a.", "dotted path"),
        ({"": 1}, "filter.", "dotted path"),
        ({'a"b': 1}, 'filter.a"b', "quotes"),
        ({"a\\b": 1}, "filter.a\\b", "backslashes"),
        ([{"a": 1}], "filter", "object"),
        ("a = 1", "filter", "object"),
    ],
)
def test_errors_name_the_field(raw: object, param: str, in_message: str) -> None:
    with pytest.raises(InvalidFilterError) as err:
        parse_filter(raw)
    assert err.value.param == param
    assert in_message in err.value.message
    field = param.removeprefix("filter").removeprefix(".")
    assert f"`{field}`" in err.value.message or param == "filter"


def test_too_deep() -> None:
    raw: dict = {"a": 1}
    for _ in range(40):
        raw = {"$and": [raw]}
    with pytest.raises(InvalidFilterError) as err:
        parse_filter(raw)
    assert err.value.param == "filter"


def test_field_names_never_reach_the_sql(db: sqlite3.Connection) -> None:
    name = "x'); DROP TABLE docs; --"
    sql, params = compile_filter(parse_filter({name: {"$ne": 1}}))
    assert "DROP" not in sql and f'$."{name}"' in params
    assert {row[0] for row in db.execute(f"SELECT id FROM docs WHERE {sql}", params)} == {
        1,
        2,
        3,
        4,
        5,
        6,
        *range(7, 11),
    }


def test_non_ascii_keys_and_values(db: sqlite3.Connection) -> None:
    conn = _connect()
    conn.execute("CREATE TABLE docs (id INTEGER, metadata TEXT)")
    conn.execute("INSERT INTO docs VALUES (1, ?)", (msgspec.json.encode({"éte": {"ü b": "naïve ☃"}}).decode(),))
    sql, params = compile_filter(parse_filter({"éte.ü b": "naïve ☃"}))
    assert conn.execute(f"SELECT id FROM docs WHERE {sql}", params).fetchall() == [(1,)]
    conn.close()


# ------------------------------------------------------------------------------- property: SQLite == Python

KEYS = ["a", "b", "é", "c d"]
SMALL = st.sampled_from([None, True, False, 0, 1, -0.0, 1.0, 2.5, "", "x", "1"])
WIDE = st.one_of(
    st.integers(-(2**63), 2**63 - 1),
    st.sampled_from([1e300, 2.0**53, 2**53 + 1, 2.0**63, 2**63 - 1]),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=4),
)
_OFFSETS = st.sampled_from(["", "", "Z", "+00:00", "+02:00", "-05:30", "+14:00"])


def _iso(moment: dt.datetime, form: str, sep: str, offset: str) -> str:
    """ISO-8601 text of `moment` at one precision (a date has no offset)."""
    if form == "date":
        return moment.date().isoformat()
    spec = {"minutes": "minutes", "seconds": "seconds", "ms": "milliseconds", "us": "microseconds"}[form]
    return moment.isoformat(sep=sep, timespec=spec) + offset


DATE_TEXT = st.one_of(
    st.sampled_from(["2024-01-31", "2024-01-31T00:00", "2024-01-31T23:59:59.999Z", "2024-02-01", "2023-02-29"]),
    st.builds(
        _iso,
        st.datetimes(dt.datetime(1969, 12, 30), dt.datetime(2030, 12, 31)),
        st.sampled_from(["date", "minutes", "seconds", "ms", "us"]),
        st.sampled_from(["T", " "]),
        _OFFSETS,
    ),
)
DATE_OPERANDS = DATE_TEXT.filter(lambda text: dates.parse_instant(text) is not None)
SCALARS = st.one_of(SMALL, SMALL, SMALL, WIDE, DATE_TEXT)  # mostly a small pool, so that equalities happen
FILTER_SCALARS = SCALARS
VALUES = SCALARS | st.recursive(
    SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=2), st.dictionaries(st.sampled_from(KEYS), inner, max_size=3)),
    max_leaves=6,
)
METADATA = st.dictionaries(st.sampled_from(KEYS), VALUES, min_size=1, max_size=4)
FIELDS = st.one_of(st.sampled_from(KEYS), st.lists(st.sampled_from(KEYS), min_size=2, max_size=2).map(".".join))
NUMBERS = st.one_of(
    st.sampled_from([0, 1, -0.0, 0.5, 2.5]),
    st.sampled_from([0, 1, -0.0, 0.5, 2.5]),
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([2.0**53, 2**53 + 1, 2.0**63, 2**63 - 1]),
)
OPERATOR = st.one_of(
    st.tuples(st.sampled_from(["$eq", "$ne"]), FILTER_SCALARS),
    st.tuples(st.sampled_from(["$gt", "$gte", "$lt", "$lte"]), st.one_of(NUMBERS, DATE_OPERANDS)),
    st.tuples(st.sampled_from(["$in", "$nin"]), st.lists(FILTER_SCALARS, max_size=6)),
)
FIELD_FILTER = st.one_of(
    st.dictionaries(FIELDS, FILTER_SCALARS, min_size=1, max_size=1),
    st.dictionaries(FIELDS, st.lists(OPERATOR, min_size=1, max_size=2).map(dict), min_size=1, max_size=1),
)
RAW_FILTERS = st.recursive(
    FIELD_FILTER,
    lambda inner: st.builds(
        lambda op, items: {op: items}, st.sampled_from(["$and", "$or"]), st.lists(inner, min_size=1, max_size=3)
    ),
    max_leaves=4,
)


@pytest.fixture(scope="module")
def scratch() -> Iterator[sqlite3.Connection]:
    conn = _connect()
    conn.execute("CREATE TABLE docs (id INTEGER, metadata TEXT)")
    yield conn
    conn.close()


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(docs=st.lists(METADATA, min_size=4, max_size=12), raw=RAW_FILTERS)
def test_sqlite_agrees_with_python(scratch: sqlite3.Connection, docs: list[dict], raw: dict) -> None:
    scratch.execute("DELETE FROM docs")
    scratch.executemany(
        "INSERT INTO docs VALUES (?, ?)", [(i, msgspec.json.encode(m).decode()) for i, m in enumerate(docs)]
    )
    f = parse_filter(raw)
    sql, params = compile_filter(f)
    selected = {row[0] for row in scratch.execute(f"SELECT id FROM docs WHERE {sql}", params)}
    assert selected == {i for i, m in enumerate(docs) if matches(f, m)}


def test_doctests() -> None:
    assert doctest.testmod(filters).failed == 0
