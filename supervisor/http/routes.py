"""The HTTP API's routes (docs/http-api.md): requests in, responses out, no sockets here.

Every error is JSON ``{"error": {"code", "message"}}`` with a fitting status: 400 for a
malformed body or an unknown or bad query parameter, 401 without the bearer token
(``supervisor.http.auth``), 404 for an unknown route, job or job name, 405 (with
``Allow``) for a wrong method, 409 for a conflict such as cancelling a finished job,
413 for an oversized body. ``HEAD`` is answered as ``GET`` (the server drops the body).

The workflow routes live in ``supervisor.http.workflow_routes`` and register through the
same ``route`` decorator (the server imports that module), so they share all of this.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from supervisor import joblogs
from supervisor.errors import BadRequest, JobNotFound, JobvisorError
from supervisor.http import jsonbody
from supervisor.http.auth import authorized
from supervisor.http.exchange import Request, Response
from supervisor.logthrottle import LogThrottle
from supervisor.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from supervisor.records import JobRecord
from supervisor.states import JobStatus
from supervisor.views import job_json, parse_time

if TYPE_CHECKING:
    from supervisor.core import Supervisor

log = logging.getLogger(__name__)
E = TypeVar("E", bound=Enum)
# A stored row that cannot be shown is reported once (per job and hour), not per read.
render_log = LogThrottle(log, burst=1, interval=3600.0)
# Accepted on every route: ``?token=`` authorizes a GET (supervisor.http.auth).
COMMON_PARAMS = frozenset({"token"})


def json_response(
    status: int, payload: Any, headers: list[tuple[str, str]] | None = None
) -> Response:
    body = json.dumps(payload, ensure_ascii=False, allow_nan=False).encode("utf-8")
    return Response(status, body, headers=headers or [])


def error_response(
    status: int, code: str, message: str, headers: list[tuple[str, str]] | None = None
) -> Response:
    return json_response(status, {"error": {"code": code, "message": message}}, headers)


class RetryBody(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    max_attempts: int | None = Field(default=None, ge=1, le=1000)


class SubmitBody(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    name: str = Field(min_length=1)
    data: Any = Field(default_factory=dict)  # the CLI's default too: docs/http-api.md
    max_attempts: int | None = Field(default=None, ge=1, le=1000)
    run_at: float | int | str | None = None


Handler = Callable[["Supervisor", Request, dict[str, str]], Response]


@dataclass(frozen=True, slots=True)
class Route:
    handler: Handler
    params: frozenset[str]  # the query parameters it reads; any other one is a 400


_ROUTES: list[tuple[str, re.Pattern[str], dict[str, Route]]] = []


def route(pattern: str, method: str, params: tuple[str, ...] = ()) -> Callable[[Handler], Handler]:
    compiled = re.compile("^" + re.sub(r"{(\w+)}", r"(?P<\1>[^/]+)", pattern) + "$")

    def register(fn: Handler) -> Handler:
        entry = Route(fn, COMMON_PARAMS | frozenset(params))
        for existing, _compiled, methods in _ROUTES:
            if existing == pattern:
                methods[method] = entry
                break
        else:
            _ROUTES.append((pattern, compiled, {method: entry}))
        return fn

    return register


def handle(sup: Supervisor, request: Request, token: str | None) -> Response:
    """Answer ``request``; ``token`` is the bearer token required (``None``: no auth)."""
    method = "GET" if request.method == "HEAD" else request.method
    matched: set[str] = set()  # the methods of every pattern the path matches
    for _pattern, compiled, methods in _ROUTES:
        match = compiled.match(request.path)
        if match is None:
            continue
        entry = methods.get(method)
        if entry is None:
            # Another pattern may take this method (``POST /workflows/instances/...``
            # matches both a workflow's and an instance's route): look further first.
            matched |= set(methods)
            continue
        if not authorized(request, token):
            return error_response(
                401,
                "unauthorized",
                "a valid bearer token is required (Authorization: Bearer TOKEN; "
                "jobvisor's CLI reads it from the config or state_dir/http.token)",
                [("www-authenticate", "Bearer")],
            )
        try:
            _check_params(request, entry.params)
            return entry.handler(sup, request, match.groupdict())
        except JobvisorError as exc:
            return error_response(exc.http_status, exc.code, str(exc))
    if matched:
        allowed = ", ".join(sorted(matched | ({"HEAD"} if "GET" in matched else set())))
        return error_response(
            405,
            "method_not_allowed",
            f"{request.method} is not allowed on {request.path} (allowed: {allowed})",
            [("allow", allowed)],
        )
    return error_response(404, "not_found", f"no route for {request.path}")


def _check_params(request: Request, known: frozenset[str]) -> None:
    unknown = sorted(set(request.query) - known)
    if unknown:
        listed = ", ".join(sorted(known - COMMON_PARAMS)) or "none"
        raise BadRequest(
            f"unknown query parameter {unknown[0]!r} for {request.method} {request.path} "
            f"(accepted: {listed})"
        )


def _show(sup: Supervisor, job: JobRecord) -> dict[str, Any]:
    """``job_json``, logging (rate-limited) a row that cannot be shown whole."""
    shown = job_json(job)
    if "render_error" in shown:
        render_log.log(
            logging.WARNING,
            job.id,
            sup.clock.monotonic(),
            "job %s: %s",
            job.id,
            shown["render_error"],
        )
    return shown


def _problems(exc: ValidationError) -> str:
    """A pydantic error as ``field: what is wrong; ...``."""
    return "; ".join(
        f"{'.'.join(str(p) for p in err['loc']) or 'body'}: {err['msg']}" for err in exc.errors()
    )


def int_param(request: Request, name: str, default: int, lo: int, hi: int) -> int:
    text = request.query.get(name)
    if text is None or text == "":
        return default
    try:
        value = int(text)
    except ValueError:
        raise BadRequest(f"query parameter {name} must be an integer, got {text!r}") from None
    if not lo <= value <= hi:
        raise BadRequest(f"query parameter {name} must be from {lo} to {hi}, got {value}")
    return value


def enum_param(request: Request, name: str, kind: type[E], what: str) -> E | None:
    """The query parameter ``name`` as a member of ``kind`` (absent or empty: ``None``);
    a value that is none of them is a 400 listing the ones that are."""
    text = request.query.get(name) or None
    if text is None:
        return None
    try:
        return kind(text)
    except ValueError:
        known = ", ".join(member.value for member in kind)
        raise BadRequest(f"unknown {what} {text!r} (one of: {known})") from None


def _job_or_404(sup: Supervisor, job_id: str) -> Any:
    job = sup.get(job_id)
    if job is None:
        raise JobNotFound(f"no job with id {job_id!r}")
    return job


def index(sup: Supervisor, request: Request, params: dict[str, str]) -> Response:
    """What this API offers: ``GET /`` for a client other than a browser (the route is
    ``supervisor.http.dashboard``'s, which answers a browser with the dashboard)."""
    return json_response(
        200,
        {
            "service": "jobvisor",
            "node": sup.settings.node,
            "routes": [
                f"{method} {pattern}"
                for pattern, _compiled, methods in _ROUTES
                for method in methods
            ],
            "docs": "docs/http-api.md",
        },
    )


@route("/healthz", "GET")
def healthz(sup: Supervisor, request: Request, params: dict[str, str]) -> Response:
    running = sum(1 for job in sup.table if job.status is JobStatus.RUNNING)
    return json_response(
        200,
        {
            "status": "ok",
            "node": sup.settings.node,
            "uptime": round(sup.clock.wall() - sup.started_at, 3),
            "active_jobs": len(sup.table),
            "running_jobs": running,
            "store": sup.settings.store,
        },
    )


@route("/metrics", "GET")
def metrics(sup: Supervisor, request: Request, params: dict[str, str]) -> Response:
    # prometheus_client comes with the first scrape, not with the supervisor's start:
    # ~8 MB and tens of ms that a supervisor never scraped does not pay (docs/bench.md).
    from supervisor.exposition import render  # noqa: PLC0415

    return Response(200, render(sup), METRICS_CONTENT_TYPE)


@route("/jobs", "POST")
def submit(sup: Supervisor, request: Request, params: dict[str, str]) -> Response:
    raw = jsonbody.parse(request.body)
    try:
        body = SubmitBody.model_validate(raw)
    except ValidationError as exc:
        raise BadRequest(f"invalid job submission: {_problems(exc)}") from None
    run_at = None
    if body.run_at is not None:
        try:
            run_at = parse_time(body.run_at)
        except ValueError as exc:
            raise BadRequest(f"run_at: {exc}") from None
    job = sup.enqueue(body.name, body.data, max_attempts=body.max_attempts, run_at=run_at)
    return json_response(
        201, {"id": job.id, "job": _show(sup, job)}, [("location", f"/jobs/{job.id}")]
    )


@route("/jobs", "GET", ("name", "status", "limit", "offset"))
def list_jobs(sup: Supervisor, request: Request, params: dict[str, str]) -> Response:
    status = enum_param(request, "status", JobStatus, "status")
    limit = int_param(request, "limit", 100, 1, 1000)
    offset = int_param(request, "offset", 0, 0, 10**9)
    jobs = sup.list(
        name=request.query.get("name") or None, status=status, limit=limit, offset=offset
    )
    return json_response(200, {"jobs": [_show(sup, job) for job in jobs]})


@route("/jobs/{job_id}", "GET")
def get_job(sup: Supervisor, request: Request, params: dict[str, str]) -> Response:
    return json_response(200, _show(sup, _job_or_404(sup, params["job_id"])))


@route("/jobs/{job_id}/cancel", "POST")
def cancel_job(sup: Supervisor, request: Request, params: dict[str, str]) -> Response:
    reason = "cancelled via the HTTP API"
    if request.body.strip():
        body = jsonbody.parse(request.body)
        if isinstance(body, dict) and isinstance(body.get("reason"), str):
            reason = body["reason"]
    job = sup.cancel(params["job_id"], reason)
    return json_response(200, _show(sup, job))


@route("/jobs/{job_id}/retry", "POST")
def retry_job(sup: Supervisor, request: Request, params: dict[str, str]) -> Response:
    """Queue a failed or cancelled job again (docs/http-api.md, "Managing jobs")."""
    body = RetryBody()
    if request.body.strip():
        try:
            body = RetryBody.model_validate(jsonbody.parse(request.body))
        except ValidationError as exc:
            raise BadRequest(f"invalid retry: {_problems(exc)}") from None
    job = sup.retry(params["job_id"], body.max_attempts)
    return json_response(200, _show(sup, job))


@route("/jobs/{job_id}", "DELETE")
def delete_job(sup: Supervisor, request: Request, params: dict[str, str]) -> Response:
    """Delete a finished job and its log (docs/http-api.md, "Managing jobs")."""
    job = sup.delete(params["job_id"])
    return json_response(200, {"deleted": job.id, "status": job.status.value})


@route("/jobs/{job_id}/logs", "GET", ("offset", "limit"))
def job_logs(sup: Supervisor, request: Request, params: dict[str, str]) -> Response:
    job = _job_or_404(sup, params["job_id"])
    offset = int_param(request, "offset", 0, 0, 1 << 62)
    limit = int_param(request, "limit", joblogs.MAX_READ, 1, joblogs.MAX_READ)
    data, end = joblogs.read(joblogs.log_path(sup.settings.log_dir, job.id), offset, limit)
    # Complete: the job is finished and its last worker process is gone, so nobody
    # writes to this log any more (a job turns final before its worker has exited).
    complete = not job.active and not sup.runner.has_attempt(job.id)
    return Response(
        200,
        data,
        "text/plain; charset=utf-8",
        [
            ("x-log-offset", str(end)),
            ("x-job-status", job.status.value),
            ("x-log-complete", "true" if complete else "false"),
        ],
    )
