"""A jobvisor.toml for tests that run the supervisor as a real process."""

from __future__ import annotations

import sys
from pathlib import Path

from supervisor.testing import short_socket_dir

WORKERS = Path(__file__).parent / "workers"


def write_serve_config(
    tmp_path: Path,
    body: str,
    *,
    transport: str = "unix",
    http: str = "127.0.0.1:0",
    kill_grace: float = 1.0,
) -> Path:
    """``tmp_path/jobvisor.toml`` for a test's own `jobvisor serve`: its own state folder,
    socket folder and HTTP port (an ephemeral one unless ``http`` names one), quick flushes,
    then ``body`` (more settings, then the job kinds, as TOML)."""
    config = tmp_path / "jobvisor.toml"
    config.write_text(f"""
state_dir = "state"
http = "{http}"
socket_dir = "{short_socket_dir()}"
transport = "{transport}"
flush_interval = 0.1
kill_grace = {kill_grace}
{body}""")
    return config


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
    return write_serve_config(
        tmp_path,
        f"""concurrency = {concurrency}
{extra}
[jobs.demo]
command = "{sys.executable}"
args = ["{WORKERS / "scripted.py"}"]
env = {{ JOBVISOR_TEST_RUN = "{marker}" }}
heartbeat_timeout = {heartbeat_timeout}
retry_delay = 0.1
{kind}
""",
        transport=transport,
    )
