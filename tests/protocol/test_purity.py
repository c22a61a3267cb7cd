"""protocol/ is sans-IO: no sockets, selectors, clock, logging, threads or processes.

Two checks. Statically, no module in protocol/ imports a forbidden module (by AST, so a
comment or a string mentioning one does not count). At run time, importing ``protocol``
in a fresh interpreter must not load the I/O modules, whoever would import them: this
also catches a dependency (msgpack) that starts pulling them in.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import protocol

PACKAGE = Path(protocol.__file__).parent
FORBIDDEN = {
    "socket",
    "selectors",
    "sqlite3",
    "time",
    "logging",
    "asyncio",
    "subprocess",
    "threading",
    "os",
}
# At run time ``time`` and ``os`` cannot be checked: the interpreter itself loads both
# before any user code (``python -I -S -c "import sys; print(sys.modules)"`` lists them),
# and msgpack's ``datetime`` import uses ``time`` too. The static check above covers our
# own code for those two; every other forbidden module must stay unloaded.
RUNTIME_FORBIDDEN = FORBIDDEN - {"time", "os"}


def imported_modules(path: Path) -> set[str]:
    """Top-level names of every module imported anywhere in the file."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
        elif isinstance(node, ast.Call) and getattr(node.func, "id", None) == "__import__":
            names.add("__import__")
    return names


SOURCES = sorted(PACKAGE.glob("*.py"))


def test_the_package_has_sources_to_check() -> None:
    """The static check looks at the real package files (guards against a wrong path)."""
    assert {p.name for p in SOURCES} >= {"__init__.py", "codec.py", "framing.py", "messages.py"}


@pytest.mark.parametrize("path", SOURCES, ids=[p.name for p in SOURCES])
def test_protocol_modules_import_no_io(path: Path) -> None:
    """No protocol module imports an I/O, clock, logging, thread or process module."""
    bad = imported_modules(path) & (FORBIDDEN | {"__import__", "importlib"})
    assert not bad, f"{path.name} imports {sorted(bad)}"


def test_importing_protocol_loads_no_io_modules() -> None:
    """A fresh interpreter that imports protocol (and msgpack under it) has no I/O modules."""
    script = "import sys, protocol; print(sorted(sys.modules))"
    result = subprocess.run(
        [sys.executable, "-I", "-c", script],
        capture_output=True,
        text=True,
        check=True,
        cwd=PACKAGE.parent,
        timeout=60,
    )
    loaded = set(ast.literal_eval(result.stdout))
    assert "msgpack" in loaded and "protocol.codec" in loaded
    assert not loaded & RUNTIME_FORBIDDEN, sorted(loaded & RUNTIME_FORBIDDEN)
