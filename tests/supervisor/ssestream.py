"""A test's view of ``GET /events``: one real HTTP connection, read line by line.

``supervisor.client.Client.events`` is what applications use (it reconnects and resumes
by itself); tests of the server read the raw stream through this instead, so that they
see exactly one connection, its status, its headers and its comments.
"""

from __future__ import annotations

import http.client
import socket
import time
from typing import Any

from supervisor.client import SseParser, StreamEvent
from supervisor.testing import SupervisorThread


class EventStream:
    """``GET path`` on a fresh connection to ``sv``; ``next()`` blocks for the next event
    (failing after ``timeout`` seconds of silence, so a missing event fails the test)."""

    def __init__(
        self,
        sv: SupervisorThread,
        path: str = "/events",
        *,
        headers: dict[str, str] | None = None,
        auth: bool = True,
        timeout: float = 20.0,
        rcvbuf: int | None = None,
    ) -> None:
        assert sv.http is not None
        sent = dict(headers or {})
        if auth:
            sent["authorization"] = f"Bearer {sv.client.token}"
        self.conn = http.client.HTTPConnection(sv.http.host, sv.http.port, timeout=timeout)
        if rcvbuf is not None:  # set before the handshake, so the window follows it
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
            sock.settimeout(timeout)
            sock.connect((sv.http.host, sv.http.port))
            self.conn.sock = sock
        self.conn.request("GET", path, headers=sent)
        self.response = self.conn.getresponse()
        self.status = self.response.status
        self.headers = {k.lower(): v for k, v in self.response.getheaders()}
        self.parser = SseParser()
        self.comments: list[str] = []
        self.timeout = timeout

    def body(self) -> Any:
        """The whole body of a response that is not a stream (an error)."""
        import json

        return json.loads(self.response.read())

    def next(self) -> StreamEvent:
        # Keep-alive comments keep the socket busy: the silence is timed per event.
        deadline = time.monotonic() + self.timeout
        while True:
            if time.monotonic() > deadline:
                raise TimeoutError(f"no event within {self.timeout} s")
            line = self.response.readline()
            if not line:
                raise EOFError("the event stream ended")
            text = line.decode()
            if text.startswith(":"):
                self.comments.append(text.strip())
            event = self.parser.feed(text)
            if event is not None:
                return event

    def until(self, name: str, job_id: str | None = None) -> list[StreamEvent]:
        """Events up to and including the first ``name`` (of ``job_id``, if given)."""
        seen = []
        while True:
            event = self.next()
            seen.append(event)
            if event.name == name and (job_id is None or event.data.get("id") == job_id):
                return seen

    def until_all(self, name: str, job_ids: list[str]) -> list[StreamEvent]:
        """Events up to and including the last of the ``name`` events of ``job_ids``
        (in whatever order they come)."""
        seen = []
        waiting = set(job_ids)
        while waiting:
            event = self.next()
            seen.append(event)
            if event.name == name:
                waiting.discard(event.data.get("id"))
        return seen

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> EventStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
