"""``attach(sup)``: give an open supervisor its workflow engine.

Theory of operation (docs/workflows.md, "The engine"). ``jobvisor serve`` and
``SupervisorThread.start`` call ``attach`` once ``Supervisor.open()`` has loaded the
store, recovered the workers and loaded the active instances. It imports the workflows
of ``settings.workflows`` (with ``settings.python_path`` first on ``sys.path``; a bad
spec is a ``ConfigError`` naming it), registers the internal job kind ``workflow-step``
(this Python running ``-m supervisor.workflows.poolworker`` over the workflows' modules,
one attempt per job: retries are the engine's) with its warm pool, sets
``sup.workflows`` and resumes the active instances. With no workflow registered the
engine is still attached (its API answers, nothing is spawned); the step kind and its
pool appear with the first instance started.

A graceful stop calls ``engine.close()`` after ``sup.close()``: the pool's waiting
workers exit; running steps carry on and re-attach to the next supervisor.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from supervisor.errors import ConfigError
from supervisor.workflows import registry
from supervisor.workflows.engine import WorkflowEngine
from supervisor.workflows.errors import WorkflowRegistrationError

if TYPE_CHECKING:
    from supervisor.core import Supervisor


def attach(sup: Supervisor) -> WorkflowEngine:
    """Load the configured workflows, start the step pool and resume active instances
    (loop thread, after ``sup.open()``); ``ConfigError`` for a bad workflow spec."""
    settings = sup.settings
    try:
        registry.load(settings.workflows, settings.python_path)
    except WorkflowRegistrationError as exc:
        raise ConfigError(f"{settings.source}: workflows: {exc}") from None
    engine = WorkflowEngine(sup)
    if registry.registered():
        engine.ensure_step_kind()
    sup.workflows = engine
    engine.resume_active()
    return engine
