"""IO-processor plugins shipped with the service (registered as entry points in pyproject.toml).

May import: `retrieval.models.serving`, `encoder`, `retrieval.errors`."""
