"""How the ``jobvisor`` command shows things: tables, durations, progress bars, log lines
(docs/cli.md).

Theory of operation. Every renderer here has two faces. On a terminal (a TTY, and
``NO_COLOR`` unset for colour) output goes through ``rich``: coloured statuses, live
bars. Anywhere else (a pipe, a file, CI) it is plain text, one change per line, in a
stable shape that ``grep`` and ``awk`` can rely on and tests can read. ``Screen`` makes
that choice once per stream; callers never look at ``isatty`` themselves.

Job log lines are stored as ``<UTC stamp> [tag] message`` (``supervisor/joblogs.py``),
tag ``jobvisor`` for the supervisor's notes, a level (``info``, ``warning`` …) for a
worker's protocol ``log`` messages, and ``stdout``/``stderr`` for a plain program's output
(labelled by the wrapper in ``supervisor/plainshim.py``). A protocol worker's own stdout
and stderr go straight into the file through one shared descriptor, so those lines have
neither stamp nor tag, and which stream a line came from cannot be known afterwards:
they are shown as ``output``, without a time (docs/cli.md, "Job logs") — except the
Python worker library's own stamped ``jobvisor_worker:`` lines, which it writes to
stderr.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import IO, Any, Final

from rich.console import Console
from rich.markup import escape

from supervisor.views import parse_time

BAR_WIDTH: Final = 30
# Stored stamp and tag at the start of a line: joblogs.stamp() + " [tag] ".
_LINE: Final = re.compile(rb"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z) \[([^\]\s]{1,32})\] ?")
# The Python worker library's own diagnostics: stamped lines on the worker's stderr
# (wrappers/python/jobvisor_worker/_stderr.py), the one stream of a protocol worker we
# can tell apart.
_WORKER_LIBRARY: Final = re.compile(
    rb"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z) (jobvisor_worker: )"
)
# joblogs.write() indents the continuation lines of a multi-line message by four spaces.
_CONTINUATION: Final = b"    "

STATUS_STYLE: Final = {
    "pending": "cyan",
    "scheduled": "cyan",
    "running": "blue",
    "completed": "green",
    "failed": "red",
    "cancelled": "yellow",
}
LABEL_STYLE: Final = {
    "stdout": "default",
    "stderr": "magenta",
    "jobvisor": "cyan",
    "output": "dim",
    "debug": "dim",
    "info": "green",
    "warning": "yellow",
    "warn": "yellow",
    "error": "red",
    "critical": "bold red",
}


class Screen:
    """One output stream and how to draw on it: ``live`` (a terminal: rich, redrawn in
    place) or plain lines; ``color`` unless ``NO_COLOR`` is set (https://no-color.org)."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        self.live = _isatty(stream) and os.environ.get("TERM") != "dumb"
        self.color = self.live and not os.environ.get("NO_COLOR")
        self.console = Console(
            file=stream,
            force_terminal=self.live,
            no_color=not self.color,
            highlight=False,
            soft_wrap=True,
        )

    def line(self, text: str, style: str | None = None) -> None:
        """One line of text (``style``: a rich style, used on a colour terminal only)."""
        if self.live:
            self.console.print(escape(text), style=style if self.color else None)
        else:
            self.stream.write(text + "\n")
            self.stream.flush()

    def width(self) -> int:
        return shutil.get_terminal_size().columns


def _isatty(stream: IO[str]) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # closed or not a real file
        return False


def stdout() -> Screen:
    return Screen(sys.stdout)


def stderr() -> Screen:
    return Screen(sys.stderr)


# --- values ----------------------------------------------------------------------------


def parse_iso(value: Any) -> float | None:
    """Epoch seconds of an API timestamp (``2026-11-29T10:41:20.255Z``); None if absent."""
    if not isinstance(value, str):
        return None
    try:
        return parse_time(value)
    except ValueError:
        return None


def duration(seconds: float | None) -> str:
    """``850ms``, ``12.3s``, ``4m05s``, ``2h07m``, ``3d04h``; "" when unknown."""
    if seconds is None:
        return ""
    seconds = max(0.0, seconds)
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h{minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d{hours:02d}h"


def job_duration(job: dict[str, Any], now: float | None = None) -> str:
    """How long the job has run: start to finish, or start to now while it runs."""
    started = parse_iso(job.get("started_at"))
    if started is None:
        return ""
    finished = parse_iso(job.get("finished_at"))
    if finished is None:
        if job.get("status") != "running":
            return ""
        finished = time.time() if now is None else now
    return duration(finished - started)


def error_text(error: Any) -> str:
    """The one-line message of a job's (or an event's) ``error``."""
    if error is None:
        return ""
    message = error.get("message") if isinstance(error, dict) else error
    return " ".join(str(message).split())


def clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(0, width - 1)] + "…"


def bar(percent: float | None, width: int = BAR_WIDTH) -> str:
    """``[#######.......]  40.0%`` (plain text, for pipes and logs)."""
    pct = 0.0 if percent is None else max(0.0, min(100.0, float(percent)))
    filled = round(width * pct / 100)
    return f"[{'#' * filled}{'.' * (width - filled)}] {pct:5.1f}%"


# --- the jobs table --------------------------------------------------------------------

JOB_COLUMNS: Final = ("ID", "NAME", "STATUS", "TRY", "PROGRESS", "DURATION", "CREATED", "ERROR")


def job_row(job: dict[str, Any], now: float | None = None) -> tuple[str, ...]:
    pct = job["progress"]["percent"]
    return (
        job["id"],
        job["name"],
        job["status"],
        f"{job['attempts']}/{job['max_attempts']}",
        "" if pct is None else f"{pct:.0f}%",
        job_duration(job, now),
        job["created_at"] or "",
        error_text(job.get("error")),
    )


def jobs_table(screen: Screen, jobs: Iterable[dict[str, Any]]) -> None:
    """The ``jobs`` listing. Plain: fixed columns, the error last (so it may be long)."""
    now = time.time()
    rows = [job_row(job, now) for job in jobs]
    if screen.live:
        from rich.table import Table  # noqa: PLC0415 - only on a terminal

        table = Table(box=None, pad_edge=False, header_style="bold")
        for name in JOB_COLUMNS:
            right = name in ("TRY", "PROGRESS", "DURATION")
            table.add_column(name, justify="right" if right else "left", no_wrap=name != "ERROR")
        for row in rows:
            status = row[2]
            style = STATUS_STYLE.get(status, "") if screen.color else ""
            cells = [escape(cell) for cell in row]
            cells[2] = f"[{style}]{cells[2]}[/]" if style else cells[2]
            table.add_row(*cells)
        screen.console.print(table)
        return
    widths = (20, 16, 9, 5, 8, 8, 24)
    aligns = ("<", "<", "<", ">", ">", ">", "<")
    header = "  ".join(f"{n:{a}{w}}" for n, a, w in zip(JOB_COLUMNS, aligns, widths, strict=False))
    screen.stream.write(f"{header}  {JOB_COLUMNS[-1]}\n")
    for row in rows:
        cells = [row[0], row[1][:16], *row[2:7]]
        line = "  ".join(f"{c:{a}{w}}" for c, a, w in zip(cells, aligns, widths, strict=True))
        screen.stream.write(f"{line}  {row[7]}".rstrip() + "\n")


# --- job log lines ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LogLine:
    """One line of a job's log as shown: ``time`` ("" when the line has no stamp),
    ``label`` (stdout, stderr, jobvisor, a log level, or output) and the text."""

    time: str
    label: str
    text: str


def parse_log(data: bytes) -> Iterator[LogLine]:
    """The lines of a chunk of a job log (whole lines: the caller keeps a partial last
    line for later). A continuation of a multi-line message keeps its line's label."""
    label = "output"
    for raw in data.splitlines():
        match = _LINE.match(raw)
        if match is not None:
            label = match.group(2).decode("ascii", "replace")
            text = raw[match.end() :].decode("utf-8", "replace")
            yield LogLine(match.group(1).decode("ascii"), label, text)
        elif (library := _WORKER_LIBRARY.match(raw)) is not None:
            label = "stderr"
            text = raw[library.start(2) :].decode("utf-8", "replace")
            yield LogLine(library.group(1).decode("ascii"), label, text)
        elif raw.startswith(_CONTINUATION) and label != "output":
            yield LogLine("", label, raw.decode("utf-8", "replace"))
        else:
            label = "output"
            yield LogLine("", "output", raw.decode("utf-8", "replace"))


def log_label(label: str) -> str:
    """The label as shown: the supervisor's notes as ``jobvisor``, a worker's protocol
    log messages as ``log:LEVEL``, the streams by name."""
    if label in ("stdout", "stderr", "jobvisor", "output"):
        return label
    return f"log:{label}"


class LogPrinter:
    """Prints job log bytes as labelled lines, holding back a partial last line until its
    newline arrives (or ``flush`` at the end)."""

    LABEL_WIDTH: Final = 11

    def __init__(self, screen: Screen, *, raw: bool = False) -> None:
        self.screen = screen
        self.raw = raw
        self._partial = b""

    def feed(self, data: bytes) -> None:
        if self.raw:
            self.screen.stream.write(data.decode("utf-8", "replace"))
            self.screen.stream.flush()
            return
        data = self._partial + data
        cut = data.rfind(b"\n") + 1
        self._partial = data[cut:]
        self.show(parse_log(data[:cut]))

    def flush(self) -> None:
        if self._partial:
            partial, self._partial = self._partial, b""
            self.show(parse_log(partial))

    def show(self, lines: Iterable[LogLine]) -> None:
        for line in lines:
            label = log_label(line.label)
            stamp = line.time or " " * 24
            if self.screen.live:
                shown = line.time[11:] if line.time else " " * 12  # the time of day, UTC
                style = LABEL_STYLE.get(line.label, "default") if self.screen.color else None
                self.screen.console.print(
                    f"[dim]{shown}[/dim] [{style or 'default'}]{label:<{self.LABEL_WIDTH}}[/] "
                    + escape(line.text),
                    highlight=False,
                )
            else:
                self.screen.stream.write(f"{stamp} {label:<{self.LABEL_WIDTH}} {line.text}\n")
        self.screen.stream.flush()
