"""Signals to a real ``jobvisor serve`` process."""

from __future__ import annotations

import signal

from supervisor.testing import ServerProcess, wait_for
from tests.supervisor.serverconfig import write_config


def test_sighup_is_logged_and_ignored(tmp_path, marker):
    """SIGHUP does not end the supervisor: it says reload is unsupported and keeps serving."""
    server = ServerProcess(write_config(tmp_path, marker)).start()
    assert server.proc is not None
    try:
        server.proc.send_signal(signal.SIGHUP)
        wait_for(
            lambda: "SIGHUP: configuration reload is not supported yet" in server.log.read_text(),
            message="the SIGHUP line in the supervisor's log",
        )
        assert server.proc.poll() is None
        job_id = server.client.submit("demo", {"actions": [["return", "after hup"]]})
        assert server.client.wait(job_id, timeout=30)["result"] == "after hup"
    finally:
        server.kill()
