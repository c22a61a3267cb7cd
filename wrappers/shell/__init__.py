"""The shell worker library: ``jobvisor-job.sh`` and the helper it runs as a co-process.

A bash worker ``source``\\ s ``jobvisor-job.sh`` (its path: ``library_path()``, ``jobvisor
shell-lib`` or ``python -m jobvisor_worker.shell --path``) and calls ``job_init``, which
starts ``python -m jobvisor_worker.shell`` as a bash ``coproc``. That helper holds the job's
one connection through ``jobvisor_worker.connect`` (handshake, heartbeats from its I/O
thread, reconnection across a supervisor restart, outbox replay), and the script talks to
it over the line protocol of ``lines.py`` on the co-process's stdin and stdout: one request
line, one reply line. docs/worker-shell.md has the whole story.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

LIBRARY_NAME = "jobvisor-job.sh"


def library_path() -> Path:
    """The installed ``jobvisor-job.sh``, the file a worker script sources."""
    return Path(str(resources.files(__name__).joinpath(LIBRARY_NAME)))
