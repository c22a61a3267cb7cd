"""The load generator: one process speaking the real protocol for thousands of jobs.

Theory of operation. Each job is a ``Link``: one ``jobvisor_worker.Session`` (the worker
library's sans-IO protocol object: hello, challenge, auth, welcome, started, heartbeats,
replay) plus at most one non-blocking Unix socket. One selectors loop drives them all, in
three phases per pass, like the library's own I/O thread:

1. connect every link whose retry time has come (a lost welcomed connection retries at
   once, then every ~20 ms +-50% jitter, as the library does during its fast window);
2. hand out due heartbeats (a heap of ``session.next_deadline()``, lazily corrected);
3. select, then read (bytes -> ``session.receive_data`` -> events) and write.

A ``Welcomed`` event is the moment "traffic flows again": its ``time.time()`` is
recorded per link, together with a count of welcomes, so the driver can tell which
welcome belongs to which supervisor restart.

Flood mode (``flood`` command): every welcomed link also writes a pre-encoded buffer of
``progress`` and ``heartbeat`` frames, cyclically and frame-aligned, whenever its
socket is writable, so the kernel buffer stays full. With ``handshake`` off (the
decode-only ceiling, which answers nothing) a link floods right after its hello.

Commands on stdin, one JSON answer line each (see ``bench.child``): ``start``,
``status``, ``welcomes``, ``flood``, ``stop``. Started as
``python -m bench.loadgen SPEC.json``; SPEC holds ``jobs`` ([job id, token, socket path]
triples) and the options below.
"""

from __future__ import annotations

import heapq
import itertools
import json
import random
import resource
import selectors
import socket
import sys
import time
from typing import Any

import protocol
from bench.child import reply, serve_commands
from jobvisor_worker import (
    CancelRequested,
    ProtocolViolation,
    Refused,
    Session,
    SessionState,
    Welcomed,
)
from jobvisor_worker._retry import FAST_INTERVAL, FAST_JITTER  # retry exactly as workers do

THROTTLE_DELAY = 0.005  # how long a link waits when too many handshakes are in flight
RECV_SIZE = 65536
FLOOD_BUFFER = 256 * 1024
READ = selectors.EVENT_READ
WRITE = selectors.EVENT_WRITE


def flood_frames() -> tuple[bytes, int, dict[str, int]]:
    """The flood buffer: whole progress+heartbeat frame pairs; its message count; sizes."""
    ts = int(time.time() * 1000)
    progress = protocol.encode(protocol.Progress(percent=42.5, message="bench", ts=ts))
    heartbeat = protocol.encode(protocol.Heartbeat(ts=ts))
    pairs = FLOOD_BUFFER // (len(progress) + len(heartbeat))
    sizes = {"progress_frame_bytes": len(progress), "heartbeat_frame_bytes": len(heartbeat)}
    return (progress + heartbeat) * pairs, 2 * pairs, sizes


class Link:
    """One job: its session, its socket (if connected), and what the driver asks about it."""

    __slots__ = (
        "beat_queued",
        "flood_off",
        "handshaking",
        "last_welcome",
        "out",
        "path",
        "refused",
        "session",
        "sock",
        "welcomed_here",
        "welcomes",
        "writing",
    )

    def __init__(self, job_id: str, token: str, path: str, heartbeat: float | None):
        self.path = path
        self.session = Session(
            job_id,
            token,
            heartbeat_interval=heartbeat or 5.0,
            heartbeat_interval_fixed=heartbeat is not None,
        )
        self.sock: socket.socket | None = None
        self.out = b""
        self.writing = False
        self.handshaking = False
        self.welcomed_here = False
        self.welcomes = 0
        self.last_welcome: float | None = None
        self.refused = False
        self.flood_off = 0
        self.beat_queued = False  # an entry for this link is in the heartbeat heap


class LoadGen:
    def __init__(
        self,
        jobs: list[list[str]],
        *,
        handshake: bool = True,
        heartbeat: float | None = None,
        max_handshakes: int = 0,
    ) -> None:
        self.links = [Link(job_id, token, path, heartbeat) for job_id, token, path in jobs]
        self.handshake = handshake
        self.max_handshakes = max_handshakes or len(self.links) + 1
        self.selector = selectors.DefaultSelector()
        self._seq = itertools.count()
        self._retry: list[tuple[float, int, Link]] = []
        self._beats: list[tuple[float, int, Link]] = []
        self._random = random.Random()
        self.flood, self.flood_messages, self.frame_sizes = flood_frames()
        self._flood_view = memoryview(self.flood)
        self.flooding = False
        self.running = True
        self.handshakes = 0
        self.counts = dict.fromkeys(
            (
                "connect_attempts",
                "connect_failures",
                "lost_connections",
                "refusals",
                "violations",
                "cancels",
                "flood_bytes",
            ),
            0,
        )

    # --- commands -------------------------------------------------------------------------

    def command(self, line: str) -> dict[str, Any]:
        name = line.split()[0]
        if name == "start":
            now = time.monotonic()
            for link in self.links:
                self._schedule(link, now)
            return {"ok": True}
        if name == "status":
            return self.status()
        if name == "welcomes":
            return {
                "last": [link.last_welcome for link in self.links],
                "count": [link.welcomes for link in self.links],
            }
        if name == "flood":
            self.flooding = True
            for link in self.links:
                if self._flooding(link):
                    self._want_write(link, True)
            return {"ok": True, "flood_buffer_messages": self.flood_messages, **self.frame_sizes}
        if name == "stop":
            self.running = False
            return {"ok": True}
        raise ValueError(f"unknown command {line!r}")

    def status(self) -> dict[str, Any]:
        ready = sum(1 for link in self.links if link.session.state is SessionState.READY)
        return {
            "links": len(self.links),
            "connected": sum(1 for link in self.links if link.sock is not None),
            "ready": ready,
            "handshaking": self.handshakes,
            "refused": sum(1 for link in self.links if link.refused),
            "welcomes": sum(link.welcomes for link in self.links),
            **self.counts,
        }

    # --- connecting -----------------------------------------------------------------------

    def _schedule(self, link: Link, when: float) -> None:
        heapq.heappush(self._retry, (when, next(self._seq), link))

    def _retry_later(self, link: Link, now: float) -> None:
        jitter = self._random.uniform(1.0 - FAST_JITTER, 1.0 + FAST_JITTER)
        self._schedule(link, now + FAST_INTERVAL * jitter)

    def _connect(self, link: Link, now: float) -> None:
        self.counts["connect_attempts"] += 1
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.setblocking(False)
        try:
            sock.connect(link.path)
        except OSError:  # ENOENT/ECONNREFUSED: not listening yet; EAGAIN: backlog full
            sock.close()
            self.counts["connect_failures"] += 1
            self._retry_later(link, now)
            return
        link.sock = sock
        link.out = link.session.connection_made()
        link.welcomed_here = False
        if self.handshake:
            link.handshaking = True
            self.handshakes += 1
        self.selector.register(sock, READ, link)
        link.writing = False
        self._flush(link)  # the hello; it also arms writing for a link that floods at once

    def _lost(self, link: Link, now: float) -> None:
        sock = link.sock
        if sock is None:
            return
        link.sock = None
        self.selector.unregister(sock)
        sock.close()
        link.out = b""
        link.writing = False
        if link.handshaking:
            link.handshaking = False
            self.handshakes -= 1
        link.session.connection_lost()
        self.counts["lost_connections"] += 1
        if link.refused:
            return
        if link.welcomed_here:
            self._schedule(link, now)  # most losses are brief: try again at once
        else:
            self._retry_later(link, now)
        link.welcomed_here = False

    # --- I/O ------------------------------------------------------------------------------

    def _want_write(self, link: Link, on: bool) -> None:
        if link.sock is not None and on != link.writing:
            link.writing = on
            self.selector.modify(link.sock, READ | (WRITE if on else 0), link)

    def _flooding(self, link: Link) -> bool:
        return self.flooding and (not self.handshake or link.welcomed_here)

    def _flush(self, link: Link) -> None:
        sock = link.sock
        if sock is None:
            return
        if link.out:
            try:
                sent = sock.send(link.out)
            except (BlockingIOError, InterruptedError):
                sent = 0
            except OSError:
                self._lost(link, time.monotonic())
                return
            link.out = link.out[sent:]
        elif self._flooding(link):
            view = self._flood_view
            try:
                sent = sock.send(view[link.flood_off :])
            except (BlockingIOError, InterruptedError):
                sent = 0
            except OSError:
                self._lost(link, time.monotonic())
                return
            self.counts["flood_bytes"] += sent
            link.flood_off = (link.flood_off + sent) % len(view)
        self._want_write(link, bool(link.out) or self._flooding(link))

    def _send_session(self, link: Link, now: float) -> None:
        data = link.session.data_to_send(now)
        if data:
            link.out += data
            self._flush(link)
        self._arm_beat(link)

    def _arm_beat(self, link: Link) -> None:
        deadline = link.session.next_deadline()
        if deadline is not None and not link.beat_queued and not self._flooding(link):
            link.beat_queued = True
            heapq.heappush(self._beats, (deadline, next(self._seq), link))

    def _read(self, link: Link, now: float) -> None:
        sock = link.sock
        assert sock is not None
        try:
            data = sock.recv(RECV_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self._lost(link, now)
            return
        if not self.handshake:
            return  # the ceiling reader says nothing; nothing to parse
        for event in link.session.receive_data(data):
            if isinstance(event, Welcomed):
                link.last_welcome = time.time()
                link.welcomes += 1
                link.welcomed_here = True
                link.handshaking = False
                self.handshakes -= 1
                self._send_session(link, now)  # started (+ replay), then heartbeats
            elif isinstance(event, Refused):
                self.counts["refusals"] += 1
                link.refused = event.fatal
                self._lost(link, now)
                return
            elif isinstance(event, ProtocolViolation):
                self.counts["violations"] += 1
                self._lost(link, now)
                return
            elif isinstance(event, CancelRequested):
                self.counts["cancels"] += 1
        if not link.welcomed_here and link.session.wants_to_send:
            self._send_session(link, now)  # the auth answering a valid challenge

    # --- the loop -------------------------------------------------------------------------

    def run(self) -> None:
        on_stdin = serve_commands(self.command)
        self.selector.register(0, READ, None)
        reply({"ready": True})
        while self.running:
            now = time.monotonic()
            self._connect_due(now)
            self._beat_due(now)
            timeout = 1.0
            for heap in (self._retry, self._beats):
                if heap:
                    timeout = min(timeout, max(0.0, heap[0][0] - now))
            for key, mask in self.selector.select(timeout):
                link = key.data
                if link is None:
                    if not on_stdin():
                        return
                    continue
                if mask & READ and link.sock is not None:
                    self._read(link, time.monotonic())
                if mask & WRITE and link.sock is not None:
                    self._flush(link)

    def _connect_due(self, now: float) -> None:
        deferred = []
        while self._retry and self._retry[0][0] <= now:
            _when, _seq, link = heapq.heappop(self._retry)
            if link.sock is not None or link.refused:
                continue
            if self.handshakes >= self.max_handshakes:
                deferred.append(link)
                continue
            self._connect(link, now)
        for link in deferred:
            self._schedule(link, now + THROTTLE_DELAY)

    def _beat_due(self, now: float) -> None:
        while self._beats and self._beats[0][0] <= now:
            _when, _seq, link = heapq.heappop(self._beats)
            link.beat_queued = False
            if link.sock is None or not link.welcomed_here or self._flooding(link):
                continue  # a flooding link's stream may be mid-frame: never interleave
            deadline = link.session.next_deadline()
            if deadline is not None and deadline > now:  # something else was sent meanwhile
                self._arm_beat(link)
                continue
            self._send_session(link, now)


def raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def main(argv: list[str]) -> int:
    raise_fd_limit()
    with open(argv[0], encoding="utf-8") as f:
        spec = json.load(f)
    gen = LoadGen(
        spec["jobs"],
        handshake=spec.get("handshake", True),
        heartbeat=spec.get("heartbeat"),
        max_handshakes=spec.get("max_handshakes", 0),
    )
    gen.run()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
