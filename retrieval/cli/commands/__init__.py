"""The commands of the `retrieval` console script other than `serve`, one module each: `ingest`, `eval`,
`tune`, `load`, `export` / `import`, `reindex` / `aliases` talk to a running server through the HTTP client;
`backup` copies a data directory; `embed` runs a Ray Data job. Each is imported only when it runs.

May import: anything in `retrieval` (lazily where heavy)."""

from __future__ import annotations

__all__: list[str] = []
