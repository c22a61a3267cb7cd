"""Request bodies as strict JSON: no NaN or Infinity, and no nesting the API cannot show.

Python's ``json`` accepts ``NaN``, ``Infinity`` and ``1e400`` (which overflows to
infinity), none of which is JSON; stored, they would come back as something else or not
at all. They are parsed into a marker instead, and the first one found is reported with
its place in the body (``data.x[1]``). A body nested past the parser's own recursion
limit is a 400 too. The shared depth limit itself is applied where the value is used
(``Supervisor.enqueue`` checks ``data``), so the Python API and HTTP say the same thing.
"""

from __future__ import annotations

import json
import math
from typing import Any

from supervisor.errors import BadRequest


class _NonFinite:
    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text


def _constant(text: str) -> _NonFinite:
    return _NonFinite(text)


def _float(text: str) -> float | _NonFinite:
    value = float(text)
    return value if math.isfinite(value) else _NonFinite(text)


def parse(body: bytes) -> Any:
    """The JSON value of ``body``; ``BadRequest`` naming the problem otherwise."""
    if not body.strip():
        raise BadRequest("the request needs a JSON body")
    try:
        value = json.loads(body, parse_constant=_constant, parse_float=_float)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadRequest(f"invalid JSON body: {exc}") from None
    except RecursionError:
        raise BadRequest("invalid JSON body: nested deeper than the parser allows") from None
    where = _find_non_finite(value)
    if where is not None:
        path, marker = where
        raise BadRequest(f"{path or 'body'}: {marker.text} is not a finite number (not JSON)")
    return value


def _find_non_finite(value: Any) -> tuple[str, _NonFinite] | None:
    """The path and marker of the first non-finite number, walking without recursion."""
    stack: list[tuple[str, Any]] = [("", value)]
    while stack:
        path, node = stack.pop()
        if isinstance(node, _NonFinite):
            return path, node
        if isinstance(node, dict):
            items = [(f"{path}.{k}" if path else str(k), v) for k, v in node.items()]
            stack.extend(reversed(items))
        elif isinstance(node, list):
            stack.extend(reversed([(f"{path}[{i}]", v) for i, v in enumerate(node)]))
    return None
