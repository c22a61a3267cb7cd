"""The seed's order-processing workflow, in Python: validate, check inventory, then fulfil
(shipping and notification in parallel) or backorder, and complete.

The handlers simulate the work against an in-memory stock table (no network, no database):
an order of up to ``STOCK[sku]`` units is in stock and fulfilled, a larger one is
backordered, so the choice takes each branch depending on the order's quantity::

    {"order_id": "A-1", "sku": "widget", "quantity": 2}    # -> fulfill
    {"order_id": "A-2", "sku": "widget", "quantity": 500}  # -> backorder

Register it with ``workflows = ["orders:process_order"]`` and ``python_path =
["workflows"]`` in a ``jobvisor.toml`` next to this folder (docs/workflows.md).
"""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

from pydantic import BaseModel, Field

from supervisor.workflows import workflow

STOCK = {"widget": 10, "gadget": 3}
PRICES = {"widget": 4.5, "gadget": 19.0}


class Order(BaseModel):
    order_id: str = Field(min_length=1)
    sku: str = "widget"
    quantity: int = Field(default=1, ge=1)


class Validated(BaseModel):
    order_id: str
    valid: bool
    in_stock: bool
    total: float


def validate(order: Order, ctx: Any) -> dict[str, Any]:
    """Check the order against the stock table and price it."""
    if order.sku not in PRICES:
        raise ValueError(f"unknown sku {order.sku!r}")
    ctx.progress(50, "priced")
    return {
        "order_id": order.order_id,
        "valid": True,
        "in_stock": order.quantity <= STOCK[order.sku],
        "total": round(order.quantity * PRICES[order.sku], 2),
    }


async def ship(shipment: dict[str, Any], ctx: Any) -> dict[str, Any]:
    """Create a shipment (an async handler: it "waits" for a carrier)."""
    await asyncio.sleep(0)
    digest = hashlib.sha256(shipment["order_id"].encode()).hexdigest()[:10]
    return {"tracking": f"TRK-{digest}", "carrier": "simulated"}


def notify(message: dict[str, Any], ctx: Any) -> dict[str, Any]:
    """Send the confirmation e-mail (here: compose it)."""
    body = f"Order {message['order_id']} confirmed, total {message['total']:.2f}"
    return {"sent": True, "body": body}


def backorder(order: dict[str, Any], ctx: Any) -> dict[str, Any]:
    """Record a backorder for an order the stock cannot cover."""
    return {"backorder_id": f"BO-{order['order_id']}", "total": order["total"]}


process_order = (
    workflow("process-order")
    .timeout(3600)
    .default_retry(max_attempts=3, interval=1.0, backoff_rate=2.0)
    # First task: the model validates the workflow input.
    .task("validate", input_schema=Order, output_schema=Validated, handler=validate)
    .choice(
        "check-inventory",
        choices=[{"condition": lambda ctx: ctx.steps["validate"]["in_stock"], "next": "fulfill"}],
        default="backorder",
    )
    .parallel(
        "fulfill",
        branches=[
            workflow.branch("shipping")
            # A mapper: the branch's prev is the parallel step's prev (validate's output).
            .task("ship", input_schema=lambda prev: {"order_id": prev["order_id"]}, handler=ship)
            .build(),
            workflow.branch("notification")
            .task(
                "notify",
                input_schema=lambda prev, workflow_input: {
                    "order_id": workflow_input["order_id"],
                    "total": prev["total"],
                },
                handler=notify,
            )
            .build(),
        ],
        next="complete",
    )
    .task(
        "backorder",
        input_schema=lambda prev: {"order_id": prev["order_id"], "total": prev["total"]},
        handler=backorder,
        next="complete",
    )
    .pass_("complete", end=True)
    .build()
)
