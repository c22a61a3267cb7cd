"""HTTP/1.1 on the supervisor's own loop, with h11 doing the parsing (sans-IO).

Each connection owns an ``h11.Connection``. Bytes go in; complete requests come out
and are answered by ``routes.handle`` on the loop thread, so a handler reads and
changes the job table directly, with no locks. Responses are buffered and flushed
after the iteration's commit, like every other output (an enqueue's 201 is therefore
sent only once the job is durable). Keep-alive and pipelining work; a body over
``MAX_BODY`` is refused with 413 and a malformed request with 400, and either way only
that connection is closed.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import socket
from http import HTTPStatus
from typing import TYPE_CHECKING

import h11

from supervisor.http.routes import Request, Response, error_response, handle
from supervisor.loop import Outgoing

if TYPE_CHECKING:
    from supervisor.core import Supervisor
    from supervisor.loop import Loop

log = logging.getLogger(__name__)

MAX_BODY = 1 << 20
MAX_HEADERS = 64 * 1024
MAX_CONNECTIONS = 1024
IDLE_TIMEOUT = 120.0
_ids = itertools.count(1)


class HttpServer:
    def __init__(self, sup: Supervisor, host: str, port: int) -> None:
        self.sup = sup
        self.loop: Loop = sup.loop
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
            sock.listen(128)
        except OSError:
            sock.close()
            raise
        sock.setblocking(False)
        self.sock = sock
        self.host = host
        self.port = sock.getsockname()[1]
        self.conns: dict[int, HttpConn] = {}
        self.loop.add_reader(sock, self._on_accept)

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def _on_accept(self, mask: int) -> None:
        for _ in range(64):
            try:
                sock, _addr = self.sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                log.warning("http accept failed: %s", exc)
                return
            if len(self.conns) >= MAX_CONNECTIONS:
                sock.close()
                continue
            sock.setblocking(False)
            conn = HttpConn(self, sock)
            self.conns[conn.id] = conn

    def close(self) -> None:
        self.loop.remove(self.sock)
        with contextlib.suppress(OSError):
            self.sock.close()
        for conn in list(self.conns.values()):
            conn.flush()
            conn.close()


class HttpConn(Outgoing):
    def __init__(self, server: HttpServer, sock: socket.socket) -> None:
        super().__init__()
        self.id = next(_ids)
        self.server = server
        self.loop = server.loop
        self.sock = sock
        self.h11 = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEADERS)
        self.closed = False
        self.close_after_flush = False
        self._request: h11.Request | None = None
        self._body = bytearray()
        self._too_large = False
        self.loop.add_reader(sock, self._on_io)
        self._touch()

    def _touch(self) -> None:
        self.loop.call_later(("http-idle", self.id), IDLE_TIMEOUT, self.close)

    def _on_io(self, mask: int) -> None:
        if mask & 2:
            self.flush()
        if mask & 1 and not self.closed:
            try:
                data = self.sock.recv(65536)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                self.close()
                return
            self._touch()
            self.h11.receive_data(data)
            self._process()

    def _process(self) -> None:
        while not self.closed and not self.close_after_flush:
            try:
                event = self.h11.next_event()
            except h11.RemoteProtocolError as exc:
                self._fail(exc.error_status_hint, f"malformed HTTP request: {exc}")
                return
            if event is h11.NEED_DATA or event is h11.PAUSED:
                if event is h11.PAUSED and self.h11.our_state is h11.DONE:
                    self._next_cycle()
                    continue
                return
            if isinstance(event, h11.Request):
                self._request = event
                self._body.clear()
                self._too_large = False
            elif isinstance(event, h11.Data):
                if len(self._body) + len(event.data) > MAX_BODY:
                    self._too_large = True
                    self._body.clear()
                elif not self._too_large:
                    self._body += event.data
            elif isinstance(event, h11.EndOfMessage):
                self._answer()
            elif isinstance(event, h11.ConnectionClosed):
                self.close()
                return

    def _answer(self) -> None:
        event = self._request
        assert event is not None
        if self._too_large:
            response = error_response(413, "body_too_large", f"request body over {MAX_BODY} bytes")
        else:
            request = Request.from_h11(event, bytes(self._body))
            try:
                response = handle(self.server.sup, request)
            except Exception:
                log.exception("HTTP handler failed for %s %s", request.method, request.target)
                response = error_response(500, "internal_error", "internal error; see the log")
        self._send(response)

    def _send(self, response: Response) -> None:
        headers = [
            ("content-type", response.content_type),
            ("content-length", str(len(response.body))),
            *response.headers,
        ]
        try:
            head = h11.Response(
                status_code=response.status,
                headers=headers,
                reason=HTTPStatus(response.status).phrase,
            )
            self._out += self.h11.send(head)
            self._out += self.h11.send(h11.Data(data=response.body))
            self._out += self.h11.send(h11.EndOfMessage())
        except h11.LocalProtocolError as exc:
            log.warning("cannot answer HTTP request: %s", exc)
            self.close()
            return
        self.loop.want_flush(self)
        if self.h11.our_state is h11.MUST_CLOSE:
            self.close_after_flush = True
        else:
            self._next_cycle()

    def _next_cycle(self) -> None:
        if self.h11.our_state is h11.DONE and self.h11.their_state is h11.DONE:
            self.h11.start_next_cycle()

    def _fail(self, status: int, message: str) -> None:
        """Answer bytes that are not HTTP (h11 still lets us respond), then close."""
        self._send(error_response(status, "bad_http", message))
        self.close_after_flush = True

    def flush(self) -> None:
        if self.closed or not self.write_out():
            return
        if not self._out and self.close_after_flush:
            self.close()

    def close(self, reason: str = "closed") -> None:
        if self.closed:
            return
        self.closed = True
        self.loop.cancel_timer(("http-idle", self.id))
        self.loop.remove(self.sock)
        with contextlib.suppress(OSError):
            self.sock.close()
        self.server.conns.pop(self.id, None)
