"""The SQLite store's files: nothing memory-mapped, one process at a time, clean failures.

SQLite in WAL mode normally maps the ``-shm`` file into memory; truncated, made immutable
or on a full disk, that file kills the process with SIGBUS. The store keeps the WAL index
on its heap instead (``locking_mode = EXCLUSIVE``), so the same faults are I/O errors.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from supervisor.client import ClientError
from supervisor.testing import ServerProcess, wait_for
from tests.supervisor.serverconfig import write_config


@pytest.fixture
def server(tmp_path: Path, marker: str) -> Iterator[ServerProcess]:
    """A real ``jobvisor serve`` that has run one job to the end."""
    process = ServerProcess(write_config(tmp_path, marker)).start()
    try:
        job_id = process.client.submit("demo", {"actions": [["return", 1]]})
        assert process.client.wait(job_id, timeout=30)["status"] == "completed"
        yield process
    finally:
        process.kill()


@pytest.fixture
def immutable() -> Iterator[list[Path]]:
    """Files to make immutable with ``chattr +i`` (made mutable again at teardown)."""
    if os.geteuid() != 0 or shutil.which("chattr") is None:
        pytest.skip("chattr +i needs root and e2fsprogs")
    files: list[Path] = []
    yield files
    for path in files:
        subprocess.run(["chattr", "-i", str(path)], check=False)


def test_the_store_keeps_no_shm_file_and_maps_none_of_its_files(server, tmp_path):
    """While serving, there is no ``-shm`` file and no store file is memory-mapped."""
    state = tmp_path / "state"
    assert (state / "jobs.db-wal").exists()
    assert not (state / "jobs.db-shm").exists()
    assert server.proc is not None
    maps = Path(f"/proc/{server.proc.pid}/maps").read_text()
    assert "jobs.db" not in maps


def test_no_other_process_opens_the_store_while_a_supervisor_runs(server, tmp_path):
    """Another connection, even read-only, is refused: the supervisor holds the file's lock."""
    raw = sqlite3.connect(f"file:{tmp_path / 'state' / 'jobs.db'}?mode=ro", uri=True, timeout=0)
    try:
        with pytest.raises(sqlite3.OperationalError, match="database is locked"):
            raw.execute("SELECT COUNT(*) FROM jobs").fetchone()
    finally:
        raw.close()


def test_immutable_store_files_end_the_supervisor_with_exit_5_not_sigbus(
    server, tmp_path, immutable
):
    """``chattr +i`` on the store's files: the next commit fails, exit 5 and a message."""
    state = tmp_path / "state"
    for name in ("jobs.db", "jobs.db-wal", "jobs.db-shm"):
        path = state / name
        if path.exists():
            subprocess.run(["chattr", "+i", str(path)], check=True)
            immutable.append(path)
    assert server.proc is not None
    try:
        server.client.submit("demo", {"actions": [["return", 2]]})  # needs a commit
    except ClientError:
        pass  # refused or cut off: either way it was not stored
    code = server.proc.wait(timeout=60)
    assert code == 5, f"exit status {code} (negative: killed by signal {-code})"
    log = wait_for(lambda: (t := server.log.read_text()) and "commit failed" in t and t)
    assert "disk I/O error" in log or "readonly" in log or "Operation not permitted" in log
