"""msgspec request/response structs of the HTTP API."""
