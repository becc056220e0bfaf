"""Small shared helpers every part of the service may use: which collections a scoped key reaches (`access`),
the nesting limit of request JSON (`json_depth`), Prometheus figures (`metrics`) and the rule for collection
and alias names (`names`).

May import: `retrieval.errors` only (and the standard library, prometheus-client). Import the submodules
directly; nothing is re-exported here."""

__all__: list[str] = []
