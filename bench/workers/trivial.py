"""Fallback trivial worker (used only when gcc is missing): hello, started, completed, exit.

Same conversation as trivial_worker.c, in Python with the protocol package; ``--bare``
exits at once (the baseline: same program, same spawn path). Python's start-up time makes
it a much heavier "trivial" worker than the C one; the overhead section says so.
"""

import os
import socket
import sys

import protocol


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
    hello = protocol.Hello(
        v=1,
        job_id=os.environ["JOBVISOR_JOB_ID"],
        token=os.environ["JOBVISOR_TOKEN"],
        pid=os.getpid(),
    )
    sock.sendall(protocol.encode(hello))
    decoder = protocol.Decoder()
    sent = False
    while True:
        data = sock.recv(65536)
        if not data:
            return 1
        for message in decoder.feed(data):
            if isinstance(message, protocol.Welcome) and not sent:
                sock.sendall(
                    protocol.encode(protocol.Started()) + protocol.encode(protocol.Completed())
                )
                sent = True
            elif isinstance(message, protocol.Ack):
                return 0
            elif isinstance(message, protocol.Error):
                return 1


if __name__ == "__main__":
    sys.exit(main())
