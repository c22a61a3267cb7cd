"""Reconnection, replay, give-up and refusals, with real worker processes and sockets."""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path

import psutil
import pytest

from protocol import Failed, Log, Progress
from tests.worker.fake_supervisor import FakeSupervisor

FATAL_CODES = ["bad_token", "unknown_job", "wrong_job", "job_not_running", "unsupported_version"]
GIVE_UP_FAST = {"reconnect_interval": 0.05, "max_reconnect_attempts": 10}  # 0.5 s window
# Generous: the worker retries every ~20 ms, but this machine is shared and noisy.
RECONNECT_BOUND = 1.0


def _types(fake: FakeSupervisor, conn: int) -> list[str]:
    return [r.type for r in fake.messages(conn=conn) if r.type != "heartbeat"]


def _dead(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_reconnect_replays_latest_progress_logs_and_outcome(fake, spawn, tmp_path: Path):
    """After a restart the worker says hello+started, then latest progress, logs, outcome."""
    go, queued = tmp_path / "go", tmp_path / "queued"
    fake.data = {
        "steps": [
            ["progress", 10, "before"],
            ["wait_file", str(go)],
            ["progress", 20, "down 1"],
            ["progress", 30, "down 2"],
            ["progress", 40, "latest"],
            ["logs", "info", "while down ", 3],
            ["touch", str(queued)],
            ["return", {"ok": True}],
        ]
    }
    worker = spawn(fake)
    fake.wait_message("progress", conn=0)
    fake.go_down()
    worker.wait_log("connection to the supervisor lost")
    go.touch()
    fake.wait_for(queued.exists, what="the worker to queue while disconnected")
    time.sleep(0.5)  # the supervisor stays down a while; the worker keeps retrying
    reopened = fake.reopen_listener()
    hello = fake.wait_message("hello", conn=1)
    assert hello.at - reopened < RECONNECT_BOUND, f"reconnected {hello.at - reopened:.3f} s late"
    fake.wait_message("completed", conn=1)
    assert _types(fake, 1) == [
        "hello",
        "auth",
        "started",
        "progress",
        "log",
        "log",
        "log",
        "completed",
    ]
    (progress,) = fake.messages_of(Progress, conn=1)
    assert (progress.percent, progress.message) == (40, "latest")
    logs = fake.messages_of(Log, conn=1)
    assert [m.message for m in logs] == [f"while down {i}" for i in range(3)]
    fake.send_ack()
    assert worker.wait() == 0
    assert "reconnected to the supervisor" in worker.log()


def test_buffered_log_overflow_drops_oldest_and_reports_count(fake, spawn, tmp_path: Path):
    """Past max_buffered_logs the oldest logs go, and a warn log says how many."""
    go, queued = tmp_path / "go", tmp_path / "queued"
    fake.auto_ack = True
    fake.data = {
        "steps": [
            ["touch", str(tmp_path / "ready")],
            ["wait_file", str(go)],
            ["logs", "info", "m", 8],
            ["touch", str(queued)],
            ["return", None],
        ]
    }
    worker = spawn(fake, options={"max_buffered_logs": 5})
    fake.wait_for((tmp_path / "ready").exists, what="the worker to start")
    fake.wait_message("started")
    fake.go_down()
    worker.wait_log("connection to the supervisor lost")
    go.touch()
    fake.wait_for(queued.exists, what="the worker to log while disconnected")
    fake.reopen_listener()
    assert worker.wait() == 0
    warning, *logs = fake.messages_of(Log, conn=1)
    assert warning.level == "warn"
    assert "dropped the 3 oldest" in warning.message
    assert warning.data == {"dropped": 3}
    assert [m.message for m in logs] == [f"m{i}" for i in range(3, 8)]


def test_unacked_outcome_is_resent_on_the_next_connection(fake, spawn):
    """An outcome sent but not acked before the connection broke is sent again."""
    fake.data = {"steps": [["return", "result"]]}
    worker = spawn(fake)
    fake.wait_message("completed", conn=0)
    fake.drop_connections()  # the listener stays: the worker is back at once
    fake.wait_message("completed", conn=1)
    assert _types(fake, 1) == ["hello", "auth", "started", "completed"]
    fake.send_ack()
    assert worker.wait() == 0


def test_initial_connect_retries_until_the_supervisor_listens(fake, spawn):
    """A worker started while its supervisor is not listening yet connects once it is."""
    fake.close_listener()
    fake.auto_ack = True
    fake.data = {"steps": [["return", None]]}
    worker = spawn(fake)
    time.sleep(0.3)
    assert worker.alive()
    reopened = fake.reopen_listener()
    hello = fake.wait_message("hello", conn=0)
    assert hello.at - reopened < RECONNECT_BOUND
    assert worker.wait() == 0


@pytest.mark.parametrize("tcp", [False, True], ids=["unix", "tcp"])
def test_give_up_exits_75_and_kills_the_process_group(spawn, tmp_path: Path, tcp: bool):
    """No supervisor for the whole give-up window: exit 75, helper processes killed too."""
    pidfile = tmp_path / "child.pid"
    # The welcome's schedule is the one that counts once the worker was welcomed.
    with FakeSupervisor(tcp=tcp, reconnect_interval=0.05, give_up_after=0.5) as fake:
        fake.data = {
            "steps": [["spawn_sleeper", str(pidfile)], ["wait_file", str(tmp_path / "never"), 60]]
        }
        worker = spawn(fake, new_session=True)
        fake.wait_for(pidfile.exists, what="the helper process")
        child = int(pidfile.read_text())
        assert not _dead(child)
        fake.go_down()
        down = time.monotonic()
        assert worker.wait(10) == 75
        assert time.monotonic() - down >= 0.4  # it kept trying for (about) its window
        fake.wait_for(lambda: _dead(child), 5, "the helper process to be killed")
        assert "no supervisor accepted this job" in worker.log()


def test_give_up_when_not_a_group_leader_just_exits_75(fake, spawn):
    """A worker that does not lead its process group exits 75 without killing the group."""
    fake.close_listener()
    fake.data = {"steps": []}
    worker = spawn(fake, options=GIVE_UP_FAST, new_session=False)
    assert worker.wait(10) == 75


def test_backing_off_is_logged_once_per_outage(fake, spawn):
    """When the fast window ends without a supervisor, the worker says so once, then waits."""
    fake.close_listener()
    fake.data = {"steps": []}
    worker = spawn(fake, options={**GIVE_UP_FAST, "fast_reconnect_window": 0.1})
    assert worker.wait(10) == 75
    log = worker.log()
    assert log.count("still unreachable") == 1
    left = re.search(r"giving up in ([0-9.]+) s", log)
    assert left is not None
    assert float(left.group(1)) <= 0.4  # said after the 0.1 s window, of the 0.5 s


@pytest.mark.parametrize("code", FATAL_CODES)
def test_fatal_refusal_exits_77_quickly(fake, spawn, code: str):
    """A hello refused with a code meaning "not your job" stops the worker with 77."""
    fake.refuse(code)
    worker = spawn(fake)
    started = time.monotonic()
    assert worker.wait(10) == 77
    assert time.monotonic() - started < 5
    assert code in worker.log()
    assert len(fake.messages("hello")) == 1  # no pointless retry


def test_wrong_token_makes_the_supervisor_look_like_an_impostor(fake, spawn):
    """With a wrong token the supervisor's proof fails: no auth is sent, and it gives up (75)."""
    worker = spawn(fake, env={"JOBVISOR_TOKEN": "not-the-token"}, options=GIVE_UP_FAST)
    assert worker.wait(10) == 75
    assert "challenge proof is wrong" in worker.log()
    assert {r.type for r in fake.messages()} == {"hello"}
    assert len(fake.messages("hello")) >= 2  # each impostor-looking answer is one failed try


def test_refusal_after_reconnect_stops_the_running_job(fake, spawn, tmp_path: Path):
    """A restarted supervisor that says job_not_running ends the job and its helpers."""
    pidfile = tmp_path / "child.pid"
    fake.data = {
        "steps": [["spawn_sleeper", str(pidfile)], ["wait_file", str(tmp_path / "never"), 60]]
    }
    worker = spawn(fake, new_session=True)
    fake.wait_for(pidfile.exists, what="the helper process")
    child = int(pidfile.read_text())
    fake.go_down()
    fake.refuse("job_not_running")
    fake.reopen_listener()
    assert worker.wait(10) == 77
    fake.wait_for(lambda: _dead(child), 5, "the helper process to be killed")


def test_non_fatal_refusal_is_retried(fake, spawn):
    """An error code that does not disown the job (e.g. a busy supervisor) means retry."""
    fake.refuse("overloaded", times=2)
    fake.auto_ack = True
    fake.data = {"steps": [["return", None]]}
    worker = spawn(fake)
    assert worker.wait(10) == 0
    assert [len(fake.messages("hello", conn=i)) for i in range(3)] == [1, 1, 1]
    assert _types(fake, 2) == ["hello", "auth", "started", "completed"]


def test_garbage_from_the_supervisor_causes_a_reconnect(fake, spawn, tmp_path: Path):
    """Bytes that are not a valid frame make the worker drop the connection and come back."""
    fake.auto_ack = True
    fake.data = {"steps": [["wait_file", str(tmp_path / "go")], ["return", None]]}
    worker = spawn(fake)
    fake.wait_message("started", conn=0)
    fake.send_raw(b"\x00\x00\x00\x02\xc1\xc1")  # 0xc1 is never valid msgpack
    fake.wait_message("started", conn=1)
    (tmp_path / "go").touch()
    assert worker.wait() == 0
    assert "protocol violation" in worker.log()


@pytest.mark.parametrize("target", ["dev_full", "closed_pipe"])
def test_stderr_write_errors_do_not_kill_the_worker(fake, spawn, tmp_path: Path, target: str):
    """With stderr unwritable the worker still reconnects, reports its failure and exits 1."""
    go = tmp_path / "go"
    fake.data = {"steps": [["wait_file", str(go)], ["raise", "boom"]]}
    if target == "dev_full":
        with open("/dev/full", "wb") as devfull:
            worker = spawn(fake, stderr=devfull)
    else:
        worker = spawn(fake, stderr=subprocess.PIPE)
        assert worker.proc.stderr is not None
        worker.proc.stderr.close()
    fake.wait_message("started", conn=0)
    fake.drop_connections()  # makes the library write "connection lost" / "reconnected"
    fake.wait_message("started", conn=1)
    go.touch()  # the traceback goes to stderr too
    fake.wait_message("failed", conn=1)
    assert [m.error for m in fake.messages_of(Failed, conn=1)] == ["boom"]
    fake.send_ack("failed")
    assert worker.wait() == 1


def test_reconnect_over_tcp_comes_back_to_the_same_port(spawn, tmp_path: Path):
    """Over loopback TCP the worker reconnects to the same port once it listens again."""
    with FakeSupervisor(tcp=True) as fake:
        fake.auto_ack = True
        fake.data = {"steps": [["wait_file", str(tmp_path / "go")], ["return", "tcp"]]}
        worker = spawn(fake)
        fake.wait_message("started", conn=0)
        port = fake.port
        fake.go_down()
        worker.wait_log("connection to the supervisor lost")
        time.sleep(0.3)
        reopened = fake.reopen_listener()
        assert fake.port == port
        hello = fake.wait_message("hello", conn=1)
        assert hello.at - reopened < RECONNECT_BOUND
        (tmp_path / "go").touch()
        assert worker.wait() == 0
        assert not fake.errors


def test_an_impostor_after_a_restart_gets_nothing_and_the_real_supervisor_everything(
    fake, spawn, tmp_path: Path
):
    """A peer that cannot prove the token gets only hellos; the outcome waits for the real one."""
    go = tmp_path / "go"
    fake.data = {"steps": [["wait_file", str(go)], ["log", "info", "done"], ["return", "real"]]}
    worker = spawn(fake)
    fake.wait_message("started", conn=0)
    fake.go_down()
    fake.proof_token = "not-the-token"  # whoever listens now does not know the token
    fake.reopen_listener()
    go.touch()
    fake.wait_message("hello", conn=2)  # tried it twice: each wrong proof is a failed try
    impostor_conns = {r.conn for r in fake.messages()} - {0}
    assert {r.type for r in fake.messages() if r.conn in impostor_conns} == {"hello"}
    fake.proof_token = fake.token  # the real supervisor is back
    fake.auto_ack = True
    fake.wait_message("completed")
    assert worker.wait() == 0
    assert "challenge proof is wrong" in worker.log()
    assert [m.message for m in fake.messages_of(Log)] == ["done"]


def test_connections_dropped_right_after_welcome_back_off_and_are_logged_once(fake, spawn):
    """A supervisor that hangs up after every welcome gets ever slower tries and two lines."""
    fake.drop_after_welcome = True
    fake.reconnect_interval = 0.4  # the cap the back-off grows to (from the welcome)
    fake.data = {"steps": [["wait_file", "/nonexistent/never", 60]]}
    # No fast window at all: without the fix every welcome began a new outage that
    # retried at once; with it the tries come 50, 100, 200, 400, 400 ms apart.
    worker = spawn(fake, options={"fast_reconnect_window": 0})
    fake.wait_message("hello", conn=6, timeout=20)
    hellos = [r.at for r in fake.messages("hello")]
    assert hellos[6] - hellos[5] >= 0.4
    assert hellos[6] - hellos[0] >= 0.05 + 0.1 + 0.2 + 0.4 + 0.4
    log = worker.log()
    assert log.count("connection to the supervisor lost") == 1
    assert log.count("keep dropping right after their welcome") == 1
    assert "reconnected to the supervisor" in log  # the first one is told, not the rest
    assert log.count("reconnected to the supervisor") == 1
    assert worker.alive()
