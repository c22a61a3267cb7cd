"""Fallback trivial worker (used only when gcc is missing): handshake, started, completed, exit.

Same conversation as trivial_worker.c, in Python with the protocol package; ``--bare``
exits at once (the baseline: same program, same spawn path). Python's start-up time makes
it a much heavier "trivial" worker than the C one; the overhead section says so.
"""

import os
import socket
import sys

import protocol
from supervisor.testing import raw_handshake


def main() -> int:
    if sys.argv[1:] == ["--bare"]:
        return 0
    address = os.environ["JOBVISOR_SOCKET"]
    if address.startswith("tcp://"):
        host, _, port = address[len("tcp://") :].rpartition(":")
        sock = socket.create_connection((host, int(port)))
    else:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(address)
    welcome, decoder = raw_handshake(
        sock, os.environ["JOBVISOR_JOB_ID"], os.environ["JOBVISOR_TOKEN"]
    )
    if not isinstance(welcome, protocol.Welcome):
        return 1
    sock.sendall(protocol.encode(protocol.Started()) + protocol.encode(protocol.Completed()))
    data = b""  # what arrived after the welcome is already in the decoder
    while True:
        for message in decoder.feed(data):
            if isinstance(message, protocol.Ack):
                return 0
            if isinstance(message, protocol.Error):
                return 1
        data = sock.recv(65536)
        if not data:
            return 1


if __name__ == "__main__":
    sys.exit(main())
