"""The Python worker library (docs/worker-python.md) as a user meets it: the example worker
``examples/workers/resize_images.py``, unchanged, run by `jobvisor serve` on both transports,
like the shell, Go and plain examples next to this file."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from supervisor.testing import TEST_RUN_VAR, ServerProcess, wait_for
from tests.supervisor.serverconfig import write_serve_config

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "workers" / "resize_images.py"
KILL_GRACE = 5.0  # long enough that a worker gone before its SIGTERM left on its own

transports = pytest.mark.parametrize("transport", ["unix", "tcp"])


@pytest.fixture
def serve(tmp_path: Path, marker: str, transport: str) -> Iterator[ServerProcess]:
    """`jobvisor serve` with one job kind, `resize`, running the example worker."""
    config = write_serve_config(
        tmp_path,
        f"""
[jobs.resize]
command = "{sys.executable}"
args = ["{EXAMPLE}"]
env = {{ {TEST_RUN_VAR} = "{marker}" }}
heartbeat_timeout = 2.0
max_attempts = 1
""",
        transport=transport,
        kill_grace=KILL_GRACE,
    )
    server = ServerProcess(config).start()
    yield server
    server.kill()


def progressed(server: ServerProcess, job_id: str) -> bool:
    """The worker reported progress: it is connected and working."""
    return server.client.get(job_id)["progress"]["percent"] is not None


def log_text(server: ServerProcess, job_id: str) -> str:
    return server.client.logs(job_id).data.decode()


@transports
def test_completes_with_result_progress_and_logs(serve: ServerProcess) -> None:
    """The example's thumbnails, its progress and its log lines reach the supervisor."""
    job_id = serve.client.submit("resize", {"images": ["a.png", "b.png"], "sizes": [64]})
    job = serve.client.wait(job_id, timeout=30)
    assert job["status"] == "completed", job
    assert job["result"] == {"thumbnails": ["a.png@64", "b.png@64"]}
    assert job["progress"]["percent"] == 100
    assert job["progress"]["message"] == "resized b.png"
    wait_for(lambda: "exited with code 0" in log_text(serve, job_id), message="the exit")
    assert "resized a.png" in log_text(serve, job_id)


@transports
def test_fails_cleanly(serve: ServerProcess) -> None:
    """An exception in the job function fails the job with its text; the worker exits 1."""
    job_id = serve.client.submit("resize", {"images": 5})
    job = serve.client.wait(job_id, timeout=30)
    assert job["status"] == "failed", job
    assert "not iterable" in job["error"]["message"]
    assert "TypeError" in job["error"]["stack"]
    wait_for(lambda: "exited with code 1" in log_text(serve, job_id), message="the exit")


@transports
def test_cancel_interrupts_the_example_before_its_sigterm(serve: ServerProcess) -> None:
    """The example never looks at ``job.cancelled``: the cancel interrupts its sleep, and the
    worker exits on its own, long before the SIGTERM due ``kill_grace`` after the cancel."""
    images = [f"{n}.png" for n in range(400)]  # a minute of "work"
    job_id = serve.client.submit("resize", {"images": images})
    wait_for(lambda: progressed(serve, job_id), message="the first progress")
    pid = serve.client.get(job_id)["pid"]
    serve.client.cancel(job_id, reason="not needed")
    assert serve.client.wait(job_id, timeout=30)["status"] == "cancelled"
    wait_for(lambda: "attempt 1: worker" in log_text(serve, job_id), message="the worker's exit")
    text = log_text(serve, job_id)
    assert "attempt 1: worker exited with code 1" in text, text
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


@transports
def test_reattaches_across_kill9_without_being_rerun(serve: ServerProcess) -> None:
    """kill -9 of the supervisor mid-job: the example re-attaches to the restarted one and
    completes in its first attempt, in the same process, with every thumbnail once."""
    images = [f"{n}.png" for n in range(12)]  # about 3.6 s of "work"
    job_id = serve.client.submit("resize", {"images": images})
    wait_for(lambda: progressed(serve, job_id), message="the first progress")
    pid = serve.client.get(job_id)["pid"]
    serve.kill()
    serve.start()
    job = serve.client.wait(job_id, timeout=30)
    assert job["status"] == "completed", job
    assert (job["attempts"], job["pid"]) == (1, pid)
    assert job["result"] == {"thumbnails": [f"{i}@{s}" for i in images for s in (64, 256)]}
    assert "worker reconnected" in log_text(serve, job_id)
