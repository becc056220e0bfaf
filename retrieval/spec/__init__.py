"""What a collection is, before anything is stored or searched: its settings (`collection`: `CollectionSpec`,
the create and update requests, their checks), the fusion settings it keeps as defaults (`fusion`), the served
engines of its representations (`encoders`) and what it can do without a model that is not served
(`availability`).

May import: `retrieval.store` (the stored vector kinds), `retrieval.models`, `retrieval.config`,
`retrieval.common`, `retrieval.errors`, and `encoder` / `index` for their public types. Import the
submodules directly."""

__all__: list[str] = []
