"""What ``import jobvisor_worker`` loads (docs/worker-python.md, "Start-up cost"): the
wire layer waits for the first connect, every public name still resolves, and a name
that does not exist is an AttributeError."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import jobvisor_worker

# Needed only once a job connects (or fails): none of them at import.
DEFERRED = ("protocol", "msgpack", "hmac", "dataclasses", "socket", "selectors", "traceback")


def _loaded_after(code: str) -> list[str]:
    probe = f"{code}\nimport json, sys\nprint(json.dumps([m for m in {DEFERRED!r} if m in sys.modules]))"
    out = subprocess.run(
        [sys.executable, "-c", probe], check=True, capture_output=True, text=True
    ).stdout
    loaded: list[str] = json.loads(out)
    return loaded


@pytest.mark.parametrize(
    "code", ["import jobvisor_worker", "from jobvisor_worker import Job, connect, run_job"]
)
def test_importing_the_library_does_not_load_the_wire_layer(code: str) -> None:
    """A fresh interpreter that imports the library has not loaded the protocol package,
    msgpack, hmac, dataclasses, socket, selectors or traceback."""
    assert _loaded_after(code) == []


def test_connecting_loads_the_wire_layer() -> None:
    """Making a Job's session loads what the import left out (the probe is real: it sees
    modules that are loaded)."""
    loaded = _loaded_after("import jobvisor_worker._session, jobvisor_worker._transport")
    assert {"protocol", "msgpack", "hmac", "socket", "selectors"} <= set(loaded)


@pytest.mark.parametrize("name", jobvisor_worker.__all__)
def test_every_public_name_resolves(name: str) -> None:
    """Each name in ``__all__``, loaded lazily or not, is an attribute of the package."""
    assert getattr(jobvisor_worker, name) is not None


def test_an_unknown_name_is_an_attribute_error() -> None:
    """A misspelt name raises AttributeError naming it, as for any module."""
    with pytest.raises(AttributeError, match="'Sesion'"):
        jobvisor_worker.Sesion  # type: ignore[attr-defined]  # noqa: B018
