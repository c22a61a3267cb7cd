"""``run_job``: the usual way to write a worker, ``run_job(main)``.

The job function's return value completes the job, an exception fails it with its
traceback; either way the process waits for the supervisor's ack (so the outcome is
durable) and then exits: 0 after ``completed``, 1 after ``failed``.

A cancel interrupts the function (``Job.interruptible``, on by default) with
``JobCancelled``. If the function lets it escape, the attempt is reported ``failed``
with the error ``cancelled: REASON``: the supervisor has already recorded the job as
cancelled and only acks it (docs/protocol.md, "Cancel"), but the ack tells the worker it
may exit now instead of waiting for SIGTERM. An outcome the function had already
reported before the interrupt is kept; the worker waits for its ack instead.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any, NoReturn

from jobvisor_worker._stderr import say
from jobvisor_worker.errors import JobCancelled
from jobvisor_worker.job import Job, connect

if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Unpack

    from jobvisor_worker._options import ConnectOptions

EXIT_COMPLETED = 0
EXIT_FAILED = 1


def run_job(
    fn: Callable[[Job], Any],
    *,
    interrupt_on_cancel: bool = True,
    **options: Unpack[ConnectOptions],
) -> NoReturn:
    """Connect, call ``fn(job)``, report its outcome, wait for the ack and exit.

    With ``interrupt_on_cancel`` (the default) a cancel raises ``JobCancelled`` in ``fn``
    if it runs on the main thread; with False, ``fn`` watches ``job.cancelled`` itself.
    """
    sys.exit(run_once(fn, interrupt_on_cancel=interrupt_on_cancel, **options))


def run_once(
    fn: Callable[[Job], Any],
    *,
    interrupt_on_cancel: bool = True,
    **options: Unpack[ConnectOptions],
) -> int:
    """``run_job`` without the exit: the exit code it would use, once the outcome is
    acked and the connection closed. For a process that serves several jobs in turn
    (the workflows' pool workers); the job's environment must be set for each."""
    job = connect(**options)
    try:
        code = _call(job, fn, interrupt_on_cancel)
    finally:
        job.close()
    _flush_stdio()
    return code


def _call(job: Job, fn: Callable[[Job], Any], interrupt_on_cancel: bool) -> int:
    try:
        # A JobCancelled raised after fn returned, before the with-block disarmed, is
        # caught here too: the job was cancelled, its result no longer matters.
        if interrupt_on_cancel:
            with job.interruptible():
                result = fn(job)
        else:
            result = fn(job)
    except JobCancelled as exc:
        return _cancelled(job, exc)
    except Exception as exc:
        stack = _format_exc()
        say(f"the job raised {type(exc).__name__}; reporting it as failed\n{stack}")
        if job.outcome is None:
            error = str(exc) or repr(exc)
            _report(job, "error", lambda: job.fail(error, stack=stack))
        return _exit_code(job)
    if job.outcome is None:  # fn may have called job.complete()/fail() itself
        _report(job, "return value", lambda: job.complete(result))
    return _exit_code(job)


def _cancelled(job: Job, exc: JobCancelled) -> int:
    stack = _format_exc()
    if job.outcome is None:
        say(f"the job was cancelled ({exc}); reporting it as failed\n{stack}")
        job.fail(f"cancelled: {exc}", stack=stack)
    else:  # interrupted while waiting for the ack of its own complete()/fail()
        say(f"the job was cancelled ({exc}) after reporting {job.outcome}; waiting for the ack")
        job._wait_for_ack(None)
    return _exit_code(job)


def _format_exc() -> str:
    import traceback  # noqa: PLC0415 - only a failing job needs it, not start-up

    return traceback.format_exc()


def _report(job: Job, what: str, report: Callable[[], None]) -> None:
    """Report the outcome; one that cannot be encoded (or is too large) fails saying so."""
    try:
        report()
    except (TypeError, ValueError) as exc:
        message = f"the job's {what} cannot be reported: {exc}"
        say(message)
        job.fail(message)


def _exit_code(job: Job) -> int:
    return EXIT_COMPLETED if job.outcome == "completed" else EXIT_FAILED


def _flush_stdio() -> None:
    # A flush that fails now (full disk, closed log) would fail again at interpreter exit
    # and turn our exit status into 120. The outcome is already durable; let the lost
    # output go rather than lie about the job in the exit status.
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        if stream is None:
            continue
        try:
            stream.flush()
        except (OSError, ValueError):
            setattr(sys, name, None)
