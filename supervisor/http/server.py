"""HTTP/1.1 on the supervisor's own loop, with h11 doing the parsing (sans-IO).

Each connection owns an ``h11.Connection``. Bytes go in; complete requests come out
and are answered by ``routes.handle`` on the loop thread, so a handler reads and
changes the job table directly, with no locks. Responses are buffered and flushed
after the iteration's commit, like every other output (an enqueue's 201 is therefore
sent only once the job is durable). Keep-alive and pipelining work; a body over
``MAX_BODY`` is refused with 413 and a malformed request with 400, and either way only
that connection is closed. ``HEAD`` gets the ``GET`` answer's head.

Theory of operation: nobody can hold the server hostage.

- A connection is *idle* (between requests, after its answer is queued) or *reading*
  (some bytes of a request have come). One timer per connection: ``IDLE_TIMEOUT`` while
  idle; ``REQUEST_TIMEOUT`` for the whole request, head and body, from its first byte.
  Bytes do not move that deadline, so a client trickling a byte at a time (slowloris)
  is answered 408 and closed when it runs out, whatever it sends.
- At ``MAX_CONNECTIONS`` a new connection is still accepted: the oldest idle connection
  is closed for it (a keep-alive client just reconnects), else the one whose request
  started first. Idle connections cannot lock out a new client.
- When ``accept`` fails for want of descriptors (EMFILE/ENFILE), the oldest idle
  connection is closed to make room if it has been idle ``EVICT_GRACE`` or longer (a
  connection accepted a moment ago has not had its request read yet); otherwise the
  listener stops for ``ACCEPT_BACKOFF`` (as the job listeners do) instead of spinning
  on a socket that stays readable, and the log line says so at a limited rate
  (``LogThrottle``).
- A streaming response (``GET /events``, ``supervisor.http.sse``) leaves both pools: it
  is never evicted nor timed out while it streams. Its timer sends keep-alive comments
  instead, and ``sse_max_streams`` bounds how many there are. Bytes its client sends
  are read and ignored (only its hang-up matters).
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import logging
import re
import socket
from http import HTTPStatus
from typing import TYPE_CHECKING

import h11

import supervisor.http.dashboard  # registers the dashboard's routes (binds the name used below)
import supervisor.http.workflow_routes  # noqa: F401 - registers the workflow routes
from supervisor.channels import ACCEPT_BACKOFF
from supervisor.http.auth import server_token
from supervisor.http.exchange import Request, Response
from supervisor.http.routes import error_response, handle
from supervisor.http.sse import POSITION_HEADER, EventStreams, OpenStream
from supervisor.logthrottle import LogThrottle
from supervisor.loop import Outgoing

if TYPE_CHECKING:
    from supervisor.core import Supervisor
    from supervisor.loop import Loop

log = logging.getLogger(__name__)

MAX_BODY = 1 << 20
MAX_HEADERS = 64 * 1024
MAX_CONNECTIONS = 1024
IDLE_TIMEOUT = 120.0
REQUEST_TIMEOUT = 30.0
EVICT_GRACE = 1.0
STREAM_SNDBUF = 256 * 1024  # the kernel's send buffer of an event stream, in bytes
# Out of descriptors: what accept() reports, and we can do something about.
_FD_ERRNOS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
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
        # Insertion-ordered, oldest first: connections between requests, and connections
        # in the middle of one (by when it started). Eviction takes from the front.
        self.idle: dict[int, HttpConn] = {}
        self.reading: dict[int, HttpConn] = {}
        self.throttle = LogThrottle(log)  # accept failures repeat: say so at a limited rate
        try:
            self.token = server_token(sup.settings)
        except BaseException:
            sock.close()
            raise
        self.streams = EventStreams(
            sup.events, sup.settings, sup.counters, self.loop.clock.monotonic
        )
        self.loop.add_reader(sock, self._on_accept)

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def browser_url(self) -> str:
        """The URL to open in a browser: carries the token (GET only) when there is one."""
        return f"{self.url}/?token={self.token}" if self.token else f"{self.url}/"

    def _on_accept(self, mask: int) -> None:
        for _ in range(64):
            try:
                sock, _addr = self.sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if exc.errno in _FD_ERRNOS and self._evict_long_idle():
                    continue  # a descriptor is free again: take the waiting client
                self._back_off(exc)
                return
            while len(self.conns) >= MAX_CONNECTIONS and self._evict():
                pass
            sock.setblocking(False)
            conn = HttpConn(self, sock)
            self.conns[conn.id] = conn

    def _evict(self) -> bool:
        """Close the oldest idle connection, else the oldest request in progress;
        ``False`` if there was none."""
        for pool in (self.idle, self.reading):
            if pool:
                next(iter(pool.values())).close("evicted for a new connection")
                return True
        return False

    def _evict_long_idle(self) -> bool:
        """Close the oldest idle connection if it has been idle ``EVICT_GRACE``."""
        if not self.idle:
            return False
        oldest = next(iter(self.idle.values()))
        if self.loop.clock.monotonic() - oldest.idle_since < EVICT_GRACE:
            return False
        oldest.close("evicted to free a file descriptor")
        return True

    def _back_off(self, exc: OSError) -> None:
        """Stop listening for a moment: the connection waits in the backlog, and a
        readable listener we cannot accept from would spin the loop."""
        self.throttle.log(
            logging.WARNING,
            ("accept", exc.errno),
            self.loop.clock.monotonic(),
            "http accept failed: %s; retrying in %g s",
            exc.strerror or exc,
            ACCEPT_BACKOFF,
        )
        self.loop.remove(self.sock)
        self.loop.call_later(("http-accept", id(self)), ACCEPT_BACKOFF, self._resume)

    def _resume(self) -> None:
        if self.sock.fileno() >= 0:
            self.loop.add_reader(self.sock, self._on_accept)

    def close(self) -> None:
        self.streams.close()
        self.loop.cancel_timer(("http-accept", id(self)))
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
        self.streaming = False  # answering GET /events: the response never ends
        self._request: h11.Request | None = None
        self._body = bytearray()
        self._too_large = False
        self.idle_since = 0.0
        self.loop.add_reader(sock, self._on_io)
        self._idle()

    @property
    def _timer(self) -> tuple[str, int]:
        return ("http-conn", self.id)

    def _idle(self) -> None:
        """Between requests: the idle timer runs; first in line to make room."""
        server = self.server
        server.reading.pop(self.id, None)
        server.idle.pop(self.id, None)
        server.idle[self.id] = self
        self.idle_since = self.loop.clock.monotonic()
        self.loop.call_later(self._timer, IDLE_TIMEOUT, self.close)

    def _reading(self) -> None:
        """A request has begun: one deadline for all of it, which bytes do not move."""
        server = self.server
        if self.id in server.reading:
            return
        server.idle.pop(self.id, None)
        server.reading[self.id] = self
        self.loop.call_later(self._timer, REQUEST_TIMEOUT, self._timed_out)

    def _timed_out(self) -> None:
        response = error_response(
            408,
            "request_timeout",
            f"the request was not complete within {REQUEST_TIMEOUT:g} s",
        )
        body = (
            b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\n"
            b"content-length: %d\r\nconnection: close\r\n\r\n" % len(response.body) + response.body
        )
        # Written at once, like a worker connection's error frame: it reports no state.
        with contextlib.suppress(OSError):
            self.sock.send(body)
        self.close("request timed out")

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
            if self.streaming:
                if not data:
                    self.close("the event stream's client hung up")
                return
            if data:
                self._reading()
            self.h11.receive_data(data)
            self._process()

    def _process(self) -> None:
        while not self.closed and not self.close_after_flush:
            try:
                event = self.h11.next_event()
            except h11.RemoteProtocolError as exc:
                self._fail(exc.error_status_hint, f"malformed HTTP request: {describe(exc)}")
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
                response = handle(self.server.sup, request, self.server.token)
            except Exception:
                # The path, not the target: a query may carry the token.
                log.exception("HTTP handler failed for %s %s", request.method, request.path)
                response = error_response(500, "internal_error", "internal error; see the log")
        if isinstance(response, OpenStream):
            self._stream(response)
        else:
            self._send(response)

    def _stream(self, opened: OpenStream) -> None:
        """Answer with a response that never ends: the connection streams events."""
        streams = self.server.streams
        refused = streams.full()
        if refused is not None:
            self._send(refused)
            return
        head = h11.Response(
            status_code=200,
            headers=[
                ("content-type", opened.content_type),
                ("cache-control", "no-cache"),
                ("x-accel-buffering", "no"),  # a reverse proxy must not hold events back
                (POSITION_HEADER, streams.bus.watch()),
            ],
            reason=b"OK",
        )
        try:
            self._out += self.h11.send(head)
        except h11.LocalProtocolError as exc:
            log.warning("cannot answer HTTP request: %s", exc)
            self.close()
            return
        self.streaming = True
        # A fixed kernel buffer (no autotuning up to megabytes): what a stalled reader
        # holds is this plus sse_buffer, and it is found behind sooner.
        with contextlib.suppress(OSError):
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, STREAM_SNDBUF)
        self.server.idle.pop(self.id, None)
        self.server.reading.pop(self.id, None)
        self._keepalive_later()
        streams.open(self, opened)
        self.loop.want_flush(self)

    def _keepalive_later(self) -> None:
        self.loop.call_later(self._timer, self.server.streams.keepalive_interval, self._keepalive)

    def _keepalive(self) -> None:
        self.server.streams.keepalive(self.id)
        if not self.closed:
            self._keepalive_later()

    def send_chunk(self, data: bytes) -> None:
        """Queue a piece of the stream (released after this iteration's commit)."""
        if self.closed:
            return
        self._out += self.h11.send(h11.Data(data=data))
        self.loop.want_flush(self)

    def backlog(self) -> int:
        """Bytes released to the client that its socket has not taken yet."""
        return len(self._out.sendable)

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
            if self._request is None or self._request.method != b"HEAD":
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
        self._idle()

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
        self.loop.cancel_timer(self._timer)
        self.loop.remove(self.sock)
        with contextlib.suppress(OSError):
            self.sock.close()
        self.server.conns.pop(self.id, None)
        self.server.idle.pop(self.id, None)
        self.server.reading.pop(self.id, None)
        if self.streaming:
            self.server.streams.discard(self.id)


# h11 ends some messages with the offending bytes as a Python repr; say it in words.
_REPR_TAIL = re.compile(r":?\s*(bytearray\()?b?['\"].*$", re.DOTALL)
_IN_WORDS = {
    "illegal request line": "the first line is not an HTTP/1.1 request line "
    "(METHOD TARGET HTTP/1.1)",
    "illegal header line": "a header line is not NAME: VALUE",
    "no request line received": "the request has no request line",
    "missing mandatory host: header": "the Host header is missing",
    "found multiple host: headers": "the Host header appears more than once",
    "bad content-length": "the Content-Length header is not a number",
    "conflicting content-length headers": "the Content-Length headers disagree",
    "receive buffer too long": f"the request head is larger than {MAX_HEADERS} bytes",
    "illegal method characters": "the method has characters a method cannot have",
    "illegal target characters": "the target has characters a URL cannot have",
    "illegal header name": "a header name has characters a header name cannot have",
    "illegal header value": "a header value has characters a header value cannot have",
    "only transfer-encoding": "the Transfer-Encoding is not supported (only chunked)",
    "multiple transfer-encoding": "the Transfer-Encoding header appears more than once",
}


def describe(exc: h11.RemoteProtocolError) -> str:
    """What was wrong with the request, in words (never a repr of the bytes)."""
    text = _REPR_TAIL.sub("", str(exc)).strip()
    lowered = text.lower()
    for start, words in _IN_WORDS.items():
        if lowered.startswith(start):
            return words
    return text or "not an HTTP/1.1 request"
