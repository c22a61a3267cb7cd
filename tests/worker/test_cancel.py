"""A cancel interrupts a Python job function: real workers under a real supervisor.

The supervisor's ``kill_grace`` is long (60 s) so that a worker that was not interrupted
would still be running when the test gives up waiting for it: the process disappearing
is the library's doing, not the supervisor's SIGTERM.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from jobvisor_worker import JobCancelled, connect
from supervisor.testing import TEST_RUN_VAR, SupervisorThread, process_gone, wait_for
from tests.worker.fake_supervisor import FakeSupervisor
from tests.worker.worker_process import WorkerProcess

WORKER = Path(__file__).parent / "workers" / "cancellable.py"
KILL_GRACE = 60.0
GONE_WITHIN = 15.0  # well before KILL_GRACE


def _kind(marker: str, **env: str) -> dict[str, Any]:
    return {
        "command": sys.executable,
        "args": [str(WORKER)],
        "env": {TEST_RUN_VAR: marker, **env},
        "max_attempts": 1,
    }


def _cancel_while_blocked(
    sv: SupervisorThread, tmp_path: Path, block: str
) -> tuple[dict[str, Any], int, Path]:
    """Start a job that blocks in ``block``, cancel it, wait for the process to go."""
    ready, out = tmp_path / "ready", tmp_path / "out"
    job_id = sv.enqueue("cancellable", {"block": block, "ready": str(ready), "out": str(out)})
    wait_for(ready.exists, message="the worker to block")
    pid = sv.job(job_id)["pid"]
    sv.cancel(job_id, "user asked")
    wait_for(lambda: process_gone(pid), timeout=GONE_WITHIN, message="the worker to exit")
    log = sv.settings.log_dir / f"{job_id}.log"
    wait_for(lambda: "exited with" in log.read_text(), message="the exit in the job log")
    return sv.job(job_id), pid, out


@pytest.fixture
def sv(
    start: Callable[..., SupervisorThread], marker: str, request: pytest.FixtureRequest
) -> SupervisorThread:
    """A supervisor with the cancellable kind, on the transport the test asks for."""
    env = getattr(request, "param", {})
    return start(
        {"cancellable": _kind(marker, **env)},
        transport=env.get("transport", "unix"),
        kill_grace=KILL_GRACE,
    )


@pytest.mark.parametrize("transport", ["unix", "tcp"])
@pytest.mark.parametrize("block", ["busy", "sleep"])
def test_cancel_interrupts_a_busy_loop_and_a_sleep(start, marker, tmp_path, transport, block):
    """A cancel raises JobCancelled in a busy loop or a time.sleep(60); the worker exits at once."""
    sv = start({"cancellable": _kind(marker)}, transport=transport, kill_grace=KILL_GRACE)
    job, _pid, out = _cancel_while_blocked(sv, tmp_path, block)
    assert job["status"] == "cancelled"
    assert out.read_text() == "JobCancelled: user asked\n"
    log = (sv.settings.log_dir / f"{job['id']}.log").read_text()
    assert "the job was cancelled (user asked); reporting it as failed" in log
    assert "exited with code 1" in log  # its own exit after the ack, not a signal


@pytest.mark.parametrize("block", ["recv", "subprocess", "swallow"])
def test_cancel_interrupts_blocking_calls(sv, tmp_path, block):
    """socket.recv and subprocess.run are interrupted too (subprocess kills its child), and
    an ``except Exception:`` around the sleep does not swallow the cancel."""
    job, _pid, out = _cancel_while_blocked(sv, tmp_path, block)
    assert job["status"] == "cancelled"
    assert out.read_text() == "JobCancelled: user asked\n"
    if block == "subprocess":
        child = int(out.with_suffix(".child").read_text())
        wait_for(lambda: process_gone(child), message="the job's child to be killed")


@pytest.mark.parametrize("sv", [{"JV_TEST_POLL": "1"}], indirect=True)
def test_opting_out_keeps_polling(sv, tmp_path):
    """With interrupt_on_cancel=False nothing is raised: the function sees job.cancelled."""
    job, _pid, out = _cancel_while_blocked(sv, tmp_path, "poll")
    assert job["status"] == "cancelled"
    assert out.read_text() == "polled\n"
    log = (sv.settings.log_dir / f"{job['id']}.log").read_text()
    assert "exited with code 0" in log  # it returned normally: completed, acked


def test_a_user_handler_for_the_signal_is_restored_and_still_called(fake: FakeSupervisor):
    """A SIGURG handler installed before stays in charge outside the block and gets stray
    signals inside it, while the cancel interrupts the block."""
    seen: list[int] = []
    previous = signal.signal(signal.SIGURG, lambda signum, _frame: seen.append(signum))
    try:
        with connect(env=fake.env()) as job:
            with pytest.raises(JobCancelled, match="stop now"), job.interruptible() as armed:
                assert armed
                signal.raise_signal(signal.SIGURG)  # a stray one: not a cancel
                fake.send_cancel("stop now")
                threading.Event().wait(30)  # interrupted long before
            assert seen == [signal.SIGURG]
            handler = signal.getsignal(signal.SIGURG)
            assert callable(handler) and handler is not job._interrupter._on_signal
            signal.raise_signal(signal.SIGURG)
            assert seen == [signal.SIGURG, signal.SIGURG]
    finally:
        signal.signal(signal.SIGURG, previous)


def test_a_cancel_before_the_block_raises_as_it_starts(fake: FakeSupervisor):
    """A job cancelled before its function starts is interrupted at the start, once."""
    with connect(env=fake.env()) as job:
        fake.send_cancel("too late")
        wait_for(lambda: job.cancelled)
        with pytest.raises(JobCancelled, match="too late"), job.interruptible():
            pytest.fail("the body ran")
        with job.interruptible():  # only once per job
            pass


def test_off_the_main_thread_nothing_is_interrupted(fake: FakeSupervisor):
    """Off the main thread interruptible() yields False and a cancel only sets the flag."""
    outcome: list[object] = []
    with connect(env=fake.env()) as job:

        def body() -> None:
            with job.interruptible() as armed:
                outcome.append(armed)
                outcome.append(job.cancel_event.wait(20))

        thread = threading.Thread(target=body)
        thread.start()
        wait_for(lambda: outcome)
        fake.send_cancel("elsewhere")
        thread.join(20)
    assert outcome == [False, True]


def test_a_cancel_while_waiting_for_the_ack_keeps_the_reported_outcome(
    fake: FakeSupervisor, spawn: Callable[..., WorkerProcess]
):
    """Interrupted in its own job.complete(), the worker keeps that outcome, reports
    nothing else and exits 0 once it is acked."""
    fake.data = {"steps": [["complete", {"done": 1}]]}
    worker = spawn(fake)
    fake.wait_message("completed")
    fake.send_cancel("late")
    fake.wait_for(
        lambda: "after reporting completed; waiting for the ack" in worker.log(),
        what="the interrupt to land in complete()",
    )
    assert worker.alive()
    fake.send_ack("completed")
    assert worker.wait() == 0
    assert [m.type for m in fake.messages() if m.type in ("completed", "failed")] == ["completed"]


def test_a_replaced_handler_leaves_the_job_polling(fake: FakeSupervisor, capfd):
    """A job function that installs its own SIGURG handler is not interrupted: the cancel
    sets job.cancelled and one line on stderr says why."""
    with connect(env=fake.env()) as job, job.interruptible() as armed:
        assert armed
        signal.signal(signal.SIGURG, signal.SIG_IGN)
        fake.send_cancel("stop")
        assert job.cancel_event.wait(20)
    assert "the job replaced the SIGURG handler" in capfd.readouterr().err
    assert signal.getsignal(signal.SIGURG) == signal.SIG_DFL
