"""The one rule for names a client gives: collections, aliases, backup folders (and so import names and reindex
targets, which are collection names). Matched over the WHOLE string (`re.fullmatch`): a `$` anchor would let a
trailing newline through, and such a name breaks headers (an export's Content-Disposition) and folder names.
"""

from __future__ import annotations

import re

from retrieval.errors import InvalidRequestError

__all__ = ["NAME_PATTERN", "check_name", "is_name"]

NAME_PATTERN = "[A-Za-z0-9][A-Za-z0-9_.-]{0,127}"  # a letter or digit, then letters, digits, `_`, `.`, `-`
_NAME = re.compile(NAME_PATTERN)


def is_name(name: object) -> bool:
    """Whether `name` is a valid name, whole.

    >>> is_name("docs-v2"), is_name("docs\\n"), is_name("../x"), is_name(""), is_name("a" * 129)
    (True, False, False, False, False)
    """
    return isinstance(name, str) and _NAME.fullmatch(name) is not None


def check_name(name: str, what: str, param: str) -> str:
    """`name` itself, or InvalidRequestError (400) naming `param`; `what` says what it names ("a collection")."""
    if not is_name(name):
        raise InvalidRequestError(
            f"{what} must start with a letter or digit and use only letters, digits, '_', '.', '-' (<= 128)",
            param=param,
            received=str(name)[:130],
            allowed=NAME_PATTERN,
        )
    return name
