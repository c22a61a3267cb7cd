"""A raw-protocol worker that says hello and then never speaks again (no heartbeats)."""

import os
import socket
import time

import protocol

sock = socket.socket(socket.AF_UNIX)
sock.connect(os.environ["JOBVISOR_SOCKET"])
hello = protocol.Hello(
    v=1, job_id=os.environ["JOBVISOR_JOB_ID"], token=os.environ["JOBVISOR_TOKEN"], pid=os.getpid()
)
sock.sendall(protocol.encode(hello))
while True:
    time.sleep(1)
