"""One supervisor per state: a second one refuses to start, before touching anything."""

from __future__ import annotations

import fcntl
import hashlib
import os
import signal
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import psutil
import pytest

from supervisor.config import load_config
from supervisor.statelock import LOCK_NAME, StateLocked
from supervisor.testing import (
    ServerProcess,
    SupervisorThread,
    make_settings,
    short_socket_dir,
    wait_for,
)
from tests.supervisor.serverconfig import write_config


def serve(config: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    """Run ``jobvisor serve`` to its end (a refused one ends at once)."""
    return subprocess.run(
        [sys.executable, "-m", "supervisor", "--config", str(config), "serve", *extra],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def snapshot(*folders: Path) -> dict[str, Any]:
    """Every file under ``folders``: kind, size, mtime and a digest of its bytes."""
    seen: dict[str, Any] = {}
    for folder in folders:
        for path in sorted(folder.rglob("*")):
            info = path.lstat()
            digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None
            seen[str(path)] = (info.st_mode, info.st_size, info.st_mtime_ns, digest)
    return seen


def running_job(server: ServerProcess, gate: Path) -> dict[str, Any]:
    """Submit a job that waits for ``gate``; return it once its worker is connected."""
    job_id = server.client.submit("demo", {"actions": [["wait_file", str(gate)], ["return", 1]]})
    return wait_for(
        lambda: (j := server.client.get(job_id))["process_state"] == "running" and j,
        message="the worker to connect",
    )


def test_second_serve_on_the_same_state_refuses_naming_the_pid_and_touches_nothing(
    tmp_path, marker
):
    """A second ``serve`` (another port) exits 5 naming the first's PID; files, worker intact."""
    config = write_config(tmp_path, marker)
    settings = load_config(config)
    first = ServerProcess(config).start()
    assert first.proc is not None
    gate = tmp_path / "gate"
    try:
        job = running_job(first, gate)
        # Frozen, the first supervisor writes nothing itself (no heartbeat flush), but
        # still holds its locks: any change now would be the second one's doing.
        first.proc.send_signal(signal.SIGSTOP)
        before = snapshot(settings.state_dir, settings.job_socket_dir)
        second = serve(config, "--http", "127.0.0.1:0")
        after = snapshot(settings.state_dir, settings.job_socket_dir)
        first.proc.send_signal(signal.SIGCONT)

        assert second.returncode == 5, second.stderr
        assert f"another supervisor (pid {first.proc.pid}) holds" in second.stderr
        assert str(settings.state_dir) in second.stderr and "stop it first" in second.stderr
        assert "Traceback" not in second.stderr
        assert after == before
        assert psutil.Process(job["pid"]).is_running()
        gate.touch()  # the worker was never disturbed: it finishes its first attempt
        done = first.client.wait(job["id"], timeout=30)
        assert done["status"] == "completed" and done["attempts"] == 1
        assert done["result"] == 1
    finally:
        if first.proc.poll() is None:
            first.proc.send_signal(signal.SIGCONT)
        first.kill()


def test_kill_9_releases_the_state_and_the_next_supervisor_adopts_the_worker(tmp_path, marker):
    """After ``kill -9`` the kernel drops the lock (workers never inherit it): a new one starts."""
    config = write_config(tmp_path, marker)
    first = ServerProcess(config).start()
    gate = tmp_path / "gate"
    try:
        job = running_job(first, gate)
    finally:
        first.kill()  # SIGKILL: the worker keeps running with no supervisor
    assert psutil.Process(job["pid"]).is_running()
    second = ServerProcess(config).start()
    try:
        wait_for(lambda: second.client.get(job["id"])["process_state"] == "running")
        gate.touch()
        done = second.client.wait(job["id"], timeout=30)
        assert done["status"] == "completed" and done["attempts"] == 1
    finally:
        second.kill()


def test_embedded_supervisor_on_a_locked_state_refuses_and_the_first_carries_on(
    start, worker, tmp_path
):
    """``SupervisorThread`` takes the same lock: a second one on the state raises StateLocked."""
    sv = start({"demo": worker()})
    second = SupervisorThread(sv.settings)
    with pytest.raises(StateLocked, match=rf"another supervisor \(pid {os.getpid()}\) holds"):
        second.start()
    assert second.thread is None
    job = sv.wait(sv.enqueue("demo", {"actions": [["return", "ok"]]}))
    assert job["status"] == "completed" and job["result"] == "ok"


def test_a_refused_supervisor_does_not_even_tighten_the_state_folder(start, worker):
    """The state folder is made private only once locked: a refused one leaves its mode be."""
    sv = start({"demo": worker()})
    os.chmod(sv.settings.state_dir, 0o750)
    with pytest.raises(StateLocked):
        SupervisorThread(sv.settings).start()
    assert stat.S_IMODE(sv.settings.state_dir.stat().st_mode) == 0o750


def test_a_store_shared_by_another_state_folder_is_refused(start, worker, tmp_path):
    """Two configs with different state folders but one ``db_path``: the second is refused."""
    db = tmp_path / "shared" / "jobs.db"
    start({"demo": worker()}, state=tmp_path / "a", db_path=str(db))
    other = make_settings(tmp_path / "b", {"demo": worker()}, db_path=str(db))
    with pytest.raises(StateLocked, match=f"holds the store {db}"):
        SupervisorThread(other).start()


def test_a_held_socket_folder_lock_refuses_start(tmp_path, worker):
    """The job socket folder is locked too; its holder's PID is named."""
    settings = make_settings(tmp_path / "state", {"demo": worker()})
    folder = settings.job_socket_dir
    folder.mkdir(mode=0o700, parents=True)
    with open(folder / LOCK_NAME, "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        held.write("4242\n")
        held.flush()
        with pytest.raises(StateLocked, match=rf"pid 4242\) holds the socket folder {folder}"):
            SupervisorThread(settings).start()
    SupervisorThread(settings).start().stop()  # released: it starts


def test_stopping_releases_the_state(start, worker, tmp_path):
    """A supervisor stopped gracefully releases its locks at once."""
    sv = start({"demo": worker()})
    sv.stop()
    SupervisorThread(sv.settings).start().stop()


def test_an_uncreatable_state_dir_exits_5_with_one_line(tmp_path):
    """``state_dir`` under a plain file: exit 5, one line naming the path and why."""
    (tmp_path / "file").write_text("x")
    config = tmp_path / "jobvisor.toml"
    config.write_text(
        f'state_dir = "file/state"\nhttp = "127.0.0.1:0"\nsocket_dir = "{short_socket_dir()}"\n'
    )
    result = serve(config)
    assert result.returncode == 5, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("jobvisor:")]
    assert lines == [
        f"jobvisor: {config}: state_dir: cannot create the state folder "
        f"{tmp_path / 'file' / 'state'}: Not a directory"
    ]
    assert "Traceback" not in result.stderr
