"""ISO-8601 dates and datetimes in metadata, as instants on one UTC time line (the range filters' dates).

Front matter dates are stored as ISO text (`2024-01-31`, `2024-01-31T09:30:00+02:00`). A range filter compares
them as points in time, by these rules (the same in Python and in SQLite: SQLite calls `instant_ms` itself,
registered on every store connection as the SQL function `iso_instant`, so both read a value identically):

* accepted text: `YYYY-MM-DD`, optionally followed by `T` (or a space) and `HH:MM`, `HH:MM:SS` or
  `HH:MM:SS.fraction` (1-9 digits, read to the millisecond, rounded down), optionally followed by `Z` or an
  offset `+HH:MM` / `-HH:MM`; the date must exist (no 2023-02-29). Anything else is not a date;
* a datetime with an offset is that instant; a datetime **without one is read as UTC**; a date is the instant
  its day starts, 00:00 UTC. Values compare in whole milliseconds since 1970-01-01T00:00Z;
* an **operand** that is a date stands for its whole day: `$gte 2024-01-31` from its start, `$gt` from the next
  day's start, `$lte` up to (not including) the next day's start, `$lt` up to its start. So
  `{"$gte": "2024-01-01", "$lte": "2024-01-31"}` is all of January, `2024-01-31T23:59` included; an operand
  that is a datetime compares as that instant.
"""

from __future__ import annotations

import datetime as dt
import re
import sqlite3
from dataclasses import dataclass

__all__ = ["SQL_FUNCTION", "Instant", "bound", "instant_ms", "parse_instant", "register"]

SQL_FUNCTION = "iso_instant"
"""The SQL name of :func:`instant_ms` on store connections."""

_ISO = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})"
    r"(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(Z|[+-]\d{2}:\d{2})?)?"
)
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_DAY_MS = 86_400_000


@dataclass(frozen=True)
class Instant:
    """A parsed ISO-8601 date or datetime."""

    ms: int  # milliseconds since 1970-01-01T00:00Z (a date: its day's start)
    whole_day: bool  # a date without a time: as a range operand it stands for the whole day


def _zone(text: str | None) -> dt.tzinfo:
    if text is None or text == "Z":
        return dt.UTC
    sign = -1 if text[0] == "-" else 1
    hours, minutes = int(text[1:3]), int(text[4:6])
    if hours > 23 or minutes > 59:
        raise ValueError(text)
    return dt.timezone(sign * dt.timedelta(hours=hours, minutes=minutes))


def parse_instant(text: str) -> Instant | None:
    """The instant `text` names, or None when it is not an accepted ISO-8601 date or datetime.

    >>> parse_instant("2024-01-31"), parse_instant("1970-01-01T00:00:01.9999Z")
    (Instant(ms=1706659200000, whole_day=True), Instant(ms=1999, whole_day=False))
    >>> parse_instant("1970-01-01T02:00+02:00").ms, parse_instant("2023-02-29"), parse_instant("2024-1-31")
    (0, None, None)
    """
    found = _ISO.fullmatch(text)
    if found is None:
        return None
    year, month, day, hour, minute, second, fraction, zone = found.groups()
    micro = int((fraction or "0")[:6].ljust(6, "0"))
    try:
        moment = dt.datetime(
            int(year),
            int(month),
            int(day),
            int(hour or 0),
            int(minute or 0),
            int(second or 0),
            micro,
            tzinfo=_zone(zone),
        )
    except ValueError:
        return None
    delta = moment - _EPOCH
    ms = delta.days * _DAY_MS + delta.seconds * 1000 + delta.microseconds // 1000
    return Instant(ms, hour is None)


def instant_ms(value: object) -> int | None:
    """Milliseconds since the epoch of an ISO-8601 text value; None for anything else (the SQL function)."""
    if not isinstance(value, str):
        return None
    found = parse_instant(value)
    return None if found is None else found.ms


def bound(op: str, operand: Instant) -> tuple[str, int]:
    """`value <op> operand` as `value_ms <sql_op> limit` (a date operand stands for its whole day).

    >>> day = parse_instant("2024-01-31")
    >>> [bound(op, day)[0] for op in ("$gt", "$gte", "$lt", "$lte")]
    ['>=', '>=', '<', '<']
    >>> bound("$lte", day)[1] - day.ms, bound("$lte", parse_instant("2024-01-31T00:00"))
    (86400000, ('<=', 1706659200000))
    """
    sql = {"$gt": ">", "$gte": ">=", "$lt": "<", "$lte": "<="}[op]
    if not operand.whole_day:
        return sql, operand.ms
    start, end = operand.ms, operand.ms + _DAY_MS
    return {"$gt": (">=", end), "$gte": (">=", start), "$lt": ("<", start), "$lte": ("<", end)}[op]


def register(conn: sqlite3.Connection) -> None:
    """Make `iso_instant(text)` available to SQL on `conn` (deterministic: usable in any query)."""
    conn.create_function(SQL_FUNCTION, 1, instant_ms, deterministic=True)
