"""PDF pages as page images, for a collection whose multi-vector model reads images: render each page in a
worker process with time limits (`render`, `render_worker`), embed windows of pages and commit them with
their image files (`pipeline`), and uploads of PDFs that become page images (`uploads`).

May import: the rest of `retrieval.ingest`, `retrieval.spec`, `retrieval.store`, `retrieval.common`,
`retrieval.errors`. Import the submodules directly."""

__all__: list[str] = []
