"""The Python worker library for jobvisor: ``from jobvisor_worker import Job, run_job``.

A worker is a program the supervisor starts with ``JOBVISOR_SOCKET``, ``JOBVISOR_JOB_ID``,
``JOBVISOR_TOKEN`` and ``JOBVISOR_HEARTBEAT_INTERVAL`` in its environment::

    from jobvisor_worker import Job, run_job

    def main(job: Job):
        job.progress(50, "halfway", rows=10)
        job.info("working", item=job.data["item"])
        return {"ok": True}

    run_job(main)

Theory of operation. ``Session`` (``_session.py``) is the protocol, sans-IO: the job's
identity, the bounded outbox (latest progress, logs, the outcome until acked), the
handshake, bytes in and bytes out. ``Transport`` (``_transport.py``) is one I/O thread per
job that owns the socket, sends heartbeats and reconnects by the policy in ``_retry.py``.
``Job`` (``job.py``) is what the job's code calls; it queues and wakes the I/O thread (and
writes itself, never blocking, when the I/O thread has not for 20 ms: a busy caller).
docs/worker-python.md has the whole story; the numbers are:

* handshake: the token never leaves the process; the supervisor proves it knows it
  (``challenge``) before the worker proves it (``auth``) and before anything else is sent.
* reconnection: every ~20 ms (+-50% jitter) for the first ``fast_reconnect_window`` (5 s)
  of an outage, then backing off from 50 ms, doubling, up to ``reconnect_interval`` (2 s);
  give up after ``reconnect_interval * max_reconnect_attempts`` (60 s) without a welcome.
  Every ``welcome`` replaces those two numbers with the supervisor's own schedule.
* buffered while disconnected: the latest progress, up to ``max_buffered_logs`` (1000)
  logs (oldest dropped first, the count reported as a warn log), the outcome until acked.

Exit codes (the library writes one line to stderr, the job's log file, before each):

* 0 -- ``run_job``: the job function returned and the supervisor acked ``completed``.
* 1 -- ``run_job``: the job function raised and the supervisor acked ``failed``.
* 75 -- no supervisor accepted the job for the whole give-up window (docs/protocol.md, "Reconnect").
* 77 -- the supervisor refused the job: ``bad_token``, ``unknown_job``, ``wrong_job``,
  ``job_not_running`` or ``unsupported_version``.

A cancel raises ``JobCancelled`` (a ``BaseException``) in the job function when it runs
on the main thread (``run_job(..., interrupt_on_cancel=False)`` opts out: poll
``job.cancelled``); ``_interrupt.py`` says how blocking calls are interrupted too.

For 75 and 77 a worker that leads its process group (as the supervisor starts it) first
SIGKILLs every other process of its group, so that no part of the job runs beside a retry.
"""

from typing import TYPE_CHECKING

from jobvisor_worker._run import EXIT_COMPLETED, EXIT_FAILED, run_job
from jobvisor_worker.errors import (
    ConfigurationError,
    JobCancelled,
    JobClosed,
    OutcomeAlreadyReported,
    SessionStateError,
    WorkerError,
)
from jobvisor_worker.job import Job, connect

if TYPE_CHECKING:
    from jobvisor_worker._events import (
        Acked,
        CancelRequested,
        Event,
        ProtocolViolation,
        Refused,
        Welcomed,
    )
    from jobvisor_worker._options import ConnectOptions
    from jobvisor_worker._session import FATAL_CODES, Session, SessionState
    from jobvisor_worker._terminate import EXIT_REFUSED, EXIT_UNREACHABLE

# Names whose modules load on first use (PEP 562), not at ``import jobvisor_worker``:
# a worker needs them only once it connects, and they pull in the protocol package
# (docs/worker-python.md, "Start-up cost").
_LAZY = {
    "Acked": "_events",
    "CancelRequested": "_events",
    "Event": "_events",
    "ProtocolViolation": "_events",
    "Refused": "_events",
    "Welcomed": "_events",
    "ConnectOptions": "_options",
    "FATAL_CODES": "_session",
    "Session": "_session",
    "SessionState": "_session",
    "EXIT_REFUSED": "_terminate",
    "EXIT_UNREACHABLE": "_terminate",
}

if not TYPE_CHECKING:  # mypy sees the imports above, and no catch-all for typos

    def __getattr__(name: str) -> object:
        module = _LAZY.get(name)
        if module is None:
            raise AttributeError(f"module 'jobvisor_worker' has no attribute {name!r}")
        value = getattr(__import__(f"jobvisor_worker.{module}", fromlist=[name]), name)
        globals()[name] = value
        return value


__all__ = [
    "EXIT_COMPLETED",
    "EXIT_FAILED",
    "EXIT_REFUSED",
    "EXIT_UNREACHABLE",
    "FATAL_CODES",
    "Acked",
    "CancelRequested",
    "ConfigurationError",
    "ConnectOptions",
    "Event",
    "Job",
    "JobCancelled",
    "JobClosed",
    "OutcomeAlreadyReported",
    "ProtocolViolation",
    "Refused",
    "Session",
    "SessionState",
    "SessionStateError",
    "Welcomed",
    "WorkerError",
    "connect",
    "run_job",
]
