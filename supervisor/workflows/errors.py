"""The workflow package's errors: a small hierarchy whose messages name the workflow,
the step and the bad value.

Everything derives from ``WorkflowError`` (itself a ``supervisor.errors.JobvisorError``,
so the HTTP layer maps it to a status and a stable ``code``). This module is a leaf: it
imports nothing from ``supervisor`` but ``supervisor.errors``, so the leaf modules that
core modules may import (``records``, ``instances``) can raise these errors.
"""

from __future__ import annotations

from supervisor.errors import IllegalTransition, JobvisorError


class WorkflowError(JobvisorError):
    """Base of every error the workflow package raises on purpose."""

    code = "workflow_error"
    http_status = 500


class IllegalInstanceTransition(WorkflowError, IllegalTransition):
    """An instance status change ``records.INSTANCE_TRANSITIONS`` does not allow, or an
    instance entering or leaving the table wrongly: always a bug or a race."""

    code = "illegal_transition"
    http_status = 409
