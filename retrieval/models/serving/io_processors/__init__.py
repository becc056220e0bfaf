"""IO-processor plugins shipped with the service (registered as entry points in pyproject.toml)."""
