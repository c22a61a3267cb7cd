"""The workflow routes of the HTTP API (docs/http-api.md, "Workflows").

Theory of operation. These routes are a thin door onto ``Supervisor.workflows``, the
engine as ``supervisor.ports.WorkflowService`` describes it; they never touch the
engine's modules (core modules may import only the leaf ``supervisor.workflows``
modules), and while no engine is attached every route answers 404
``workflows_disabled``. They register through ``supervisor.http.routes.route`` and so
share everything the job routes have: the bearer token, HEAD, unknown query parameters
refused with 400, strict JSON bodies (no NaN, unknown fields refused), and errors as
``{"error": {"code", "message"}}`` with the status the raised error carries (the
workflow errors carry theirs: ``unknown_workflow`` 404, ``instance_not_found`` 404,
``instance_finished`` 409, ``instance_not_resumable`` 409). A workflow input nests at
most as deep as a job's data (``protocol.limits``).

An instance is rendered by ``supervisor.views.instance_json``; one fetched alone
(``GET``, and the answers of start, cancel and resume) shows its parallel steps'
branch instances too, while a listing shows their ids only.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from protocol import limits
from supervisor.errors import BadRequest, JobvisorError
from supervisor.http import jsonbody
from supervisor.http.exchange import Request, Response
from supervisor.http.routes import enum_param, int_param, json_response, render_log, route
from supervisor.views import instance_json, jsonable
from supervisor.workflows.errors import InstanceNotFound
from supervisor.workflows.records import InstanceRecord, InstanceStatus

if TYPE_CHECKING:
    from supervisor.core import Supervisor
    from supervisor.ports import WorkflowService

M = TypeVar("M", bound=BaseModel)


class WorkflowsDisabled(JobvisorError):
    """A workflow route was asked while no workflow engine is attached to the supervisor."""

    code = "workflows_disabled"
    http_status = 404


class StartBody(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    input: Any = Field(default_factory=dict)  # as a job's data: docs/http-api.md


class CancelBody(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    reason: str = Field(default="cancelled via the HTTP API", min_length=1)


class ResumeBody(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


def _service(sup: Supervisor) -> WorkflowService:
    service = sup.workflows
    if service is None:
        raise WorkflowsDisabled(
            "workflows are not enabled on this supervisor (no workflow engine is attached)"
        )
    return service


def _body(model: type[M], request: Request, what: str, *, optional: bool) -> M:
    """``request``'s body as ``model``; an empty body is ``model()`` when ``optional``."""
    raw = jsonbody.parse(request.body) if request.body.strip() or not optional else {}
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'body'}: {err['msg']}"
            for err in exc.errors()
        )
        raise BadRequest(f"invalid {what}: {problems}") from None


def _show(
    sup: Supervisor, instance: InstanceRecord, children: list[InstanceRecord] | None = None
) -> dict[str, Any]:
    """``instance_json``, logging (rate-limited) a row that cannot be shown whole."""
    shown = instance_json(instance, children)
    if "render_error" in shown:
        render_log.log(
            logging.WARNING,
            instance.id,
            sup.clock.monotonic(),
            "workflow %r instance %s: %s",
            instance.workflow,
            instance.id,
            shown["render_error"],
        )
    return shown


def _show_one(sup: Supervisor, service: WorkflowService, instance: InstanceRecord) -> Any:
    """One instance with its parallel steps' branch instances."""
    return _show(sup, instance, service.children(instance.id))


@route("/workflows", "GET")
def list_workflows(sup: Supervisor, request: Request, params: dict[str, str]) -> Response:
    """Every registered workflow with its step graph."""
    definitions = _service(sup).definitions()
    return json_response(200, {"workflows": jsonable(definitions)})


@route("/workflows/{name}/instances", "POST")
def start_instance(sup: Supervisor, request: Request, params: dict[str, str]) -> Response:
    service = _service(sup)
    body = _body(StartBody, request, f"start of workflow {params['name']!r}", optional=False)
    try:
        limits.check(body.input, "input")
    except limits.TooDeep as exc:
        raise BadRequest(f"workflow {params['name']!r}: {exc}") from None
    instance = service.start(params["name"], body.input)
    return json_response(
        201,
        {"id": instance.id, "instance": _show_one(sup, service, instance)},
        [("location", f"/workflows/instances/{instance.id}")],
    )


@route("/workflows/instances", "GET", ("workflow", "status", "limit", "offset"))
def list_instances(sup: Supervisor, request: Request, params: dict[str, str]) -> Response:
    service = _service(sup)
    status = enum_param(request, "status", InstanceStatus, "instance status")
    instances = service.list(
        workflow=request.query.get("workflow") or None,
        status=status,
        limit=int_param(request, "limit", 100, 1, 1000),
        offset=int_param(request, "offset", 0, 0, 10**9),
    )
    return json_response(200, {"instances": [_show(sup, i) for i in instances]})


@route("/workflows/instances/{instance_id}", "GET")
def get_instance(sup: Supervisor, request: Request, params: dict[str, str]) -> Response:
    service = _service(sup)
    instance = service.get(params["instance_id"])
    if instance is None:
        raise InstanceNotFound(f"no workflow instance with id {params['instance_id']!r}")
    return json_response(200, _show_one(sup, service, instance))


@route("/workflows/instances/{instance_id}/cancel", "POST")
def cancel_instance(sup: Supervisor, request: Request, params: dict[str, str]) -> Response:
    service = _service(sup)
    body = _body(CancelBody, request, "cancel request", optional=True)
    instance = service.cancel(params["instance_id"], body.reason)
    return json_response(200, _show_one(sup, service, instance))


@route("/workflows/instances/{instance_id}/resume", "POST")
def resume_instance(sup: Supervisor, request: Request, params: dict[str, str]) -> Response:
    service = _service(sup)
    _body(ResumeBody, request, "resume request", optional=True)
    instance = service.resume(params["instance_id"])
    return json_response(200, _show_one(sup, service, instance))
