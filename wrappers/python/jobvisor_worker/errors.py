"""The worker library's errors: one small hierarchy under ``WorkerError``."""

from __future__ import annotations


class WorkerError(Exception):
    """Base of every error the worker library raises on purpose."""


class ConfigurationError(WorkerError, ValueError):
    """The worker cannot know how to reach its supervisor (missing or bad env/options)."""


class OutcomeAlreadyReported(WorkerError, RuntimeError):
    """``complete``/``fail`` was called after the job's outcome was already reported."""


class SessionStateError(WorkerError, RuntimeError):
    """A driver used a ``Session`` in a state where that call makes no sense (a bug)."""


class JobClosed(WorkerError, RuntimeError):
    """``complete``/``fail`` was called on a job whose connection was closed."""


class JobCancelled(BaseException):
    """Raised in the job function when the supervisor cancels the job (docs/worker-python.md).

    A ``BaseException``, like ``KeyboardInterrupt`` and ``asyncio.CancelledError``: the
    common ``except Exception:`` around a retry or a log-and-continue would otherwise
    swallow the cancel and keep the job running until the supervisor kills it. Catch it by
    name (or use ``finally``) to clean up; re-raise it, or return, when done.
    """

    def __init__(self, reason: str | None = None) -> None:
        super().__init__(reason or "cancelled")
        self.reason = reason
