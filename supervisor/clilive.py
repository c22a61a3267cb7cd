"""Live views of the ``jobvisor`` command, fed by the supervisor's event stream:
``submit --follow``, ``logs --follow`` and ``watch`` (docs/cli.md).

Theory of operation. ``GET /events`` (``Client.events``) tells us *when* something
happened to a job: it started, progressed, logged, was retried, ended. A thread reads
the stream into a queue, so the main thread waits on the queue with a timeout and
never blocks on a socket it cannot interrupt (Ctrl-C stays instant). What the job's log
file holds is then read over ``GET /jobs/{id}/logs`` from the last offset: the file is
the one place where a worker's stdout, stderr, its log messages and the supervisor's
notes are in order. A protocol worker's raw stdout/stderr produce no event, so while a
job runs the log is also re-read every ``LOG_POLL`` seconds; everything else is pushed.

A follower takes the stream position (``HEAD /events``) *before* it submits or reads the
job, and streams from it: an event that happens in between is replayed, never missed.
A ``reset`` event (the supervisor restarted and its replay window no longer holds our
position) makes it re-read the job over the API, as docs/http-api.md asks.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterable
from typing import Any, Final

from supervisor.client import TERMINAL, Client, ClientError, StreamEvent
from supervisor.cliview import LogPrinter, Screen, bar, clip, duration, error_text, parse_iso

# How often a running job's log is re-read without an event (raw worker output).
LOG_POLL: Final = 1.0
# After its outcome, how long to wait for the supervisor's last notes (worker exited).
TAIL_GRACE: Final = 10.0
TERMINAL_EVENTS: Final = frozenset({"job.completed", "job.failed", "job.cancelled"})
_END: Final = object()
# What ``watch`` calls an event on a plain line.
PLAIN_NAMES: Final = {
    "job.external.spawned": "started",
    "job.external.progress": "progress",
    "job.external.log": "log",
    "job.reconnected": "re-attached",
}  # the stream thread is done (an error, or the stream ended)


class EventFeed:
    """``Client.events(channels)`` read on a daemon thread into a queue. ``get`` waits
    at most ``timeout`` seconds and returns None on a timeout; an error of the stream
    (a refusal, or giving up on an unreachable supervisor) is raised by ``get``."""

    def __init__(self, client: Client, channels: Iterable[str], position: str | None) -> None:
        self._queue: queue.Queue[Any] = queue.Queue()
        self._error: ClientError | None = None
        self._thread = threading.Thread(
            target=self._run,
            args=(client, list(channels), position),
            name="jobvisor-events",
            daemon=True,  # blocked in a read; the process may end without it
        )
        self._thread.start()

    def _run(self, client: Client, channels: list[str], position: str | None) -> None:
        try:
            for event in client.events(channels, last_event_id=position or None):
                self._queue.put(event)
        except ClientError as exc:
            self._error = exc
        self._queue.put(_END)

    def get(self, timeout: float) -> StreamEvent | None:
        try:
            item = self._queue.get(timeout=timeout)
        except queue.Empty:
            return None
        if item is _END:
            if self._error is not None:
                raise self._error
            raise ClientError(0, "unreachable", "the event stream ended")
        event: StreamEvent = item
        return event


# --- one job: submit --follow, logs --follow -------------------------------------------


class JobFollower:
    """Shows one job until it ends: its log lines (``printer``) and, when ``progress``
    is a screen, its status and progress (a live bar on a terminal, a line per change
    elsewhere) and its retries."""

    def __init__(
        self,
        client: Client,
        job_id: str,
        position: str,
        printer: LogPrinter,
        progress: Screen | None = None,
        *,
        offset: int = 0,
    ) -> None:
        self.client = client
        self.job_id = job_id
        self.position = position
        self.printer = printer
        self.progress = progress
        self.offset = offset
        self._last_line = ""
        self._bar: Any = None  # rich Progress while live

    def run(self) -> dict[str, Any]:
        """Follow until the job ends; return its final JSON."""
        feed = EventFeed(self.client, [f"job:{self.job_id}"], self.position)
        job = self.client.get(self.job_id)
        stale = False  # an event could not be applied: re-read the job when we can
        with self._live():
            self._show_status(job)
            while job["status"] not in TERMINAL:
                event = feed.get(LOG_POLL)
                try:
                    self._read_log()
                    if stale:
                        job, stale = self._refresh(), False
                    if event is not None:
                        job = self._apply(event, job)
                except ClientError as exc:
                    if exc.status != 0:
                        raise
                    # The supervisor is restarting: the stream reconnects by itself
                    # (and resumes after this event), so re-read the job once it is back.
                    stale = True
            self._read_to_end()
            self._show_status(job)
        return job

    def _apply(self, event: StreamEvent, job: dict[str, Any]) -> dict[str, Any]:
        data = event.data if isinstance(event.data, dict) else {}
        if event.name == "reset" or data.get("status") in TERMINAL:
            # The outcome (or a gap): the job's final JSON comes from the API. A log
            # line's event released with the outcome carries the final status too.
            return self._refresh()
        job = {**job, "status": data.get("status", job["status"])}
        if event.name == "job.external.progress":
            job["progress"] = {"percent": data.get("percent"), "message": data.get("message")}
        elif event.name == "job.retrying":
            self._note(
                f"attempt {data.get('attempt')} failed: {error_text(data.get('error'))}; retrying",
                "yellow",
            )
        elif event.name == "job.stale":
            self._note(f"worker silent for {data.get('silent_for')} s (stale)", "yellow")
        elif event.name == "job.reconnected":
            self._note("worker re-attached after a supervisor restart", "cyan")
        elif event.name == "job.lost":
            self._note(f"worker lost: {data.get('reason')}", "red")
        self._show_status(job)
        return job

    def _refresh(self) -> dict[str, Any]:
        job = self.client.get(self.job_id)
        self._show_status(job)
        return job

    def _read_log(self) -> bool:
        """Print what the log holds past our offset; True once the log is complete."""
        while True:
            read = self.client.logs(self.job_id, self.offset)
            self.offset = read.offset
            if read.data:
                self._print(read.data)
                continue
            return read.complete

    def _read_to_end(self) -> None:
        # The outcome is committed before the worker is gone: its exit note follows.
        deadline = time.monotonic() + TAIL_GRACE
        while not self._read_log() and time.monotonic() < deadline:
            time.sleep(0.1)
        self.printer.flush()

    def _print(self, data: bytes) -> None:
        # On a terminal the printer and the bar share one console, so rich prints the
        # lines above the bar and redraws it below them.
        self.printer.feed(data)

    def _note(self, text: str, style: str) -> None:
        if self.progress is not None:
            self.progress.line(f"jobvisor: {text}", style)

    def _show_status(self, job: dict[str, Any]) -> None:
        if self.progress is None:
            return
        progress = job.get("progress") or {}
        percent, message = progress.get("percent"), progress.get("message") or ""
        if self._bar is not None:
            self._bar.update(
                self._task,
                completed=percent or 0.0,
                status=job["status"],
                message=message,
            )
            return
        line = f"{job['status']:>9} {bar(percent)} {message}".rstrip()
        if line != self._last_line:
            self.progress.line(line)
            self._last_line = line

    def _live(self) -> Any:
        """A rich progress bar on a terminal (its own context), else nothing."""
        import contextlib  # noqa: PLC0415

        if self.progress is None or not self.progress.live:
            return contextlib.nullcontext()
        from rich.progress import (  # noqa: PLC0415 - a terminal only
            BarColumn,
            Progress,
            TaskProgressColumn,
            TextColumn,
            TimeElapsedColumn,
        )

        self._bar = Progress(
            TextColumn("{task.fields[status]:>9}"),
            BarColumn(),
            TaskProgressColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[message]}"),
            console=self.progress.console,
            transient=False,
        )
        self._task = self._bar.add_task(self.job_id, total=100, status="", message="")
        return self._bar


# --- watch -----------------------------------------------------------------------------


class Watch:
    """``jobvisor watch``: running jobs with their progress, the queue, recent outcomes.

    On a terminal a table redrawn in place (rich ``Live``); elsewhere one line per
    event. ``until_idle`` ends it once no job runs or is queued (pending, or waiting
    for a retry)."""

    RECENT: Final = 8

    def __init__(
        self, client: Client, screen: Screen, *, name: str | None, until_idle: bool
    ) -> None:
        self.client = client
        self.screen = screen
        self.name = name
        self.until_idle = until_idle
        self.running: dict[str, dict[str, Any]] = {}
        self.flags: dict[str, str] = {}
        self.queued = 0
        self.recent: list[tuple[str, str, str, str]] = []  # (id, name, outcome, detail)

    def run(self) -> int:
        position = self.client.event_position()
        self._reload()
        channels = [f"kind:{self.name}"] if self.name else []
        feed = EventFeed(self.client, channels, position)
        live = self._live()
        stale = False  # a change could not be read: re-read everything when we can
        with live:
            self._plain("watching", "", self.name or "", "")
            self._draw(live)
            while stale or not (self.until_idle and self._idle()):
                event = feed.get(0.5)
                try:
                    if stale:
                        self._reload()
                        stale = False
                    if event is not None:
                        self._apply(event)
                except ClientError as exc:
                    if exc.status != 0:
                        raise
                    stale = True  # the supervisor is restarting; the stream resumes
                self._draw(live)
        return 0

    def _idle(self) -> bool:
        return not self.running and self.queued == 0

    def _count(self, status: str) -> list[dict[str, Any]]:
        return self.client.list(name=self.name, status=status, limit=1000)

    def _reload(self) -> None:
        self.running = {job["id"]: job for job in reversed(self._count("running"))}
        self._recount()

    def _recount(self) -> None:
        # Queued: waiting to start now (a concurrency limit), or for a retry's backoff.
        # A job submitted to run later (--run-at) is not waited for.
        retrying = [job for job in self._count("scheduled") if job["attempts"] > 0]
        self.queued = len(self._count("pending")) + len(retrying)

    def _apply(self, event: StreamEvent) -> None:
        if event.name == "reset":
            self._reload()
            self._plain("reset", "", "", "the event stream restarted: state re-read")
            return
        data = event.data if isinstance(event.data, dict) else {}
        job_id, name = str(data.get("id", "")), str(data.get("name", ""))
        if not job_id or event.name in (f"job.{name}.completed", f"job.{name}.failed"):
            return  # job.NAME.completed repeats job.completed
        detail = ""
        if event.name == "job.external.spawned":
            self.running[job_id] = self.client.get(job_id)
            self._recount()
            detail = f"attempt {data.get('attempt')}, pid {data.get('pid')}"
        elif event.name == "job.external.progress" and job_id in self.running:
            self.running[job_id]["progress"] = {
                "percent": data.get("percent"),
                "message": data.get("message"),
            }
            detail = f"{bar(data.get('percent'), 20)} {data.get('message') or ''}".rstrip()
        elif event.name in ("job.stale", "job.reconnected"):
            self.flags[job_id] = "stale" if event.name == "job.stale" else "re-attached"
            detail = self.flags[job_id]
        elif event.name in ("job.retrying", "job.lost", *TERMINAL_EVENTS):
            self.running.pop(job_id, None)
            self.flags.pop(job_id, None)
            self._recount()
            outcome = event.name.removeprefix("job.")
            detail = error_text(data.get("error")) or str(data.get("reason") or "")
            if event.name == "job.retrying":
                detail = f"attempt {data.get('attempt')} failed: {detail}"
            self.recent = [(job_id, name, outcome, detail), *self.recent][: self.RECENT]
        elif event.name in ("job.requeued", "job.deleted"):
            self._recount()  # a retried job waits again; a deleted one waited, maybe
        elif event.name != "job.external.log":
            return
        else:
            detail = f"{data.get('level')}: {data.get('message')}"
        self._plain(
            PLAIN_NAMES.get(event.name, event.name.removeprefix("job.")), job_id, name, detail
        )

    def _plain(self, what: str, job_id: str, name: str, detail: str) -> None:
        if self.screen.live:
            return
        stamp = time.strftime("%H:%M:%S")
        counts = f"running {len(self.running)} queued {self.queued}"
        self.screen.line(f"{stamp} {what:<18} {job_id:<20} {name:<16} {detail}  ({counts})")

    def _live(self) -> Any:
        import contextlib  # noqa: PLC0415

        if not self.screen.live:
            return contextlib.nullcontext()
        from rich.live import Live  # noqa: PLC0415 - a terminal only

        return Live(console=self.screen.console, auto_refresh=False, transient=False)

    def _draw(self, live: Any) -> None:
        if not self.screen.live:
            return
        live.update(self._table(), refresh=True)

    def _table(self) -> Any:
        from rich.console import Group  # noqa: PLC0415
        from rich.markup import escape  # noqa: PLC0415
        from rich.progress_bar import ProgressBar  # noqa: PLC0415
        from rich.table import Table  # noqa: PLC0415

        now = time.time()
        title = (
            f"[bold]jobvisor watch[/] {escape(self.client.url)}   "
            f"running [blue]{len(self.running)}[/]   queued [cyan]{self.queued}[/]"
        )
        table = Table(box=None, pad_edge=False, header_style="bold", expand=False)
        for column in ("ID", "NAME", "TRY", "PROGRESS", "", "ELAPSED", "MESSAGE"):
            table.add_column(column, no_wrap=True)
        for job in self.running.values():
            percent = (job.get("progress") or {}).get("percent")
            started = parse_iso(job.get("started_at"))
            flag = self.flags.get(job["id"], "")
            message = (job.get("progress") or {}).get("message") or ""
            table.add_row(
                job["id"],
                escape(job["name"]),
                f"{job['attempts']}/{job['max_attempts']}",
                ProgressBar(total=100, completed=percent or 0.0, width=24),
                f"{percent or 0:5.1f}%",
                duration(None if started is None else now - started),
                escape(clip(f"[{flag}] {message}" if flag else message, 50)),
            )
        if not self.running:
            table.add_row("[dim](no job running)[/]", "", "", "", "", "", "")
        recent = Table(box=None, pad_edge=False, show_header=False)
        for _ in range(4):
            recent.add_column(no_wrap=True)
        styles = {"completed": "green", "failed": "red", "cancelled": "yellow", "lost": "red"}
        for job_id, name, outcome, detail in self.recent:
            style = styles.get(outcome, "yellow")
            recent.add_row(job_id, escape(name), f"[{style}]{outcome}[/]", escape(clip(detail, 60)))
        parts: list[Any] = [title, table]
        if self.recent:
            parts += ["", "[bold]recent[/]", recent]
        return Group(*parts)
