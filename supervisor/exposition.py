"""The Prometheus text exposition of a supervisor's metrics (``GET /metrics``).

Imported by the first scrape only (``GET /metrics`` in ``supervisor/http/routes.py``):
a supervisor that is never scraped never pays for ``prometheus_client`` (docs/bench.md,
"startup"). ``render`` hands a collector over ``supervisor.metrics``'s numbers to a
registry of its own (never the library's global one, which would mix in whatever else
the embedding process registered) and lets ``generate_latest`` write the exposition
format, escaping and all (docs/decisions.md says why the library and not a
hand-written exposition).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import fields

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from supervisor.metrics import HELP, Scraped
from supervisor.states import JobStatus


def _families(sup: Scraped) -> Iterator[Metric]:
    counters, metrics = sup.counters, sup.metrics
    for f in fields(counters):
        yield CounterMetricFamily(
            f"jobvisor_{f.name}", HELP[f.name], value=getattr(counters, f.name)
        )
    settled = CounterMetricFamily(
        "jobvisor_jobs_settled",
        "Jobs that reached a final status, by kind; survives restarts (seeded from the store).",
        labels=("kind", "status"),
    )
    for (kind, status), count in sorted(metrics.settled.items()):
        settled.add_metric((kind, status), count)
    yield settled
    for name, text, by_kind in (
        ("queue_wait", "Seconds a job waited as pending before an attempt.", metrics.queue_wait),
        (
            "run_time",
            "Seconds an attempt ran, from its start to its process's end.",
            metrics.run_time,
        ),
        ("spawn_latency", "Seconds the loop spent starting a worker.", metrics.spawn_latency),
    ):
        family = HistogramMetricFamily(f"jobvisor_{name}_seconds", text, labels=("kind",))
        for kind, histogram in sorted(by_kind.by_kind.items()):
            family.add_metric((kind,), histogram.buckets(), histogram.sum)
        yield family
    for name, text, histogram in (
        ("commit", "Seconds a store commit took.", metrics.commit_time),
        (
            "loop_iteration",
            "Seconds of work in a loop iteration, idle wait excluded.",
            metrics.iteration_time,
        ),
    ):
        yield HistogramMetricFamily(
            f"jobvisor_{name}_seconds", text, buckets=histogram.buckets(), sum_value=histogram.sum
        )
    yield from _gauges(sup)


def _gauges(sup: Scraped) -> Iterator[Metric]:
    """Computed now: a scrape walks the active jobs and the live attempts once each."""
    by_status: Counter[tuple[str, str]] = Counter()
    for job in sup.table:
        if job.active:
            by_status[job.name, job.status.value] += 1
    connected: Counter[str] = Counter()
    stale: Counter[str] = Counter()
    for attempt in sup.runner.attempts.values():
        connected[attempt.kind.name] += attempt.conn is not None
        stale[attempt.kind.name] += attempt.stale
    kinds = sorted({*sup.kinds, *(kind for kind, _ in by_status), *connected})
    jobs = GaugeMetricFamily(
        "jobvisor_jobs", "Active jobs by kind and status.", labels=("kind", "status")
    )
    workers = GaugeMetricFamily(
        "jobvisor_workers_connected", "Workers with a live connection.", labels=("kind",)
    )
    silent = GaugeMetricFamily(
        "jobvisor_jobs_stale", "Running jobs whose worker is silent (stale).", labels=("kind",)
    )
    for kind in kinds:
        for status in (JobStatus.PENDING, JobStatus.SCHEDULED, JobStatus.RUNNING):
            jobs.add_metric((kind, status.value), by_status[kind, status.value])
        workers.add_metric((kind,), connected[kind])
        silent.add_metric((kind,), stale[kind])
    yield from (jobs, workers, silent)
    yield GaugeMetricFamily(
        "jobvisor_attempts_live",
        "Attempts whose process is being watched.",
        value=len(sup.runner.attempts),
    )
    yield GaugeMetricFamily(
        "jobvisor_uptime_seconds",
        "Seconds since this supervisor started.",
        value=round(sup.clock.wall() - sup.started_at, 3),
    )


class _Collector:
    """A ``prometheus_client`` collector over one supervisor's numbers."""

    def __init__(self, sup: Scraped) -> None:
        self._sup = sup

    def collect(self) -> Iterator[Metric]:
        return _families(self._sup)


def render(sup: Scraped) -> bytes:
    """The Prometheus text exposition of ``sup``'s metrics (on the loop thread)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Collector(sup))
    return generate_latest(registry)
