"""The Go worker library (docs/worker-go.md) run by a real supervisor: the example worker in
examples/go, built once per session, against `jobvisor serve` on both transports."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from supervisor.testing import TEST_RUN_VAR, ServerProcess, wait_for
from tests.supervisor.serverconfig import write_serve_config

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "go"
KILL_GRACE = 5.0  # long enough that a worker gone before its SIGTERM left on its own

transports = pytest.mark.parametrize("transport", ["unix", "tcp"])


@pytest.fixture(scope="session")
def go_worker(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example Go worker, built once for the session (a missing Go toolchain fails)."""
    go = shutil.which("go")
    if go is None:
        pytest.fail(
            "the Go toolchain ('go') is not on PATH: it is needed to build the Go worker "
            "(examples/go) that these tests run; install Go >= 1.23"
        )
    binary = tmp_path_factory.mktemp("go") / "jobvisor-go-example"
    build = subprocess.run(
        [go, "build", "-o", str(binary), "."],
        cwd=EXAMPLE,
        capture_output=True,
        text=True,
        check=False,
    )
    if build.returncode != 0:
        pytest.fail(f"go build in {EXAMPLE} failed:\n{build.stdout}{build.stderr}")
    return binary


@pytest.fixture
def serve(tmp_path: Path, marker: str, go_worker: Path, transport: str) -> Iterator[ServerProcess]:
    """`jobvisor serve` with one job kind, `go`, running the example worker."""
    config = write_serve_config(
        tmp_path,
        f"""
[jobs.go]
command = "{go_worker}"
env = {{ {TEST_RUN_VAR} = "{marker}" }}
heartbeat_timeout = 2.0
retry_delay = 0.1
""",
        transport=transport,
        kill_grace=KILL_GRACE,
    )
    server = ServerProcess(config).start()
    yield server
    server.kill()


def log_text(server: ServerProcess, job_id: str) -> str:
    return server.client.logs(job_id).data.decode()


@transports
def test_completes_with_result_progress_and_logs(serve: ServerProcess) -> None:
    """A Go worker's result, progress and log lines reach the supervisor, then it exits 0."""
    job_id = serve.client.submit("go", {"steps": 4, "echo": {"n": [1, 2.5, "x"]}})
    job = serve.client.wait(job_id, timeout=30)
    assert job["status"] == "completed", job
    assert job["result"] == {"steps": 4, "pid": job["pid"], "echo": {"n": [1, 2.5, "x"]}}
    assert job["progress"]["percent"] == 100
    assert job["progress"]["message"] == "step 4 of 4"
    wait_for(lambda: "exited with code 0" in log_text(serve, job_id), message="the exit")
    text = log_text(serve, job_id)
    assert "attempt 1: 4 steps of 0 ms" in text
    assert "step done" in text


@transports
def test_fails_cleanly(serve: ServerProcess) -> None:
    """An error returned by the job function fails the job with its text; the worker exits 1."""
    job_id = serve.client.submit("go", {"steps": 1, "fail": "the disk is full"})
    job = serve.client.wait(job_id, timeout=30)
    assert job["status"] == "failed", job
    assert job["error"]["message"] == "the disk is full"
    wait_for(lambda: "exited with code 1" in log_text(serve, job_id), message="the exit")


@transports
def test_cancel_stops_the_worker_before_its_sigterm(serve: ServerProcess, tmp_path: Path) -> None:
    """A cancel cancels the job's context: the worker reports and exits on its own, unsignalled."""
    ready = tmp_path / "ready"
    job_id = serve.client.submit(
        "go", {"steps": 0, "ready_file": str(ready), "wait_file": str(tmp_path / "never")}
    )
    wait_for(ready.exists, message="the worker to start")
    pid = serve.client.get(job_id)["pid"]
    serve.client.cancel(job_id, reason="not needed")
    job = serve.client.wait(job_id, timeout=30)
    assert job["status"] == "cancelled", job
    wait_for(lambda: "attempt 1: worker" in log_text(serve, job_id), message="the worker's exit")
    text = log_text(serve, job_id)
    # SIGTERM would come kill_grace after the cancel: a worker that exited with a code of
    # its own was gone before it.
    assert "attempt 1: worker exited with code 1" in text, text
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


@transports
def test_reattaches_across_kill9_without_being_rerun(serve: ServerProcess, tmp_path: Path) -> None:
    """A Go worker that finished while its supervisor was dead (kill -9) re-attaches to the
    restarted one, replays its outcome and logs, and the job completes in its first attempt."""
    ready, go_on, done = tmp_path / "ready", tmp_path / "go-on", tmp_path / "done"
    job_id = serve.client.submit(
        "go",
        {"steps": 2, "ready_file": str(ready), "wait_file": str(go_on), "done_file": str(done)},
    )
    wait_for(ready.exists, message="the worker to start")
    wait_for(
        lambda: serve.client.get(job_id)["progress"]["percent"] is not None, message="progress"
    )
    pid = serve.client.get(job_id)["pid"]
    serve.kill()
    go_on.touch()
    wait_for(done.exists, message="the worker to finish its work while the supervisor is down")
    serve.start()
    job = serve.client.wait(job_id, timeout=30)
    assert job["status"] == "completed", job
    assert job["attempts"] == 1
    assert job["pid"] == pid
    assert job["result"]["pid"] == pid
    assert job["progress"]["percent"] == 100
    assert ready.read_text().split() == [str(pid)]  # the work ran once
    text = log_text(serve, job_id)
    assert f"found {go_on}" in text  # logged while the supervisor was down
    assert "reconnected to the supervisor" in text
