"""The supervisor under test: its config and state, its process, what we read from it.

``Run`` is one bench run: its temp folder, its marker, its progress output. ``Setup`` is
one supervisor configuration (a ``jobvisor.toml`` and a state folder); ``Setup.start``
runs ``jobvisor serve`` as a child process (``supervisor.testing.ServerProcess``, which
records ``started_at`` just before the process is spawned and ``listening_at`` when its
"jobvisor listening on URL" line is read). ``Server`` adds what the sections read from
outside: ``GET /metrics``, RSS, ``/proc/<pid>/io``.

Thousands of jobs get their "workers" by seeding (``SeededSetup``): RUNNING job records
written to the SQLite store before the supervisor starts, owned by the load generator's
PID and start time, with socket paths in the supervisor's job socket folder and token
hashes of tokens the load generator knows. The supervisor adopts them as orphans, exactly
as after a crash (docs/restarts.md), and they re-attach when the load generator says hello.

Every process the bench starts carries ``JOBVISOR_TEST_RUN=<marker>`` in its
environment; ``supervisor.testing.kill_workers`` sweeps them all at the end, whatever
went wrong.
"""

from __future__ import annotations

import json
import secrets
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import psutil

from bench.child import Child, start_helper
from supervisor.attempts import hash_token
from supervisor.config import Settings, load_config
from supervisor.records import JobRecord, new_job_id
from supervisor.states import JobStatus, ProcessState
from supervisor.stores.sqlite import SqliteStore
from supervisor.testing import TEST_RUN_VAR, ServerProcess, kill_workers, wait_for


class Run:
    """One bench run: quick or full, a private temp folder, a marker for its processes."""

    def __init__(self, *, quick: bool, verbose: bool = True, socket_base: str = "/tmp") -> None:
        self.quick = quick
        self.verbose = verbose
        self.socket_base = socket_base
        self.marker = f"jvbench-{uuid.uuid4().hex[:12]}"
        self.env = {TEST_RUN_VAR: self.marker}  # for every process the run starts
        self.tmp = Path(tempfile.mkdtemp(prefix="jobvisor-bench-"))
        self._dirs: list[Path] = [self.tmp]

    def say(self, message: str) -> None:
        if self.verbose:
            print(f"  .. {message}", file=sys.stderr, flush=True)

    def short_dir(self) -> Path:
        """A fresh private folder with a short path, for Unix sockets (108-byte limit)."""
        path = Path(tempfile.mkdtemp(prefix="jv-", dir=self.socket_base))
        self._dirs.append(path)
        return path

    def folder(self, name: str) -> Path:
        """A fresh subfolder of the run's temp folder (each name is used once in a run)."""
        path = self.tmp / name
        path.mkdir()
        return path

    def config(
        self,
        folder: Path,
        settings: Mapping[str, Any] | None = None,
        jobs: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> Path:
        """``folder/jobvisor.toml`` for one of the run's supervisors: state in ``folder``,
        an ephemeral HTTP port, a fresh short socket folder, Unix sockets, then
        ``settings`` and ``jobs``."""
        top = {
            "state_dir": "state",
            "http": "127.0.0.1:0",
            "socket_dir": str(self.short_dir()),
            "transport": "unix",
            **(settings or {}),
        }
        path = folder / "jobvisor.toml"
        write_config(path, top, jobs or {})
        return path

    def cleanup(self) -> None:
        kill_workers(self.marker)
        for path in self._dirs:
            shutil.rmtree(path, ignore_errors=True)


def each_size(
    sizes: list[int],
    measure: Callable[[int], dict[str, Any]],
    *,
    key: str = "n",
    label: str = "N={}",
) -> tuple[list[dict[str, Any]], str | None]:
    """``measure(n)`` for each size in order; a failure does not stop the others.

    A size whose measurement raised gets the figure ``{key: n, "error": ...}``. Returns the
    figures and the section's error: ``"<label>: <error>"`` for each figure with an error
    (raised, or set by ``measure`` itself, e.g. an invalid measurement), or None.
    """
    figures = []
    for n in sizes:
        try:
            figures.append(measure(n))
        except Exception as exc:
            figures.append({key: n, "error": f"{type(exc).__name__}: {exc}"})
    errors = [f"{label.format(f[key])}: {f['error']}" for f in figures if f.get("error")]
    return figures, "; ".join(errors) or None


# --- config ----------------------------------------------------------------------------------


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a valid TOML basic string
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{ " + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"cannot write {value!r} as TOML")


def write_config(path: Path, top: Mapping[str, Any], jobs: Mapping[str, Mapping[str, Any]]) -> None:
    lines = [f"{key} = {_toml_value(value)}" for key, value in top.items()]
    for name, kind in jobs.items():
        lines += ["", f"[jobs.{name}]"]
        lines += [f"{key} = {_toml_value(value)}" for key, value in kind.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


class Setup:
    """One supervisor configuration and its state folder."""

    def __init__(
        self, run: Run, name: str, jobs: Mapping[str, Mapping[str, Any]], *, concurrency: int
    ) -> None:
        self.dir = run.folder(name)
        self.env = run.env
        self.config = run.config(self.dir, {"concurrency": concurrency}, jobs)
        self.settings: Settings = load_config(self.config)

    def start(self) -> Server:
        return Server(ServerProcess(self.config, env=self.env).start(timeout=120))


class SeededSetup(Setup):
    """A supervisor for ``n`` jobs of one kind, held by the load generator (folder
    ``<section>-<n>``).

    The kind runs ``/bin/true`` with one attempt, so nothing is ever spawned for its jobs:
    they exist as RUNNING records seeded into the store before the supervisor starts
    (``seeded_and_connected``), and ``concurrency`` leaves room for all of them.
    """

    def __init__(
        self, run: Run, section: str, n: int, kind: str, *, heartbeat_timeout: float
    ) -> None:
        job = {"command": "/bin/true", "heartbeat_timeout": heartbeat_timeout, "max_attempts": 1}
        super().__init__(run, f"{section}-{n}", {kind: job}, concurrency=n + 10)
        self.n = n
        self.kind = kind

    def seeded_and_connected(
        self, *, wait: float = 120.0, **spec: Any
    ) -> tuple[Child, Server, float]:
        """The ``n`` jobs seeded as running under a new load generator (``spec``: its
        options), a supervisor started on them, and every session re-attached; returns the
        generator, the server and how long re-attaching all of them took (from the
        generator's ``start``). On failure both are gone before the next measurement."""
        n = self.n
        jobs = self._jobs()
        gen = start_helper("bench.loadgen", {"jobs": jobs, **spec}, folder=self.dir, env=self.env)
        server = None
        try:
            self._seed(jobs, gen.pid)
            server = self.start()
            began = time.monotonic()
            gen.ask("start")
            interval = 0.2 if n > 1000 else 0.1
            wait_for(
                lambda: gen.ask("status")["ready"] >= n, wait, interval, f"{n} sessions to connect"
            )
        except BaseException:
            if server is not None:
                server.kill()
            gen.stop()
            raise
        return gen, server, time.monotonic() - began

    def _jobs(self) -> list[list[str]]:
        """``n`` [job id, token, socket path] triples in this supervisor's socket folder."""
        folder = self.settings.job_socket_dir
        jobs = []
        for _ in range(self.n):
            job_id = new_job_id()
            jobs.append([job_id, secrets.token_urlsafe(32), str(folder / f"{job_id}.sock")])
        return jobs

    def _seed(self, jobs: list[list[str]], owner_pid: int) -> None:
        """Store ``jobs`` as RUNNING attempts owned by process ``owner_pid``."""
        start = psutil.Process(owner_pid).create_time()
        now = time.time()
        records = [
            JobRecord(
                id=job_id,
                name=self.kind,
                data=None,
                status=JobStatus.RUNNING,
                seq=i + 1,
                created_at=now,
                node=self.settings.node,
                max_attempts=1,  # a lost job fails; nothing is ever spawned for it
                attempts=1,
                process_state=ProcessState.RUNNING,
                pid=owner_pid,
                pid_start_time=start,
                socket_path=path,
                token_hash=hash_token(token),
                last_heartbeat=now,
                started_at=now,
            )
            for i, (job_id, token, path) in enumerate(jobs)
        ]
        assert self.settings.db_path is not None
        store = SqliteStore(path=self.settings.db_path)
        store.open()
        try:
            store.write(records)
        finally:
            store.close()


# --- the running supervisor ---------------------------------------------------------------------


class Server:
    def __init__(self, process: ServerProcess) -> None:
        self.process = process
        assert process.proc is not None
        self.pid = process.proc.pid
        self.started_at = process.started_at
        self.listening_at = process.listening_at
        self.url = process.url
        self.ps = psutil.Process(self.pid)

    @property
    def client(self) -> Any:
        return self.process.client

    def metrics(self, timeout: float = 120.0) -> dict[str, float]:
        """``GET /metrics`` parsed: metric name (with labels) -> value."""
        client = self.process.client
        client.timeout = timeout
        text = client.metrics()
        values = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                values[name] = float(value)
        return values

    def metric(self, name: str) -> float:
        """One metric's value, summed over its label sets (``jobvisor_workers_connected``
        has one per job kind)."""
        values = self.metrics()
        return sum(v for k, v in values.items() if k == name or k.startswith(name + "{"))

    def rss(self) -> int:
        return int(self.ps.memory_info().rss)

    def io(self) -> dict[str, int]:
        """``/proc/<pid>/io``: wchar (bytes handed to write calls), write_bytes (to disk)."""
        values = {}
        with open(f"/proc/{self.pid}/io", encoding="ascii") as f:
            for line in f:
                key, _, value = line.partition(":")
                values[key.strip()] = int(value)
        return values

    def kill(self) -> None:
        self.process.kill()
