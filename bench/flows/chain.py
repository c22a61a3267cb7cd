"""A chain of ``CHAIN_STEPS`` no-op task steps: what the engine costs per step.

Each step's handler returns its input unchanged, so an instance's duration is the engine's
own cost (a step job per step, a warm or cold step worker, the protocol, the commits),
which ``bench/workflow.py`` compares with calling the same handlers in-process.
"""

from __future__ import annotations

from typing import Any

from supervisor.workflows import workflow

CHAIN_STEPS = 20


def noop(value: Any, ctx: Any) -> Any:
    """Return the step's input unchanged."""
    return value


def _chain() -> Any:
    builder = workflow("bench-chain")
    for i in range(CHAIN_STEPS):
        builder = builder.task(f"s{i:02d}", handler=noop)
    return builder.build()


chain = _chain()
handlers = [noop] * CHAIN_STEPS  # the handlers of the chain's steps, in order
