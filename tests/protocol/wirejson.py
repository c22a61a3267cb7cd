"""Wire values <-> the JSON of protocol/vectors.json, and loading that file.

JSON cannot say "bin", "float64 1.0" or "2**64 - 1" unambiguously in every language, so
the vectors tag those values (the same rules are in the file's "format" key):

    {"$bin": "00ff"}          msgpack bin, lowercase hex
    {"$float": "1.0"}         msgpack float64; the text is the shortest round-trip decimal
    {"$int": "-9223372036854775808"}   an integer outside +-(2**53 - 1)
    {"$repeat": ["x", 1000]}  a str: the text repeated N times (generated cases only)

Every bare JSON number is an integer within +-(2**53 - 1); JSON never carries a float
untagged. Map keys are always strings. ``dumps`` compares values strictly (1 is not 1.0,
true is not 1, and key order counts), which plain ``==`` in Python does not.
"""

from __future__ import annotations

import hashlib
import json
from functools import cache
from importlib import resources
from typing import Any

SAFE_INT = 2**53 - 1


def to_json(value: Any) -> Any:
    """A decoded wire value as tagged JSON."""
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        return value if -SAFE_INT <= value <= SAFE_INT else {"$int": str(value)}
    if isinstance(value, float):
        return {"$float": repr(value)}
    if isinstance(value, bytes):
        return {"$bin": value.hex()}
    if isinstance(value, list | tuple):
        return [to_json(item) for item in value]
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if not isinstance(key, str) or (key.startswith("$") and len(value) == 1):
                raise ValueError(f"map key {key!r} cannot be written in the vectors' JSON")
            out[key] = to_json(item)
        return out
    raise TypeError(f"no JSON form for {type(value).__name__}")


def from_json(value: Any) -> Any:
    """Tagged JSON back to the wire value it stands for."""
    if isinstance(value, list):
        return [from_json(item) for item in value]
    if isinstance(value, dict):
        if len(value) == 1:
            ((key, arg),) = value.items()
            if key == "$bin":
                return bytes.fromhex(arg)
            if key == "$float":
                return float(arg)
            if key == "$int":
                return int(arg)
            if key == "$repeat":
                text, count = arg
                return text * count
        return {key: from_json(item) for key, item in value.items()}
    if isinstance(value, float):
        raise ValueError(f"untagged float {value!r} in vectors JSON; write {{'$float': ...}}")
    return value


def dumps(value: Any) -> str:
    """A strict, order-preserving text form of a wire value, for equality checks."""
    return json.dumps(to_json(value), ensure_ascii=False)


@cache
def load_vectors() -> dict[str, Any]:
    """protocol/vectors.json, read as package data (the way other tools find it)."""
    text = resources.files("protocol").joinpath("vectors.json").read_text(encoding="utf-8")
    return json.loads(text)  # type: ignore[no-any-return]


def generated_frame(case: dict[str, Any]) -> bytes:
    """Build a generated case's frame from its recipe: prefix + byte * count + suffix."""
    recipe = case["generate"]
    fill = bytes.fromhex(recipe["repeat_hex"]) * recipe["repeat_count"]
    return bytes.fromhex(recipe["prefix_hex"]) + fill + bytes.fromhex(recipe["suffix_hex"])


def case_frame(case: dict[str, Any]) -> bytes:
    """The frame bytes of any case, inline (``hex``) or generated."""
    if "hex" in case:
        return bytes.fromhex(case["hex"])
    frame = generated_frame(case)
    if hashlib.sha256(frame).hexdigest() != case["sha256"]:
        raise ValueError(f"vector {case['name']}: generated frame does not match its sha256")
    return frame
