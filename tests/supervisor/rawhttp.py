"""One HTTP request on a fresh connection, with or without the supervisor's token.

``supervisor.client.Client`` is what applications use; tests that check status codes,
headers, methods like HEAD or deliberately wrong tokens speak HTTP through this instead.
"""

from __future__ import annotations

import http.client
import json
from dataclasses import dataclass
from typing import Any

from supervisor.testing import SupervisorThread


@dataclass(frozen=True)
class Reply:
    status: int
    headers: dict[str, str]  # lower-case names
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def request(
    sv: SupervisorThread,
    method: str,
    path: str,
    body: bytes | None = None,
    *,
    token: str | None = None,
    auth: bool = True,
    headers: dict[str, str] | None = None,
) -> Reply:
    """``method path`` against ``sv``; with its own token unless ``auth`` is false, and
    any further ``headers``."""
    assert sv.http is not None
    headers = dict(headers or {})
    if token is None and auth:
        token = sv.client.token
    if token:
        headers["authorization"] = f"Bearer {token}"
    if body is not None:
        headers["content-type"] = "application/json"
    conn = http.client.HTTPConnection(sv.http.host, sv.http.port, timeout=30)
    try:
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        return Reply(
            response.status,
            {k.lower(): v for k, v in response.getheaders()},
            response.read(),
        )
    finally:
        conn.close()
