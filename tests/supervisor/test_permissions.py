"""State, store and job logs are readable by their owner only, whatever the umask."""

from __future__ import annotations

import os
import shutil
import sqlite3
import stat
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from supervisor.errors import ConfigError
from supervisor.testing import SupervisorThread, make_settings

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (chown, other users)")


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


@pytest.fixture
def umask_000() -> Iterator[None]:
    """The most permissive umask for the duration of the test."""
    old = os.umask(0)
    yield
    os.umask(old)


@pytest.fixture
def other_user() -> Iterator[int]:
    """A fresh local user (uid) without a home folder, removed afterwards."""
    if os.geteuid() != 0:
        pytest.skip("creating another user needs root")
    if shutil.which("useradd") is None or shutil.which("userdel") is None:
        pytest.skip("useradd/userdel are not installed")
    name = f"jv{uuid.uuid4().hex[:8]}"
    subprocess.run(["useradd", "-M", "-s", "/usr/sbin/nologin", name], check=True)
    try:
        uid = int(subprocess.run(["id", "-u", name], capture_output=True, check=True).stdout)
        yield uid
    finally:
        subprocess.run(["userdel", name], check=False)


def test_state_store_logs_and_locks_are_private_with_umask_000(start, worker, umask_000):
    """Under umask 000: state and logs folders 0700, store, WAL, locks and logs 0600."""
    sv = start({"demo": worker()})
    job_id = sv.enqueue("demo", {"actions": [["log", "info", "hello"], ["return", 1]]})
    sv.wait(job_id)
    state = sv.settings.state_dir
    assert mode(state) == 0o700
    assert mode(state / "logs") == 0o700
    for name in ("jobs.db", "jobs.db-wal", "jobs.db.lock", "supervisor.lock", f"logs/{job_id}.log"):
        assert mode(state / name) == 0o600, name
    assert mode(sv.settings.job_socket_dir / "supervisor.lock") == 0o600
    for path in state.rglob("*"):  # nothing else in there either
        assert mode(path) & 0o077 == 0, path


def test_an_open_state_folder_of_ours_is_made_private(start, worker, tmp_path):
    """An existing 0755 state folder, logs folder and 0644 store are tightened at start."""
    state = tmp_path / "state"
    (state / "logs").mkdir(parents=True)
    os.chmod(state, 0o755)
    os.chmod(state / "logs", 0o755)
    raw = sqlite3.connect(state / "jobs.db")
    raw.execute("PRAGMA journal_mode = WAL")
    raw.close()
    os.chmod(state / "jobs.db", 0o644)
    start({"demo": worker()}, state=state)
    assert (mode(state), mode(state / "logs"), mode(state / "jobs.db")) == (0o700, 0o700, 0o600)


@needs_root
def test_a_state_folder_of_another_user_is_refused(tmp_path, worker):
    """A state folder that belongs to someone else is refused, naming both uids."""
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    os.chown(state, 12345, -1)
    settings = make_settings(state, {"demo": worker()})
    with pytest.raises(ConfigError, match=f"{state} belongs to uid 12345, not to us"):
        SupervisorThread(settings).start()


def test_another_local_user_cannot_read_the_store_or_the_logs(worker, other_user):
    """As another local user, the state folder, store and logs cannot be read."""
    base = Path(tempfile.mkdtemp(prefix="jvperm-", dir="/tmp"))
    os.chmod(base, 0o755)  # reachable by the other user: only our own modes protect the state
    settings = make_settings(base / "state", {"demo": worker()})
    sv = SupervisorThread(settings).start()
    try:
        job_id = sv.enqueue("demo", {"actions": [["log", "info", "secret"], ["return", 1]]})
        sv.wait(job_id)
        state = settings.state_dir
        for target in (state / "jobs.db", state / "jobs.db-wal", state / "logs" / f"{job_id}.log"):
            as_other = subprocess.run(
                ["cat", str(target)], user=other_user, capture_output=True, check=False
            )
            assert as_other.returncode != 0 and b"Permission denied" in as_other.stderr, target
        listing = subprocess.run(
            ["ls", str(state)], user=other_user, capture_output=True, check=False
        )
        assert listing.returncode != 0 and b"Permission denied" in listing.stderr
    finally:
        sv.stop()
        shutil.rmtree(base, ignore_errors=True)
        if settings.socket_dir is not None:
            shutil.rmtree(settings.socket_dir, ignore_errors=True)
