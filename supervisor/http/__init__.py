"""The HTTP API, served by h11 inside the supervisor loop (docs/http-api.md)."""
