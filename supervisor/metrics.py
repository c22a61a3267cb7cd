"""Counters and the Prometheus text exposition served at ``GET /metrics`` (docs/http-api.md).

Counters are plain integers bumped on the loop thread (no locks, no allocation per
message); gauges are computed from the job table when scraped.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from supervisor.clock import Clock
    from supervisor.records import JobRecord


class _Live(Protocol):
    @property
    def conn(self) -> object | None: ...


class _Attempts(Protocol):
    @property
    def attempts(self) -> Mapping[str, _Live]: ...


class Scraped(Protocol):
    """What a scrape reads (the supervisor core provides it; this module sits below it
    and does not import it)."""

    @property
    def counters(self) -> Counters: ...
    @property
    def table(self) -> Iterable[JobRecord]: ...
    @property
    def runner(self) -> _Attempts: ...
    @property
    def clock(self) -> Clock: ...
    @property
    def started_at(self) -> float: ...


@dataclass(slots=True)
class Counters:
    worker_messages: int = 0  # messages decoded from workers
    worker_bytes: int = 0  # bytes read from workers
    worker_connections: int = 0  # connections accepted on job sockets
    protocol_errors: int = 0  # connections closed for bad bytes or refused handshakes
    spawned: int = 0
    reconnected: int = 0
    lost: int = 0
    completed: int = 0
    failed: int = 0
    retried: int = 0
    cancelled: int = 0
    commits: int = 0  # store write transactions from this supervisor
    sse_clients_dropped: int = 0  # event streams closed because their client fell behind
    log_events_dropped: int = 0  # worker log lines not turned into events (rate limit)


_HELP = {
    "worker_messages": "Messages decoded from workers.",
    "worker_bytes": "Bytes read from worker sockets.",
    "worker_connections": "Connections accepted on job sockets.",
    "protocol_errors": "Worker connections closed for bad input or a refused handshake.",
    "spawned": "Worker processes started.",
    "reconnected": "Workers that re-attached after a restart or a lost connection.",
    "lost": "Attempts declared lost after a restart.",
    "completed": "Jobs completed.",
    "failed": "Jobs failed after their last attempt.",
    "retried": "Failed attempts that were scheduled for a retry.",
    "cancelled": "Jobs cancelled.",
    "commits": "Store write transactions.",
    "sse_clients_dropped": "Event streams closed because their client fell too far behind.",
    "log_events_dropped": "Worker log lines over the per-job event rate (still in the job log).",
}


def render(sup: Scraped) -> str:
    lines = []
    counters = sup.counters
    for f in fields(counters):
        name = f"jobvisor_{f.name}_total"
        lines += [
            f"# HELP {name} {_HELP[f.name]}",
            f"# TYPE {name} counter",
            f"{name} {getattr(counters, f.name)}",
        ]
    by_status = Counter(job.status.value for job in sup.table if job.active)
    lines += ["# HELP jobvisor_jobs Active jobs by status.", "# TYPE jobvisor_jobs gauge"]
    for status in ("pending", "scheduled", "running"):
        lines.append(f'jobvisor_jobs{{status="{status}"}} {by_status[status]}')
    connected = sum(1 for a in sup.runner.attempts.values() if a.conn is not None)
    lines += [
        "# HELP jobvisor_workers_connected Workers with a live connection.",
        "# TYPE jobvisor_workers_connected gauge",
        f"jobvisor_workers_connected {connected}",
        "# HELP jobvisor_attempts_live Attempts whose process is being watched.",
        "# TYPE jobvisor_attempts_live gauge",
        f"jobvisor_attempts_live {len(sup.runner.attempts)}",
        "# HELP jobvisor_uptime_seconds Seconds since this supervisor started.",
        "# TYPE jobvisor_uptime_seconds gauge",
        f"jobvisor_uptime_seconds {sup.clock.wall() - sup.started_at:.3f}",
    ]
    return "\n".join(lines) + "\n"
