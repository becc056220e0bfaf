"""Schemathesis hooks (loaded with SCHEMATHESIS_HOOKS): a server-error check that knows vLLM's 501, and a
check that no error body shows a traceback or a source file, and the archive body of the import route sent as bytes.

vLLM answers a task the model lacks ("The model does not support Classification API") with 501; that is a
documented, deliberate answer, not a crash. Every other 5xx fails.
"""

from __future__ import annotations

import re
from typing import Any

import schemathesis


@schemathesis.check
def no_crash(ctx: Any, response: Any, case: Any) -> bool | None:
    status = response.status_code
    deliberate = status == 501 and "does not support" in response.text
    if status >= 500 and not deliberate:
        raise AssertionError(f"server error {status}: {response.text[:300]}")
    return None


# `POST /v1/collections/import` takes a tar archive (`format: binary`): sent as raw bytes, like octet-stream
schemathesis.serializer.alias("application/x-tar", "application/octet-stream")

_INTERNALS = re.compile(r"Traceback \(most recent call last\)|File \"[^\"]+\.py\"|/[\w.-]+/[\w/.-]+\.py\b")


@schemathesis.check
def no_internals_in_errors(ctx: Any, response: Any, case: Any) -> bool | None:
    if response.status_code >= 400 and _INTERNALS.search(response.text):
        raise AssertionError(f"error body shows server internals: {response.text[:300]}")
    return None
