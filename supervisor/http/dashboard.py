"""The web dashboard (docs/dashboard.md): ``GET /``, its static files, one summary route.

Theory of operation. The dashboard is plain HTML, CSS and JavaScript shipped in the
package (``supervisor/http/static/``, package data): no build step, nothing fetched from
the internet. The browser gets its initial state from the REST API and ``GET
/dashboard/summary``, then follows ``GET /events`` (Server-Sent Events) and re-reads
state when the stream says it cannot replay what was missed.

- ``GET /`` answers the page to a browser (an ``Accept`` that names ``text/html``) and
  the API's JSON index to everyone else, so scripts that read ``/`` see what they did.
  The page is public (``supervisor.http.auth``): a shell without data, which takes the
  token from its URL (the ``listening`` line's) or asks for it; everything it then
  reads needs the token like any other request.
- ``GET /static/{name}`` serves the files found in ``static/`` when this module is
  imported (read once, kept in memory: a few tens of kilobytes). A name is looked up in
  that table and nowhere else, so no request can reach another file: ``..``, a slash
  or an encoded one simply find no entry. The files are public (``supervisor.http.auth``
  opens ``/static/``): they are the package's own code and hold no data, and an ES
  module import cannot carry a token. Each answer has an ``ETag`` (a hash of the bytes)
  and ``Cache-Control: no-cache``, so a browser revalidates with ``If-None-Match`` and
  gets a bodiless 304 until the package changes.
- ``GET /dashboard/summary`` holds what the REST API does not say in one read: the live
  counts by status, which running jobs are stale or re-attached after a restart, and
  the outcomes per minute for the throughput chart. ``GET
  /dashboard/jobs/{id}/log-tail`` gives the end of a job's log and the offset to follow
  it from, so a panel opened on a long log does not read the whole file.

Every page answer carries a Content-Security-Policy that allows this origin only, and
``Referrer-Policy: no-referrer``, so the token in the page's first URL never leaves in a
``Referer``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING, Any

from supervisor import joblogs
from supervisor.errors import JobNotFound
from supervisor.http.auth import wants_page
from supervisor.http.exchange import Request, Response
from supervisor.http.routes import error_response, int_param, json_response, route
from supervisor.http.routes import index as json_index
from supervisor.states import JobStatus, ProcessState

if TYPE_CHECKING:
    from supervisor.core import Supervisor

CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
}  # the kinds setup.cfg ships as package data
SECURITY_HEADERS = [
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "no-referrer"),
    (
        "content-security-policy",
        "default-src 'self'; img-src 'self' data:; object-src 'none'; "
        "base-uri 'none'; frame-ancestors 'none'; form-action 'none'",
    ),
]
# The throughput chart: outcomes per minute over this many minutes, from at most this
# many of the newest jobs (one indexed read, on the loop thread, bounded).
CHART_MINUTES = 30
CHART_ROWS = 1000
TAIL_BYTES = 64 * 1024  # what a job's panel shows of its log at first
FINAL = (JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED)


@dataclass(frozen=True, slots=True)
class StaticFile:
    body: bytes
    content_type: str
    etag: str


def _load_static() -> dict[str, StaticFile]:
    files: dict[str, StaticFile] = {}
    folder = resources.files("supervisor.http") / "static"
    for entry in folder.iterdir():
        suffix = "." + entry.name.rsplit(".", 1)[-1] if "." in entry.name else ""
        if not entry.is_file() or suffix not in CONTENT_TYPES:
            continue  # only what we know how to label is served
        body = entry.read_bytes()
        etag = '"' + hashlib.sha256(body).hexdigest()[:20] + '"'
        files[entry.name] = StaticFile(body, CONTENT_TYPES[suffix], etag)
    return files


STATIC = _load_static()


def _serve(request: Request, name: str) -> Response | None:
    """The static file ``name`` (a 304 when the browser holds it), ``None`` if unknown."""
    found = STATIC.get(name)
    if found is None:
        return None
    headers = [("etag", found.etag), ("cache-control", "no-cache"), *SECURITY_HEADERS]
    given = request.headers.get("if-none-match", "")
    if found.etag in (tag.strip() for tag in given.split(",")):
        return Response(304, b"", found.content_type, headers)
    return Response(200, found.body, found.content_type, headers)


@route("/", "GET")
def index(sup: Supervisor, request: Request, params: dict[str, str]) -> Response:
    """The dashboard for a browser; the API's JSON index for any other client."""
    if wants_page(request):
        page = _serve(request, "index.html")
        assert page is not None, "the package ships static/index.html"
        return page
    return json_index(sup, request, params)


@route("/static/{name}", "GET")
def static_file(sup: Supervisor, request: Request, params: dict[str, str]) -> Response:
    answer = _serve(request, params["name"])
    if answer is None:
        return error_response(404, "not_found", f"no static file {params['name']!r}")
    return answer


@route("/dashboard/summary", "GET", ("minutes",))
def summary(sup: Supervisor, request: Request, params: dict[str, str]) -> Response:
    """Counts, stale, re-attached and unconnected running jobs, and outcomes per minute
    (docs/dashboard.md)."""
    minutes = int_param(request, "minutes", CHART_MINUTES, 1, 120)
    now = sup.clock.wall()
    counts = {status.value: 0 for status in JobStatus if status not in FINAL}
    stale: list[str] = []
    reattached: list[str] = []
    unconnected: dict[str, str] = {}
    for job in sup.table:
        if job.status.value in counts:
            counts[job.status.value] += 1
        # A worker's welcome is no event: the page learns here that it connected.
        if job.status is JobStatus.RUNNING and job.process_state is not ProcessState.RUNNING:
            unconnected[job.id] = "none" if job.process_state is None else job.process_state.value
        attempt = sup.runner.attempts.get(job.id)
        if attempt is not None and attempt.stale:
            stale.append(job.id)
        # An attempt started before this supervisor was adopted from a previous one.
        # (Its start is our own wall stamp; a process start time from the kernel is only
        # known to the second, so it could not tell a worker started just after us.)
        if (
            job.status is JobStatus.RUNNING
            and job.started_at is not None
            and job.started_at < sup.started_at
        ):
            reattached.append(job.id)
    return json_response(
        200,
        {
            "node": sup.settings.node,
            "started_at": round(sup.started_at, 3),
            "now": round(now, 3),
            "counts": counts,
            "stale": stale,
            "reattached": reattached,
            "unconnected": unconnected,
            "throughput": _throughput(sup, now, minutes),
        },
    )


@route("/dashboard/jobs/{job_id}/log-tail", "GET", ("bytes",))
def log_tail(sup: Supervisor, request: Request, params: dict[str, str]) -> Response:
    """The last ``bytes`` of a job's log, and the offset to follow it from with ``GET
    /jobs/{id}/logs?offset=`` (``X-Log-Offset``): a panel opened on a job with a long log
    reads its tail, not the whole file."""
    job = sup.get(params["job_id"])
    if job is None:
        raise JobNotFound(f"no job with id {params['job_id']!r}")
    size = int_param(request, "bytes", TAIL_BYTES, 1, joblogs.MAX_READ)
    path = joblogs.log_path(sup.settings.log_dir, job.id)
    try:
        end = path.stat().st_size
    except FileNotFoundError:
        end = 0
    start = max(0, end - size)
    data, offset = joblogs.read(path, start, end - start)
    if start > 0:
        data = data.partition(b"\n")[2]  # from the first whole line
    return Response(200, data, "text/plain; charset=utf-8", [("x-log-offset", str(offset))])


def _throughput(sup: Supervisor, now: float, minutes: int) -> dict[str, Any]:
    """Jobs finished per minute, oldest minute first, ending with the current one."""
    end = int(now // 60) * 60 + 60
    start = end - 60 * minutes
    buckets = {status.value: [0] * minutes for status in FINAL}
    for job in sup.list(limit=CHART_ROWS):
        finished = job.finished_at
        if job.status in FINAL and finished is not None and start <= finished < end:
            buckets[job.status.value][int((finished - start) // 60)] += 1
    return {"start": start, "minute": 60, **buckets}
