"""The throughput ceiling: a decode-only reader, the least any supervisor must do.

A bare selectors loop with one Unix listener per job (the same socket type and layout as
the supervisor's; like the supervisor it closes a listener once its connection is
accepted). Per readable connection: one ``recv(256 KiB)``, split the frames (4-byte
big-endian length), ``msgpack.unpackb`` each body, drop it, count it. No validation,
no state, no store. A reader that only discarded bytes would be some 30x faster and
tell us nothing about the cost of decoding, so it is not the ceiling.

Started as ``python -m bench.ceiling SPEC.json`` (``{"paths": [...]}``); answers
``status`` (accepted connections, messages, bytes, its monotonic time) and ``stop``.
"""

from __future__ import annotations

import json
import os
import selectors
import socket
import sys
import time
from typing import Any

import msgpack

from bench.child import reply, serve_commands
from bench.loadgen import raise_fd_limit

RECV_SIZE = 256 * 1024
READ = selectors.EVENT_READ


class Ceiling:
    def __init__(self, paths: list[str]) -> None:
        self.selector = selectors.DefaultSelector()
        self.accepted = 0
        self.messages = 0
        self.bytes = 0
        self.running = True
        for path in paths:
            listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            listener.bind(path)
            os.chmod(path, 0o600)
            listener.listen(16)
            listener.setblocking(False)
            self.selector.register(listener, READ, ("listener", None))

    def command(self, line: str) -> dict[str, Any]:
        if line == "status":
            return {
                "accepted": self.accepted,
                "messages": self.messages,
                "bytes": self.bytes,
                "t": time.monotonic(),
            }
        if line == "stop":
            self.running = False
            return {"ok": True}
        raise ValueError(f"unknown command {line!r}")

    def _accept(self, listener: socket.socket) -> None:
        try:
            conn, _ = listener.accept()
        except BlockingIOError:
            return
        conn.setblocking(False)
        self.selector.unregister(listener)
        listener.close()
        self.selector.register(conn, READ, ("conn", bytearray()))
        self.accepted += 1

    def _read(self, conn: socket.socket, buf: bytearray) -> None:
        try:
            data = conn.recv(RECV_SIZE)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self.selector.unregister(conn)
            conn.close()
            return
        self.bytes += len(data)
        buf += data
        end_of_data = len(buf)
        offset = 0
        count = 0
        unpackb = msgpack.unpackb
        view = memoryview(buf)
        try:
            while end_of_data - offset >= 4:
                size = int.from_bytes(view[offset : offset + 4], "big")
                end = offset + 4 + size
                if end > end_of_data:
                    break
                unpackb(view[offset + 4 : end])
                count += 1
                offset = end
        finally:
            view.release()
        del buf[:offset]
        self.messages += count

    def run(self) -> None:
        on_stdin = serve_commands(self.command)
        self.selector.register(0, READ, ("stdin", None))
        reply({"ready": True})
        while self.running:
            for key, _mask in self.selector.select(1.0):
                role, state = key.data
                if role == "conn":
                    self._read(key.fileobj, state)  # type: ignore[arg-type]
                elif role == "listener":
                    self._accept(key.fileobj)  # type: ignore[arg-type]
                elif not on_stdin():
                    return


def main(argv: list[str]) -> int:
    raise_fd_limit()
    with open(argv[0], encoding="utf-8") as f:
        spec = json.load(f)
    Ceiling(spec["paths"]).run()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
