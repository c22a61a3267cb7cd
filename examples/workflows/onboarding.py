"""The seed's user-onboarding workflow, in Python: create the account, send the welcome
e-mail, then set up an enterprise or a standard account depending on the plan.

The handlers simulate the work (no network, no database): the account id is derived from
the e-mail address, the e-mail is composed but not sent. The choice reads the workflow
input's ``plan``::

    {"email": "ada@example.com", "name": "Ada", "plan": "enterprise"}  # -> enterprise-setup
    {"email": "bob@example.com", "name": "Bob", "plan": "free"}        # -> standard-setup

Register it with ``workflows = ["onboarding:user_onboarding"]`` and ``python_path =
["workflows"]`` (docs/workflows.md).
"""

from __future__ import annotations

import hashlib
from typing import Any, Literal

from pydantic import BaseModel, Field

from supervisor.workflows import workflow


class NewUser(BaseModel):
    email: str = Field(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
    name: str = Field(min_length=1)
    plan: Literal["free", "pro", "enterprise"]


class Account(BaseModel):
    user_id: str


def create_account(user: NewUser, ctx: Any) -> dict[str, str]:
    """Create the user (here: derive a stable id from the e-mail address)."""
    return {"user_id": "user-" + hashlib.sha256(user.email.encode()).hexdigest()[:12]}


def send_welcome_email(email: dict[str, Any], ctx: Any) -> dict[str, Any]:
    """Send the welcome e-mail (here: compose it)."""
    return {"sent": True, "to": email["to"], "template": email["template"]}


def enterprise_setup(_input: Any, ctx: Any) -> dict[str, Any]:
    """Set up SSO, audit logs and dedicated support for an enterprise account."""
    user_id = ctx.steps["create-account"]["user_id"]
    return {"setup": "enterprise", "user_id": user_id, "features": ["sso", "audit-logs"]}


def standard_setup(_input: Any, ctx: Any) -> dict[str, Any]:
    """Set up a free or pro account."""
    return {"setup": "standard", "user_id": ctx.steps["create-account"]["user_id"]}


user_onboarding = (
    workflow("user-onboarding")
    .timeout(86400)  # a day at most
    .default_retry(max_attempts=3)
    # First step: the model validates the workflow input.
    .task("create-account", input_schema=NewUser, output_schema=Account, handler=create_account)
    # Later steps: a mapper builds the input from prev and the workflow input.
    .task(
        "send-welcome-email",
        input_schema=lambda prev, workflow_input: {
            "to": workflow_input["email"],
            "template": "welcome",
            "user_id": prev["user_id"],
        },
        handler=send_welcome_email,
    )
    .choice(
        "check-plan",
        choices=[
            {"condition": lambda ctx: ctx.input["plan"] == "enterprise", "next": "enterprise-setup"}
        ],
        default="standard-setup",
    )
    # After a choice, handlers read the step outputs they need from ctx.steps.
    .task("enterprise-setup", handler=enterprise_setup, next="complete")
    .task("standard-setup", handler=standard_setup, next="complete")
    .pass_(
        "complete",
        transform=lambda ctx: {
            "user_id": ctx.prev["user_id"],
            "setup": ctx.prev["setup"],
            "welcomed": ctx.steps["send-welcome-email"]["sent"],
        },
        end=True,
    )
    .build()
)
