"""Test harnesses that ship with the package: a supervisor on a thread, one in a process.

``SupervisorThread`` runs a real ``Supervisor`` (real sockets, real workers, a real
store) on a background thread; the test thread talks to it with ``call``, which runs a
function on the loop and returns once that iteration has committed. ``ServerProcess``
runs ``jobvisor serve`` as a child process, for tests that kill it with SIGKILL.
Both are used by jobvisor's own tests and are meant for applications' tests too.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import psutil

from supervisor.client import Client
from supervisor.config import Settings, settings_from_mapping
from supervisor.core import Supervisor
from supervisor.events import Event
from supervisor.http.server import HttpServer
from supervisor.views import job_json

T = TypeVar("T")
TEST_RUN_VAR = "JOBVISOR_TEST_RUN"


def short_socket_dir() -> str:
    """A fresh private folder with a short path (Unix socket paths max out at 107 bytes)."""
    return tempfile.mkdtemp(prefix="jv-", dir="/tmp")


def make_settings(
    state_dir: Path, jobs: Mapping[str, Mapping[str, Any]] | None = None, **options: Any
) -> Settings:
    """Settings for a test: state in ``state_dir``, HTTP on an ephemeral port."""
    data: dict[str, Any] = {
        "state_dir": str(state_dir),
        "http": "127.0.0.1:0",
        "socket_dir": short_socket_dir(),
        "flush_interval": 0.2,
        "kill_grace": 1.0,
        "jobs": {name: dict(kind) for name, kind in (jobs or {}).items()},
    }
    data.update(options)
    return settings_from_mapping(data, base_dir=state_dir, source="<test>")


def wait_for(
    predicate: Callable[[], T | None],
    timeout: float = 20.0,
    interval: float = 0.02,
    message: str = "condition",
) -> T:
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout} s waiting for {message}")
        time.sleep(interval)


class SupervisorThread:
    def __init__(self, settings: Settings, **kwargs: Any) -> None:
        self.settings = settings
        self.sup = Supervisor(settings, **kwargs)
        self.http: HttpServer | None = None
        self.thread: threading.Thread | None = None
        self.events: list[Event] = []
        self._events_lock = threading.Lock()

    def start(self) -> SupervisorThread:
        self.sup.open()
        self.sup.on("*", self._record)
        if self.settings.http_host is not None:
            self.http = HttpServer(self.sup, self.settings.http_host, self.settings.http_port)
        self.thread = threading.Thread(
            target=self.sup.serve_forever, name="jobvisor-loop", daemon=True
        )
        self.thread.start()
        return self

    def __enter__(self) -> SupervisorThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _record(self, event: Event) -> None:
        with self._events_lock:
            self.events.append(event)

    def event_names(self, job_id: str | None = None) -> list[str]:
        with self._events_lock:
            return [e.name for e in self.events if job_id is None or e.data.get("id") == job_id]

    @property
    def client(self) -> Client:
        assert self.http is not None, "HTTP is disabled in these settings"
        return Client(self.http.url, self.settings.auth_token)

    def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run ``fn`` on the loop thread; return its result once it is committed."""
        future: concurrent.futures.Future[T] = concurrent.futures.Future()

        def run() -> None:
            try:
                result = fn(*args, **kwargs)
            except BaseException as exc:  # handed to the caller's thread
                future.set_exception(exc)
                return
            self.sup.loop.after_commit(lambda: future.set_result(result))

        self.sup.loop.call_threadsafe(run)
        return future.result(timeout=30)

    def enqueue(self, name: str, data: Any = None, **options: Any) -> str:
        return self.call(lambda: self.sup.enqueue(name, data, **options).id)

    def job(self, job_id: str) -> dict[str, Any]:
        """A snapshot of the job as the API shows it."""

        def snapshot() -> dict[str, Any]:
            job = self.sup.get(job_id)
            assert job is not None, f"no job {job_id}"
            return job_json(job)

        return self.call(snapshot)

    def wait(self, job_id: str, *statuses: str, timeout: float = 30.0) -> dict[str, Any]:
        """Poll until the job reaches one of ``statuses`` (default: any final one)."""
        wanted = set(statuses or ("completed", "failed", "cancelled"))

        def reached() -> dict[str, Any] | None:
            job = self.job(job_id)
            return job if job["status"] in wanted else None

        return wait_for(
            reached, timeout, 0.05, f"job {job_id} to become {'/'.join(sorted(wanted))}"
        )

    def stop(self) -> None:
        if self.thread is not None and self.thread.is_alive():
            self.sup.loop.call_threadsafe(self.sup.loop.stop)
            self.thread.join(timeout=30)
        if self.http is not None:
            self.http.close()
            self.http = None
        if self.thread is not None:
            self.sup.close()
            self.thread = None


class ServerProcess:
    """``jobvisor serve --config FILE`` in a child process."""

    def __init__(
        self, config: Path, *, log: Path | None = None, env: Mapping[str, str] | None = None
    ) -> None:
        self.config = config
        self.log = log or config.with_suffix(".log")
        self.env = {**os.environ, **(env or {})}
        self.proc: subprocess.Popen[str] | None = None
        self.url = ""
        self.started_at = 0.0  # time.time() just before the process was started
        self.listening_at = 0.0  # time.time() when the "listening" line was read

    def start(self, timeout: float = 30.0) -> ServerProcess:
        log = open(self.log, "a")  # noqa: SIM115 - handed to the child, closed below
        self.started_at = time.time()
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "supervisor", "--config", str(self.config), "serve"],
                stdout=subprocess.PIPE,
                stderr=log,
                stdin=subprocess.DEVNULL,
                text=True,
                env=self.env,
            )
        finally:
            log.close()
        assert self.proc.stdout is not None
        line = _readline(self.proc, timeout)
        self.listening_at = time.time()
        prefix = "jobvisor listening on "
        if not line.startswith(prefix):
            self.kill()
            raise RuntimeError(f"supervisor did not start: {line!r}; see {self.log}")
        self.url = line[len(prefix) :].strip()
        return self

    @property
    def client(self) -> Client:
        return Client(self.url)

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=30)

    def stop(self) -> None:
        self.kill(signal.SIGTERM)


def _readline(proc: subprocess.Popen[str], timeout: float) -> str:
    result: list[str] = []
    reader = threading.Thread(
        target=lambda: result.append(proc.stdout.readline()),  # type: ignore[union-attr]
        daemon=True,
    )
    reader.start()
    reader.join(timeout)
    return result[0] if result else ""


def kill_workers(marker: str) -> int:
    """SIGKILL every process whose environment has ``JOBVISOR_TEST_RUN=marker``."""
    killed = 0
    for process in psutil.process_iter():
        with contextlib.suppress(psutil.Error):
            if process.environ().get(TEST_RUN_VAR) == marker:
                process.kill()
                killed += 1
    return killed


def live_workers(marker: str) -> Iterable[psutil.Process]:
    for process in psutil.process_iter():
        with contextlib.suppress(psutil.Error):
            if process.environ().get(TEST_RUN_VAR) == marker and process.status() != "zombie":
                yield process
