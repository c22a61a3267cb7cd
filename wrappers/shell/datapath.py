"""``job_data_get a.b.0.c``: one value out of the job's payload, printed for a shell.

A key is a path of segments separated by dots; a segment names a key of an object, or an
index (0, 1, ...) of an array. The empty key is the whole payload. The value is printed
as the shell wants it: a string as its text (no quotes), anything else as compact JSON
(``null``, ``true``, ``42``, ``1.5``, ``[1,2]``, ``{"a":1}``) -- the convention of
``jq -r``. A key that is not in the payload is a ``MissingKey`` naming the segment.
"""

from __future__ import annotations

import json
from typing import Any


class MissingKey(LookupError):
    """The payload has no value at the key; the message says where the path stopped."""


def lookup(data: Any, key: str) -> Any:
    """The value at ``key`` (``"a.b.0.c"``) in ``data``; ``""`` is ``data`` itself."""
    if key == "":
        return data
    value = data
    walked: list[str] = []
    for segment in key.split("."):
        where = ".".join(walked) or "the data"
        if isinstance(value, dict):
            if segment not in value:
                raise MissingKey(f"no key {segment!r} in {where}")
            value = value[segment]
        elif isinstance(value, list):
            if not segment.isdigit() or segment != str(int(segment)):
                raise MissingKey(f"{where} is an array: {segment!r} is not an index (0, 1, ...)")
            index = int(segment)
            if index >= len(value):
                raise MissingKey(f"{where} is an array of {len(value)}: no index {index}")
            value = value[index]
        else:
            raise MissingKey(f"{where} is {_kind(value)}, not an object or array")
        walked.append(segment)
    return value


def count(data: Any, key: str) -> int:
    """The number of items of the array or object at ``key``."""
    value = lookup(data, key)
    if not isinstance(value, list | dict):
        raise MissingKey(f"{key or 'the data'} is {_kind(value)}, not an array or object")
    return len(value)


def shell_text(value: Any) -> str:
    """A string as its text, anything else as compact JSON (bytes as a hex string)."""
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=_bytes_as_hex)


def _bytes_as_hex(value: object) -> str:
    if isinstance(value, bytes):
        return value.hex()
    raise TypeError(f"{type(value).__name__} has no JSON form")


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    return "a string" if isinstance(value, str) else f"a {type(value).__name__}"
