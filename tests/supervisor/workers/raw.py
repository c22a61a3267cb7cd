"""A worker speaking the protocol by hand (no library), for cases the library avoids.

RAW_MODE=redial: say hello, close the connection, dial again and complete.
RAW_MODE=overlap: open a second connection while the first is open (TCP keeps the
  listener); the supervisor must close the first; exit 3 if it does not.
RAW_MODE=linger: complete, get the ack, then never exit.
"""

import os
import socket
import sys
import time

import protocol
from supervisor.testing import raw_handshake

ADDRESS = os.environ["JOBVISOR_SOCKET"]
JOB_ID = os.environ["JOBVISOR_JOB_ID"]
TOKEN = os.environ["JOBVISOR_TOKEN"]


def dial() -> tuple[socket.socket, protocol.Decoder]:
    deadline = time.monotonic() + 10
    while True:
        try:
            if ADDRESS.startswith("tcp://"):
                host, port = ADDRESS[len("tcp://") :].rsplit(":", 1)
                sock = socket.create_connection((host, int(port)))
            else:
                sock = socket.socket(socket.AF_UNIX)
                sock.connect(ADDRESS)
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)
    sock.settimeout(10)
    welcome, decoder = raw_handshake(sock, JOB_ID, TOKEN)
    if not isinstance(welcome, protocol.Welcome):
        sys.exit(5)
    sock.sendall(protocol.encode(protocol.Started()))
    return sock, decoder


def expect(sock: socket.socket, decoder: protocol.Decoder, kind: type) -> protocol.Message:
    while True:
        data = sock.recv(65536)
        if not data:
            sys.exit(4)
        for message in decoder.feed(data):
            if isinstance(message, kind):
                return message


def complete(sock: socket.socket, decoder: protocol.Decoder, result: object) -> None:
    sock.sendall(protocol.encode(protocol.Completed(result=result)))
    expect(sock, decoder, protocol.Ack)


mode = os.environ["RAW_MODE"]
first, first_decoder = dial()
first.sendall(protocol.encode(protocol.Progress(percent=10, message="first connection")))
if mode == "redial":
    first.close()
    second, decoder = dial()
    complete(second, decoder, "redialled")
elif mode == "overlap":
    second, decoder = dial()
    first.settimeout(10)
    if first.recv(65536) != b"":
        sys.exit(3)  # the first connection should have been closed by the supervisor
    complete(second, decoder, "replaced")
elif mode == "linger":
    complete(first, first_decoder, "done, but staying")
    while True:
        time.sleep(1)
