"""A supervisor inside your Python process, on its own thread, with a thread-safe API.

The supervisor is single-threaded by design: its loop owns all state. ``SupervisorThread``
runs that loop on a background thread and lets other threads use it through ``call``,
which runs a function on the loop and returns once the loop iteration that ran it has
committed. ``enqueue`` therefore returns only when the job is durable, as over HTTP.

    sv = SupervisorThread(load_config("jobvisor.toml")).start()
    job_id = sv.enqueue("resize", {"images": ["a.png"]})
    print(sv.wait(job_id)["result"])
    sv.stop()   # graceful: workers keep running and re-attach to the next supervisor
"""

from __future__ import annotations

import concurrent.futures
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from supervisor.client import Client
from supervisor.config import Settings
from supervisor.core import Supervisor
from supervisor.events import Event
from supervisor.http.server import HttpServer
from supervisor.views import job_json
from supervisor.workflows.engine import WorkflowEngine
from supervisor.workflows.service import attach, prepare

T = TypeVar("T")


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
        self.engine: WorkflowEngine | None = None
        self._events_lock = threading.Lock()

    def start(self) -> SupervisorThread:
        prepare(self.sup)  # the workflows and their step kind, before recovery meets them
        self.sup.open()
        try:
            self.engine = attach(self.sup)  # workflows, their step pool, instances to resume
        except BaseException:
            self.sup.close()
            raise
        self.sup.on("*", self._record)
        if self.settings.http_host is not None:
            try:
                self.http = HttpServer(self.sup, self.settings.http_host, self.settings.http_port)
            except BaseException:
                # e.g. the port is taken, or the token file cannot be made: release the
                # store and sockets
                self.sup.close()
                self._close_engine()
                raise
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
        return Client.for_config(self.settings, url=self.http.url)

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

    def on(self, pattern: str, callback: Callable[[Event], Any]) -> Callable[[], None]:
        """Subscribe to events (``*`` wildcards). The callback runs on the loop thread,
        after the change it reports is committed: keep it short, never block in it."""
        return self.call(lambda: self.sup.on(pattern, callback))

    def cancel(self, job_id: str, reason: str = "cancelled") -> dict[str, Any]:
        return self.call(lambda: job_json(self.sup.cancel(job_id, reason)))

    def retry(self, job_id: str, max_attempts: int | None = None) -> dict[str, Any]:
        """Queue a failed or cancelled job again, same id (docs/http-api.md)."""
        return self.call(lambda: job_json(self.sup.retry(job_id, max_attempts)))

    def delete(self, job_id: str) -> None:
        """Delete a finished job and its log file (docs/http-api.md)."""
        self.call(lambda: self.sup.delete(job_id))

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
            try:
                self.sup.close()
            finally:
                self._close_engine()
            self.thread = None

    def _close_engine(self) -> None:
        if self.engine is not None:
            self.engine.close()  # the pool's waiting workers exit; running steps carry on
            self.engine = None
