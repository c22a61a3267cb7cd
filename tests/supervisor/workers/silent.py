"""A raw-protocol worker that completes the handshake and then never speaks again."""

import os
import socket
import time

from supervisor.testing import raw_handshake

sock = socket.socket(socket.AF_UNIX)
sock.connect(os.environ["JOBVISOR_SOCKET"])
raw_handshake(sock, os.environ["JOBVISOR_JOB_ID"], os.environ["JOBVISOR_TOKEN"])
while True:
    time.sleep(1)
