"""Client commands of the `retrieval` console script: `ingest` and `eval`, talking to a running server."""

from __future__ import annotations

__all__: list[str] = []
