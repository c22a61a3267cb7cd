"""What ``GET /metrics`` shows (docs/metrics.md): counters, histograms and gauges.

Theory of operation. Measuring happens on the loop thread and must stay cheap there, so
nothing here allocates or locks per worker message: ``Counters`` are plain integers;
a ``Histogram`` is a list of bucket counts that one ``observe`` moves with a bisect
and two additions, called once per job event (queued, started, spawned, attempt
ended), once per store commit and once per loop iteration — never per message. Gauges
(pending, running, stale, connected workers) are not kept at all: a scrape computes
them from the job table and the live attempts.

The text itself is made by ``prometheus_client`` at scrape time, in
``supervisor/exposition.py``, which ``GET /metrics`` imports with the first scrape: a
supervisor that is never scraped never loads the library (docs/bench.md, "startup").

Which numbers survive a restart. Process counters (``jobvisor_spawned_total``,
``jobvisor_worker_messages_total``, ...) start at zero with each supervisor, as
Prometheus counters do after a restart (``rate()`` handles the reset). The settled
totals, ``jobvisor_jobs_settled_total{kind,status}``, are seeded at start from the store
(``ManagedStore.settled_totals``: the finished rows plus a tally of those deleted,
purged or retried since) and then counted here, so after a ``kill -9`` they go on from
what the store holds: each of them was counted in the iteration whose commit made it
durable.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Protocol

if TYPE_CHECKING:
    from supervisor.clock import Clock
    from supervisor.records import JobRecord

CONTENT_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"

# Seconds. Jobs wait and run from milliseconds to hours; the loop's own work from
# microseconds (an idle wakeup) to the 20 ms I/O budget and beyond (a slow commit).
JOB_BUCKETS: Final = (0.005, 0.025, 0.1, 0.5, 1, 2.5, 10, 30, 60, 300, 900, 3600, 14400)
LOOP_BUCKETS: Final = (0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1, 5)


class _Live(Protocol):
    @property
    def conn(self) -> object | None: ...
    @property
    def stale(self) -> bool: ...
    @property
    def kind(self) -> _Named: ...


class _Named(Protocol):
    @property
    def name(self) -> str: ...


class _Attempts(Protocol):
    @property
    def attempts(self) -> Mapping[str, _Live]: ...


class Scraped(Protocol):
    """What a scrape reads (the supervisor core provides it; this module sits below it
    and does not import it)."""

    @property
    def counters(self) -> Counters: ...
    @property
    def metrics(self) -> Metrics: ...
    @property
    def table(self) -> Iterable[JobRecord]: ...
    @property
    def runner(self) -> _Attempts: ...
    @property
    def kinds(self) -> Mapping[str, object]: ...
    @property
    def clock(self) -> Clock: ...
    @property
    def started_at(self) -> float: ...


@dataclass(slots=True)
class Counters:
    """Counts since this supervisor process started (unlabelled, reset by a restart)."""

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


# The "# HELP" line of each counter in the exposition (supervisor/exposition.py).
HELP: Final = {
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


class Histogram:
    """Observations in fixed buckets: ``counts[i]`` holds those ``<= bounds[i]`` and
    above the previous bound; the last slot holds those above every bound (``+Inf``)."""

    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.sum += value

    def buckets(self) -> list[tuple[str, float]]:
        """Cumulative ``(le, count)`` pairs, as the exposition format wants them."""
        total = 0
        out: list[tuple[str, float]] = []
        for bound, count in zip((*self.bounds, float("inf")), self.counts, strict=True):
            total += count
            out.append(("+Inf" if bound == float("inf") else repr(float(bound)), total))
        return out


class KindHistograms:
    """One ``Histogram`` per job kind, made at a kind's first observation."""

    __slots__ = ("bounds", "by_kind")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.by_kind: dict[str, Histogram] = {}

    def observe(self, kind: str, value: float) -> None:
        histogram = self.by_kind.get(kind)
        if histogram is None:
            histogram = self.by_kind[kind] = Histogram(self.bounds)
        histogram.observe(value)


class Metrics:
    """The histograms and the settled totals; the core calls the hooks below."""

    def __init__(self) -> None:
        self.queue_wait = KindHistograms(JOB_BUCKETS)
        self.run_time = KindHistograms(JOB_BUCKETS)
        self.spawn_latency = KindHistograms(LOOP_BUCKETS)
        self.commit_time = Histogram(LOOP_BUCKETS)
        self.iteration_time = Histogram(LOOP_BUCKETS)
        self.settled: Counter[tuple[str, str]] = Counter()  # (kind, status): jobs
        self._queued_at: dict[str, float] = {}  # job id -> wall time it became pending

    def seed(self, totals: Mapping[tuple[str, str], int]) -> None:
        """Start the settled totals from what the store holds (at open)."""
        self.settled.update(totals)

    # --- hooks: one call per job event, commit or iteration -------------------------------

    def queued(self, job: JobRecord, wall: float) -> None:
        """``job`` became pending (submitted, its ``run_at`` reached, or retried)."""
        self._queued_at[job.id] = wall

    def started(self, job: JobRecord, wall: float) -> None:
        """An attempt of ``job`` starts: its wait in the queue ends. A job loaded as
        pending at start-up has waited since its creation, as far as we know."""
        since = self._queued_at.pop(job.id, job.created_at)
        self.queue_wait.observe(job.name, max(0.0, wall - since))

    def attempt_ended(self, job: JobRecord, wall: float) -> None:
        """The process of an attempt of ``job`` is gone: how long the attempt ran."""
        if job.started_at is not None:
            self.run_time.observe(job.name, max(0.0, wall - job.started_at))

    def job_settled(self, job: JobRecord) -> None:
        """``Supervisor.settled``: ``job`` reached a final status."""
        self.settled[job.name, job.status.value] += 1
        self._queued_at.pop(job.id, None)  # a pending job cancelled: no start will come
