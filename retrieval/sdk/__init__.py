"""The two Python surfaces with the same methods: `RetrievalClient` (a running server over HTTP, `client`)
and `LocalRetrieval` (the service in this process, `local`).

May import: `retrieval.reindex.job`, `retrieval.service` and everything below them; never `cli`. Import the
submodules directly (`retrieval.RetrievalClient` loads only the HTTP client)."""

__all__: list[str] = []
