"""The engine's loop timers: a step's retry, a step attempt's timeout, an instance's deadline.

Theory of operation (docs/workflows.md, "The engine"). Each timer is a ``Loop`` timer keyed
by the instance (and step), so that arming one again replaces it and finishing a step or an
instance cancels it by key. Deadlines are kept in wall time in the records (``retry_at``,
``timeout_at``; a step attempt's start is its job's creation), so the same calls re-arm
them after a restart. A timer that fires checks that what it was armed for still holds
(the same step state, the same attempt, an active instance) before it calls back: a step
that moved on in the meantime is no business of an old timer.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from supervisor.workflows.records import InstanceRecord, StepState, StepStatus

if TYPE_CHECKING:
    from supervisor.clock import Clock
    from supervisor.loop import Loop


class StepTimers:
    """Arms and cancels the engine's timers; calls back ``retry(instance, step)``,
    ``step_timeout(instance, step, seconds)`` and ``workflow_timeout(instance)``."""

    def __init__(
        self,
        loop: Loop,
        clock: Clock,
        *,
        retry: Callable[[InstanceRecord, str], None],
        step_timeout: Callable[[InstanceRecord, str, float], None],
        workflow_timeout: Callable[[InstanceRecord], None],
    ) -> None:
        self.loop = loop
        self.clock = clock
        self._retry = retry
        self._step_timeout = step_timeout
        self._workflow_timeout = workflow_timeout

    def arm_retry(self, instance: InstanceRecord, name: str, state: StepState) -> None:
        """At ``state.retry_at``: the step's next attempt, if it still waits for it."""
        delay = max(0.0, (state.retry_at or 0.0) - self.clock.wall())

        def fire() -> None:
            waiting = state.status is StepStatus.WAITING_RETRY
            if instance.steps.get(name) is state and waiting and instance.active:
                self._retry(instance, name)

        self.loop.call_later(("wf-retry", instance.id, name), delay, fire)

    def arm_step_timeout(
        self, instance: InstanceRecord, name: str, timeout: float, started: float
    ) -> None:
        """``timeout`` seconds after ``started`` (wall time): the current attempt times out,
        if it is still the running one."""
        state = instance.steps[name]
        attempt = state.attempts
        delay = max(0.0, started + timeout - self.clock.wall())

        def fire() -> None:
            current = instance.steps.get(name) is state and state.attempts == attempt
            if current and state.status is StepStatus.RUNNING and instance.active:
                self._step_timeout(instance, name, timeout)

        self.loop.call_later(("wf-step", instance.id, name), delay, fire)

    def arm_workflow_timeout(self, instance: InstanceRecord) -> None:
        """At ``instance.timeout_at``: the instance times out, if still active."""
        assert instance.timeout_at is not None
        delay = max(0.0, instance.timeout_at - self.clock.wall())

        def fire() -> None:
            if instance.active:
                self._workflow_timeout(instance)

        self.loop.call_later(("wf-timeout", instance.id), delay, fire)

    def cancel_step(self, instance: InstanceRecord, name: str) -> None:
        self.loop.cancel_timer(("wf-retry", instance.id, name))
        self.loop.cancel_timer(("wf-step", instance.id, name))

    def cancel_instance(self, instance: InstanceRecord) -> None:
        """Every timer of the instance: its deadline and its steps'."""
        self.loop.cancel_timer(("wf-timeout", instance.id))
        for name in instance.steps:
            self.cancel_step(instance, name)
