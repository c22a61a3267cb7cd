"""A jobvisor.toml for tests that run the supervisor as a real process."""

from __future__ import annotations

import sys
from pathlib import Path

from supervisor.testing import short_socket_dir

WORKERS = Path(__file__).parent / "workers"


def write_config(
    tmp_path: Path,
    marker: str,
    *,
    transport: str = "unix",
    concurrency: int = 40,
    extra: str = "",
    kind: str = "",
    heartbeat_timeout: float = 2.0,
) -> Path:
    config = tmp_path / "jobvisor.toml"
    config.write_text(f"""
state_dir = "state"
http = "127.0.0.1:0"
socket_dir = "{short_socket_dir()}"
transport = "{transport}"
concurrency = {concurrency}
flush_interval = 0.1
kill_grace = 1.0
{extra}
[jobs.demo]
command = "{sys.executable}"
args = ["{WORKERS / "scripted.py"}"]
env = {{ JOBVISOR_TEST_RUN = "{marker}" }}
heartbeat_timeout = {heartbeat_timeout}
retry_delay = 0.1
{kind}
""")
    return config
