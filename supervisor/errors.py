"""The supervisor's errors: a small hierarchy whose messages name the thing that is wrong.

The HTTP layer maps each class to a status code and a stable ``code`` string, so API
clients can tell "no such job" from "bad request" without parsing English.
"""

from __future__ import annotations


class JobvisorError(Exception):
    """Base of every error the supervisor raises on purpose."""

    code = "error"
    http_status = 500


class ConfigError(JobvisorError):
    """A configuration file or value is invalid; the message names the file and key."""

    code = "config_error"
    http_status = 500


class BadRequest(JobvisorError):
    """A caller asked for something malformed (bad JSON, wrong field type, bad argument)."""

    code = "bad_request"
    http_status = 400


class UnknownJobKind(BadRequest):
    """A job was submitted under a name that no ``[jobs.NAME]`` section registers."""

    code = "unknown_job_name"
    http_status = 404


class JobNotFound(JobvisorError):
    code = "job_not_found"
    http_status = 404


class IllegalTransition(JobvisorError):
    """A state change the transition table does not allow: always a bug or a race."""

    code = "illegal_transition"
    http_status = 409


class JobFinished(JobvisorError):
    """An operation that needs an unfinished job (e.g. cancel) met a finished one."""

    code = "job_finished"
    http_status = 409


class ReservationError(JobvisorError):
    """A socket path or TCP port was requested that is reserved for another job."""

    code = "endpoint_reserved"
    http_status = 409


class StoreError(JobvisorError):
    """The store failed to read or commit; the supervisor cannot promise durability."""

    code = "store_error"
    http_status = 503


class NotRetryable(JobvisorError):
    """A manual retry of a job that is not failed or cancelled (or cannot run again)."""

    code = "not_retryable"
    http_status = 409


class JobActive(JobvisorError):
    """An operation that needs a finished job (e.g. delete) met one still active, or one
    whose worker is still exiting."""

    code = "job_active"
    http_status = 409
