"""The HTTP API's routes (SPEC §7): requests in, responses out, no sockets here.

Every error is JSON ``{"error": {"code", "message"}}`` with a fitting status: 400 for a
malformed body or parameter, 401 without the bearer token, 404 for an unknown route,
job or job name, 405 (with ``Allow``) for a wrong method, 409 for a conflict such as
cancelling a finished job, 413 for an oversized body.
"""

from __future__ import annotations

import hmac
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote, urlsplit

import h11
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from supervisor import joblogs
from supervisor.errors import BadRequest, JobNotFound, JobvisorError
from supervisor.metrics import render as render_metrics
from supervisor.states import JobStatus
from supervisor.views import job_json, parse_time

if TYPE_CHECKING:
    from supervisor.core import Supervisor


@dataclass(frozen=True, slots=True)
class Request:
    method: str
    target: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes

    @classmethod
    def from_h11(cls, event: h11.Request, body: bytes) -> Request:
        target = event.target.decode("latin-1")
        parts = urlsplit(target)
        query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in event.headers}
        return cls(
            event.method.decode("ascii", "replace").upper(),
            target,
            unquote(parts.path),
            query,
            headers,
            body,
        )


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    body: bytes
    content_type: str = "application/json"
    headers: list[tuple[str, str]] = field(default_factory=list)


def json_response(
    status: int, payload: Any, headers: list[tuple[str, str]] | None = None
) -> Response:
    body = json.dumps(payload, ensure_ascii=False, allow_nan=False).encode("utf-8")
    return Response(status, body, headers=headers or [])


def error_response(
    status: int, code: str, message: str, headers: list[tuple[str, str]] | None = None
) -> Response:
    return json_response(status, {"error": {"code": code, "message": message}}, headers)


class SubmitBody(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    name: str = Field(min_length=1)
    data: Any = None
    max_attempts: int | None = Field(default=None, ge=1, le=1000)
    run_at: float | int | str | None = None


Handler = Callable[["Supervisor", Request, dict[str, str]], Response]
_ROUTES: list[tuple[re.Pattern[str], dict[str, Handler]]] = []


def route(pattern: str, method: str) -> Callable[[Handler], Handler]:
    compiled = re.compile("^" + re.sub(r"{(\w+)}", r"(?P<\1>[^/]+)", pattern) + "$")

    def register(fn: Handler) -> Handler:
        for existing, methods in _ROUTES:
            if existing.pattern == compiled.pattern:
                methods[method] = fn
                break
        else:
            _ROUTES.append((compiled, {method: fn}))
        return fn

    return register


def handle(sup: Supervisor, request: Request) -> Response:
    for pattern, methods in _ROUTES:
        match = pattern.match(request.path)
        if match is None:
            continue
        handler = methods.get(request.method)
        if handler is None:
            allowed = ", ".join(sorted(methods))
            return error_response(
                405,
                "method_not_allowed",
                f"{request.method} is not allowed on {request.path} (allowed: {allowed})",
                [("allow", allowed)],
            )
        if request.path != "/healthz" and not _authorized(sup, request):
            return error_response(
                401,
                "unauthorized",
                "a valid bearer token is required",
                [("www-authenticate", "Bearer")],
            )
        try:
            return handler(sup, request, match.groupdict())
        except JobvisorError as exc:
            return error_response(exc.http_status, exc.code, str(exc))
    return error_response(404, "not_found", f"no route for {request.path}")


def _authorized(sup: Supervisor, request: Request) -> bool:
    token = sup.settings.auth_token
    if not token:
        return True
    header = request.headers.get("authorization", "")
    scheme, _, given = header.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        given.strip().encode(), token.encode()
    )


def _json_body(request: Request) -> Any:
    if not request.body.strip():
        raise BadRequest("the request needs a JSON body")
    try:
        return json.loads(request.body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadRequest(f"invalid JSON body: {exc}") from None


def _int_param(request: Request, name: str, default: int, lo: int, hi: int) -> int:
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


def _job_or_404(sup: Supervisor, job_id: str) -> Any:
    job = sup.get(job_id)
    if job is None:
        raise JobNotFound(f"no job with id {job_id!r}")
    return job


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
    body = render_metrics(sup).encode()
    return Response(200, body, "text/plain; version=0.0.4; charset=utf-8")


@route("/jobs", "POST")
def submit(sup: Supervisor, request: Request, params: dict[str, str]) -> Response:
    raw = _json_body(request)
    try:
        body = SubmitBody.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'body'}: {err['msg']}"
            for err in exc.errors()
        )
        raise BadRequest(f"invalid job submission: {problems}") from None
    run_at = None
    if body.run_at is not None:
        try:
            run_at = parse_time(body.run_at)
        except ValueError as exc:
            raise BadRequest(f"run_at: {exc}") from None
    job = sup.enqueue(body.name, body.data, max_attempts=body.max_attempts, run_at=run_at)
    return json_response(
        201, {"id": job.id, "job": job_json(job)}, [("location", f"/jobs/{job.id}")]
    )


@route("/jobs", "GET")
def list_jobs(sup: Supervisor, request: Request, params: dict[str, str]) -> Response:
    status_text = request.query.get("status") or None
    status = None
    if status_text is not None:
        try:
            status = JobStatus(status_text)
        except ValueError:
            known = ", ".join(s.value for s in JobStatus)
            raise BadRequest(f"unknown status {status_text!r} (one of: {known})") from None
    limit = _int_param(request, "limit", 100, 1, 1000)
    offset = _int_param(request, "offset", 0, 0, 10**9)
    jobs = sup.list(
        name=request.query.get("name") or None, status=status, limit=limit, offset=offset
    )
    return json_response(200, {"jobs": [job_json(job) for job in jobs]})


@route("/jobs/{job_id}", "GET")
def get_job(sup: Supervisor, request: Request, params: dict[str, str]) -> Response:
    return json_response(200, job_json(_job_or_404(sup, params["job_id"])))


@route("/jobs/{job_id}/cancel", "POST")
def cancel_job(sup: Supervisor, request: Request, params: dict[str, str]) -> Response:
    reason = "cancelled via the HTTP API"
    if request.body.strip():
        body = _json_body(request)
        if isinstance(body, dict) and isinstance(body.get("reason"), str):
            reason = body["reason"]
    job = sup.cancel(params["job_id"], reason)
    return json_response(200, job_json(job))


@route("/jobs/{job_id}/logs", "GET")
def job_logs(sup: Supervisor, request: Request, params: dict[str, str]) -> Response:
    job = _job_or_404(sup, params["job_id"])
    offset = _int_param(request, "offset", 0, 0, 1 << 62)
    limit = _int_param(request, "limit", joblogs.MAX_READ, 1, joblogs.MAX_READ)
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
