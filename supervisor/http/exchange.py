"""One HTTP exchange as the routes see it: a parsed ``Request`` in, a ``Response`` out.

Its own module so that the routes and what they consult (``supervisor.http.auth``) share
these types without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import parse_qs, unquote, urlsplit

import h11


@dataclass(frozen=True, slots=True)
class Request:
    method: str
    target: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes

    @classmethod
    def from_h11(cls, event: h11.Request, body: bytes) -> Request:
        target = event.target.decode("latin-1")
        parts = urlsplit(target)
        query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in event.headers}
        return cls(
            event.method.decode("ascii", "replace").upper(),
            target,
            unquote(parts.path),
            query,
            headers,
            body,
        )


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    body: bytes
    content_type: str = "application/json"
    headers: list[tuple[str, str]] = field(default_factory=list)
