"""Schemathesis hooks (loaded with SCHEMATHESIS_HOOKS): a server-error check that knows vLLM's 501.

vLLM answers a task the model lacks ("The model does not support Classification API") with 501; that is a
documented, deliberate answer, not a crash. Every other 5xx fails.
"""

from __future__ import annotations

from typing import Any

import schemathesis


@schemathesis.check
def no_crash(ctx: Any, response: Any, case: Any) -> bool | None:
    status = response.status_code
    deliberate = status == 501 and "does not support" in response.text
    if status >= 500 and not deliberate:
        raise AssertionError(f"server error {status}: {response.text[:300]}")
    return None
