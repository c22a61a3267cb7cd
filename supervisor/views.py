"""How jobs and workflow instances look from outside: the JSON shape shared by HTTP and the
CLI (docs/http-api.md).

Times are ISO 8601 UTC with milliseconds. Payloads arrive as msgpack and may hold
binary strings, which JSON cannot; they are shown as ``{"$base64": "..."}``.

Rendering never fails a whole job, let alone a listing. Every door checks what it lets
in (the depth limit of ``protocol.limits``, ``LATEST_TIME``), but a row written by an
older build, or by a custom store, may still hold what cannot be shown: such a field is
shown as ``null`` and the job (or instance) carries ``render_error`` saying which fields
and why. Instances are rendered from the leaf ``supervisor.workflows.records`` only: this
core module may import nothing else of the workflow package.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from enum import Enum
from typing import Any, Final

from protocol.limits import MAX_DEPTH, TooDeep
from supervisor.records import JobRecord
from supervisor.workflows.records import InstanceRecord

# The last second ``datetime`` can show (9999-12-31T23:59:59Z): a later run_at is refused.
LATEST_TIME: Final = 253402300799


def iso(wall: float | None) -> str | None:
    if wall is None:
        return None
    return (
        datetime.fromtimestamp(wall, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    )


def parse_time(value: Any) -> float:
    """Seconds since the epoch from a number or an ISO 8601 string (naive means UTC)."""
    if type(value) in (int, float):
        if not math.isfinite(value):
            raise ValueError(f"not a finite time: {value!r}")
        return float(value)
    if isinstance(value, str):
        text = value.strip().replace("Z", "+00:00").replace("z", "+00:00")
        moment = datetime.fromisoformat(text)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return moment.timestamp()
    raise ValueError(f"expected seconds since the epoch or an ISO 8601 string, got {value!r}")


def jsonable(value: Any, depth: int = 0) -> Any:
    """Make a decoded msgpack value JSON-safe (bytes, non-string keys, NaN).

    Raises ``TooDeep`` past the shared depth limit rather than the interpreter's.
    """
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return {"$base64": base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, dict | list | tuple):
        depth += 1
        if depth > MAX_DEPTH:
            raise TooDeep("the value")
        if isinstance(value, dict):
            return {
                k if isinstance(k, str) else str(jsonable(k, depth)): jsonable(v, depth)
                for k, v in value.items()
            }
        return [jsonable(v, depth) for v in value]
    return repr(value)


def job_json(job: JobRecord) -> dict[str, Any]:
    """The job as the API shows it; fields that cannot be shown are ``null`` and named in
    ``render_error`` (see the module docstring)."""
    problems: list[str] = []

    def show(field: str, render: Callable[[Any], Any], value: Any) -> Any:
        try:
            return render(value)
        except (ValueError, TypeError, OverflowError, OSError, RecursionError) as exc:
            # RecursionError: a custom store may hand back anything; never a 500 for it.
            problems.append(f"{field}: {exc}")
            return None

    shown = {
        "id": job.id,
        "name": job.name,
        "status": job.status.value,
        "process_state": None if job.process_state is None else job.process_state.value,
        "attempts": job.attempts,
        "max_attempts": job.max_attempts,
        "pid": job.pid,
        "progress": {
            "percent": job.progress,
            "message": job.progress_message,
            "data": show("progress.data", jsonable, job.progress_data),
        },
        "data": show("data", jsonable, job.data),
        "result": show("result", jsonable, job.result),
        "error": show("error", jsonable, job.error),
        "created_at": show("created_at", iso, job.created_at),
        "started_at": show("started_at", iso, job.started_at),
        "finished_at": show("finished_at", iso, job.finished_at),
        "run_at": show("run_at", iso, job.run_at),
        "last_heartbeat": show("last_heartbeat", iso, job.last_heartbeat),
        "socket": job.socket_path
        if job.socket_path is not None
        else (None if job.tcp_port is None else f"tcp://127.0.0.1:{job.tcp_port}"),
        "node": job.node,
    }
    if problems:
        shown["render_error"] = "cannot show " + "; ".join(problems)
    return shown


# --- workflow instances (docs/http-api.md, "Workflows") ----------------------------------


def instance_json(
    instance: InstanceRecord, children: Sequence[InstanceRecord] | None = None
) -> dict[str, Any]:
    """A workflow instance as the API shows it, with the same ``render_error`` rule as jobs.

    ``steps`` maps each step that has started to its state; a parallel step lists its
    branch instances' ids in ``children``. Given ``children`` (the instance's branch
    instances, ``WorkflowService.children``), each parallel step also carries
    ``branches``: the ones among them it lists, in its order, each rendered whole
    (without its own ``branches``). A listing passes no ``children``: one row, one read.
    """
    problems: list[str] = []

    def show(field: str, render: Callable[[Any], Any], value: Any) -> Any:
        try:
            return render(value)
        except (
            ValueError,
            TypeError,
            OverflowError,
            OSError,
            RecursionError,
            AttributeError,
        ) as exc:
            # A row from a custom store may hold anything; never a 500 for it.
            problems.append(f"{field}: {exc}")
            return None

    by_id = {child.id: child for child in children or ()}

    def render_steps(steps: Any) -> dict[str, Any]:
        shown: dict[str, Any] = {}
        for name, step in steps.items():
            where = f"steps.{name}"
            entry: dict[str, Any] = {
                "status": show(f"{where}.status", _enum_value, step.status),
                "input": show(f"{where}.input", jsonable, step.input),
                "output": show(f"{where}.output", jsonable, step.output),
                "error": show(f"{where}.error", jsonable, step.error),
                "attempts": step.attempts,
                "job_id": step.job_id,
                "started_at": show(f"{where}.started_at", iso, step.started_at),
                "finished_at": show(f"{where}.finished_at", iso, step.finished_at),
                "retry_at": show(f"{where}.retry_at", iso, step.retry_at),
                "children": [str(child) for child in step.children],
            }
            if children is not None and step.children:
                entry["branches"] = [
                    instance_json(by_id[child]) for child in step.children if child in by_id
                ]
            shown[str(name)] = entry
        return shown

    shown: dict[str, Any] = {
        "id": instance.id,
        "workflow": instance.workflow,
        "status": show("status", _enum_value, instance.status),
        "current_step": instance.current_step,
        "input": show("input", jsonable, instance.input),
        "output": show("output", jsonable, instance.output),
        "error": show("error", jsonable, instance.error),
        "steps": show("steps", render_steps, instance.steps),
        "parent_id": instance.parent_id,
        "branch": instance.branch,
        "created_at": show("created_at", iso, instance.created_at),
        "started_at": show("started_at", iso, instance.started_at),
        "finished_at": show("finished_at", iso, instance.finished_at),
        "timeout_at": show("timeout_at", iso, instance.timeout_at),
        "node": instance.node,
    }
    if problems:
        shown["render_error"] = "cannot show " + "; ".join(problems)
    return shown


def _enum_value(value: Any) -> str:
    """A status as its string (a custom store may hand back a plain string)."""
    return str(value.value if isinstance(value, Enum) else value)
