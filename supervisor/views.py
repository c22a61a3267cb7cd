"""How jobs look from outside: the JSON shape of SPEC §14, shared by HTTP and the CLI.

Times are ISO 8601 UTC with milliseconds. Payloads arrive as msgpack and may hold
binary strings, which JSON cannot; they are shown as ``{"$base64": "..."}``.
"""

from __future__ import annotations

import base64
import math
from datetime import UTC, datetime
from typing import Any

from supervisor.records import JobRecord


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


def jsonable(value: Any) -> Any:
    """Make a decoded msgpack value JSON-safe (bytes, non-string keys, NaN)."""
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return {"$base64": base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, dict):
        return {
            k if isinstance(k, str) else str(jsonable(k)): jsonable(v) for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return repr(value)


def job_json(job: JobRecord) -> dict[str, Any]:
    return {
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
            "data": jsonable(job.progress_data),
        },
        "data": jsonable(job.data),
        "result": jsonable(job.result),
        "error": jsonable(job.error),
        "created_at": iso(job.created_at),
        "started_at": iso(job.started_at),
        "finished_at": iso(job.finished_at),
        "run_at": iso(job.run_at),
        "last_heartbeat": iso(job.last_heartbeat),
        "socket": job.socket_path
        if job.socket_path is not None
        else (None if job.tcp_port is None else f"tcp://127.0.0.1:{job.tcp_port}"),
        "node": job.node,
    }
