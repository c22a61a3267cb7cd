"""The worker library in real worker processes, against a fake supervisor on a real socket."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from protocol import Completed, Failed, Hello, Log, Progress, Started
from tests.worker.fake_supervisor import FakeSupervisor


def test_handshake_sends_hello_then_started_and_hands_over_welcome_data(fake, spawn):
    """The worker says hello (job id, pid, nonce: no token), auth, started; job.* from welcome."""
    fake.data = {"steps": [["return_identity"]], "n": 1}
    fake.name = "resize-images"
    fake.attempt = 2
    worker = spawn(fake)
    fake.wait_message("completed")
    types = [r.type for r in fake.messages(conn=0)]
    assert types == ["hello", "auth", "started", "completed"]
    (hello,) = fake.messages_of(Hello)
    assert (hello.v, hello.job_id, hello.pid) == (2, "job-1", worker.pid)
    assert hello.nonce is not None and len(hello.nonce) == 32
    (done,) = fake.messages_of(Completed)
    assert done.result == {
        "id": "job-1",
        "name": "resize-images",
        "data": fake.data,
        "attempt": 2,
    }
    fake.send_ack("completed")
    assert worker.wait() == 0


def test_progress_logs_and_heartbeats_arrive(fake, spawn):
    """Progress with data, each log level, and periodic heartbeats reach the supervisor."""
    fake.auto_ack = True
    fake.data = {
        "steps": [
            ["progress", 42.5, "halfway", {"rows": 10}],
            ["log", "debug", "d"],
            ["log", "info", "i", {"k": 1}],
            ["log", "warn", "w"],
            ["log", "error", "e"],
            ["sleep", 0.6],
            ["return", None],
        ]
    }
    worker = spawn(fake)
    assert worker.wait() == 0
    (progress,) = fake.messages_of(Progress)
    assert (progress.percent, progress.message, progress.data) == (42.5, "halfway", {"rows": 10})
    logs = fake.messages_of(Log)
    assert [(m.level, m.message, m.data) for m in logs] == [
        ("debug", "d", None),
        ("info", "i", {"k": 1}),
        ("warn", "w", None),
        ("error", "e", None),
    ]
    # 0.6 s of silence at a 0.1 s interval: several heartbeats, whatever the machine's load.
    assert len(fake.messages("heartbeat")) >= 2


def test_complete_blocks_until_ack_then_exits_0(fake, spawn):
    """The worker does not exit after sending completed until the supervisor acks it."""
    fake.data = {"steps": [["return", {"ok": True}]]}
    worker = spawn(fake)
    done = fake.wait_message("completed")
    assert done.message == Completed(result={"ok": True}, ts=done.message.ts)
    time.sleep(0.5)  # a window in which an eager worker would have exited
    assert worker.alive(), "the worker exited before its outcome was acked"
    fake.send_ack("completed")
    assert worker.wait() == 0


def test_exception_fails_with_stack_and_exits_1_after_ack(fake, spawn):
    """An exception in the job function is reported as failed with its traceback."""
    fake.data = {"steps": [["raise", "boom"]]}
    worker = spawn(fake)
    fake.wait_message("failed")
    (failed,) = fake.messages_of(Failed)
    assert failed.error == "boom"
    assert failed.stack is not None
    assert "Traceback" in failed.stack
    assert "ValueError: boom" in failed.stack
    time.sleep(0.3)
    assert worker.alive(), "the worker exited before its outcome was acked"
    fake.send_ack("failed")
    assert worker.wait() == 1
    assert "ValueError: boom" in worker.log()


@pytest.mark.parametrize(
    ("step", "what", "why"),
    [
        (["return_unencodable"], "return value", "cannot be encoded as msgpack"),
        (["return_repeat", "x", 2_000_000], "return value", "more than the 1048576-byte"),
        (["raise_repeat", "x", 2_000_000], "error", "more than the 1048576-byte"),
    ],
    ids=["unencodable_result", "too_large_result", "too_large_error"],
)
def test_an_outcome_that_cannot_be_sent_fails_the_job(fake, spawn, step: list, what: str, why: str):
    """A result or error that cannot go on the wire is reported as a failure saying so (exit 1)."""
    fake.auto_ack = True
    fake.data = {"steps": [step]}
    worker = spawn(fake)
    assert worker.wait() == 1
    assert fake.messages("completed") == []
    (failed,) = fake.messages_of(Failed)
    assert failed.error.startswith(f"the job's {what} cannot be reported: ")
    assert why in failed.error
    assert "cannot be reported" in worker.log()


def test_ack_of_the_other_outcome_is_ignored(fake, spawn):
    """An ack that does not match the reported outcome does not release the worker."""
    fake.data = {"steps": [["return", 1]]}
    worker = spawn(fake)
    fake.wait_message("completed")
    fake.send_ack("failed")
    time.sleep(0.3)
    assert worker.alive()
    fake.send_ack("completed")
    assert worker.wait() == 0


def test_cancel_sets_flag_and_runs_callbacks(fake, spawn, tmp_path: Path):
    """With interrupts off, a cancel sets job.cancelled and calls on_cancel callbacks; a
    raising one is logged."""
    marker = tmp_path / "cancelled"
    fake.auto_ack = True
    fake.data = {
        "steps": [
            ["on_cancel_raise"],
            ["on_cancel_touch", str(marker)],
            ["touch", str(tmp_path / "ready")],
            ["wait_cancel", 20],
            ["wait_file", str(marker), 10],
            ["return_cancel"],
        ]
    }
    worker = spawn(fake, options={"interrupt_on_cancel": False})
    fake.wait_for((tmp_path / "ready").exists, what="the worker to register callbacks")
    fake.send_cancel("user asked")
    assert worker.wait() == 0
    (result,) = fake.messages_of(Completed)
    assert result.result == {"cancelled": True, "reason": "user asked"}
    assert "ZeroDivisionError" in worker.log()


def test_explicit_connect_complete_returns_only_after_ack(fake, spawn, tmp_path: Path):
    """With connect(), job.complete() returns after the ack, and the process exits 0."""
    acked = tmp_path / "acked"
    fake.data = {"x": 1}
    worker = spawn(fake, "explicit.py", env={"JV_TEST_ACKED": str(acked)})
    fake.wait_message("completed")
    (done,) = fake.messages_of(Completed)
    assert done.result == {"explicit": True, "payload": {"x": 1}}
    time.sleep(0.3)
    assert not acked.exists()
    fake.send_ack()
    assert worker.wait() == 0
    assert acked.exists()
    types = [r.type for r in fake.messages(conn=0) if r.type != "heartbeat"]
    assert types == ["hello", "auth", "started", "progress", "completed"]


def test_started_is_sent_once_per_connection(fake: FakeSupervisor, spawn):
    """The first connection carries exactly one started, right after hello and auth."""
    fake.auto_ack = True
    fake.data = {"steps": [["return", None]]}
    assert spawn(fake).wait() == 0
    assert [isinstance(r.message, Started) for r in fake.messages(conn=0)][:3] == [
        False,
        False,
        True,
    ]
    assert len(fake.messages("started")) == 1
