"""``attach(sup)``: give an open supervisor its workflow engine.

Theory of operation (docs/workflows.md, "The engine"). ``jobvisor serve`` and
``SupervisorThread.start`` call ``prepare`` before ``Supervisor.open()`` and ``attach``
after it. ``prepare`` imports the workflows of ``settings.workflows`` (with
``settings.python_path`` first on ``sys.path``; a bad spec is a ``ConfigError`` naming
it) and registers the internal job kind ``workflow-step`` (this Python running ``-m
supervisor.workflows.poolworker`` over the workflows' modules, one attempt per job:
retries are the engine's): it must exist before ``open()`` recovers the step workers
that outlived the last supervisor. ``attach``, once ``open()`` has loaded the store,
recovered the workers and loaded the active instances, installs the warm pool, sets
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
from supervisor.workflows.engine import WorkflowEngine, register_step_kind
from supervisor.workflows.errors import WorkflowRegistrationError

if TYPE_CHECKING:
    from supervisor.core import Supervisor


def prepare(sup: Supervisor) -> None:
    """Before ``sup.open()``: load the configured workflows and register the
    ``workflow-step`` kind, so that the recovery inside ``open()`` re-attaches the step
    workers that survived a restart (a job whose kind is unknown is stopped as lost).
    ``ConfigError`` naming a bad workflow spec."""
    settings = sup.settings
    try:
        registry.load(settings.workflows, settings.python_path)
    except WorkflowRegistrationError as exc:
        raise ConfigError(f"{settings.source}: workflows: {exc}") from None
    if registry.registered():
        register_step_kind(sup)


def attach(sup: Supervisor) -> WorkflowEngine:
    """After ``sup.open()`` (loop thread): start the step pool, set ``sup.workflows`` and
    resume the active instances. Calls ``prepare`` again (a no-op if it ran)."""
    prepare(sup)
    engine = WorkflowEngine(sup)
    if registry.registered():
        engine.ensure_step_kind()
    sup.workflows = engine
    engine.resume_active()
    return engine
