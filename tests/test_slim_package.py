"""The slim ``jobvisor-worker`` wheel, built and installed with real pip into a fresh venv.

One venv per session (building and installing takes a few seconds; PyPI provides
msgpack). The supervisor runs from the repository; only the worker runs with the slim
venv's python, as it would in an application's own environment.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from supervisor.testing import TEST_RUN_VAR, SupervisorThread

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "scripts" / "build_worker_package.py"
WORKER = ROOT / "tests" / "worker" / "workers" / "slim.py"
SOURCES = {
    "jobvisor_worker": ROOT / "wrappers" / "python" / "jobvisor_worker",
    "jobvisor_worker/shell": ROOT / "wrappers" / "shell",
    "protocol": ROOT / "protocol",
}

pytestmark = pytest.mark.slow


@dataclass(frozen=True)
class SlimVenv:
    wheel: Path
    python: Path
    before: set[str]  # distributions in the empty venv
    after: set[str]  # ... once the wheel is installed


def _clean_env() -> dict[str, str]:
    """Our environment without what would let the venv see the repository's packages."""
    return {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "VIRTUAL_ENV"}}


def _installed(python: Path) -> set[str]:
    listing = subprocess.run(
        [str(python), "-m", "pip", "list", "--format=json"],
        check=True,
        capture_output=True,
        text=True,
        env=_clean_env(),
    ).stdout
    return {entry["name"].lower() for entry in json.loads(listing)}


@pytest.fixture(scope="session")
def slim(tmp_path_factory: pytest.TempPathFactory) -> SlimVenv:
    """The slim wheel, and a fresh venv with it installed by pip."""
    base = tmp_path_factory.mktemp("slim")
    built = subprocess.run(
        [sys.executable, str(BUILD), "--out", str(base / "dist")],
        check=True,
        capture_output=True,
        text=True,
    )
    wheel = Path(built.stdout.strip().splitlines()[-1])
    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, env=_clean_env())
    python = venv / "bin" / "python"
    before = _installed(python)
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", str(wheel)], check=True, env=_clean_env()
    )
    return SlimVenv(wheel, python, before, _installed(python))


def test_installing_the_slim_wheel_pulls_only_msgpack(slim):
    """pip installs jobvisor-worker and msgpack into an empty venv, and nothing else."""
    assert slim.after - slim.before == {"jobvisor-worker", "msgpack"}


def test_the_wheel_holds_every_file_of_both_packages_and_nothing_else(slim):
    """Every file of jobvisor_worker (subpackages and data included) and of protocol is in
    the wheel; the supervisor is not."""
    with zipfile.ZipFile(slim.wheel) as wheel:
        names = {n for n in wheel.namelist() if ".dist-info/" not in n}
    expected = {
        f"{package}/{path.relative_to(source).as_posix()}"
        for package, source in SOURCES.items()
        for path in source.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    }
    assert names == expected
    with zipfile.ZipFile(slim.wheel) as wheel:
        metadata = next(n for n in wheel.namelist() if n.endswith(".dist-info/METADATA"))
        requires = [
            line
            for line in wheel.read(metadata).decode().splitlines()
            if line.startswith("Requires-Dist")
        ]
    assert requires == ["Requires-Dist: msgpack>=1.0.5"]


def test_the_library_imports_without_the_supervisor(slim, tmp_path):
    """In the slim venv jobvisor_worker imports from the venv; supervisor, psutil, pydantic
    and h11 are not there at all."""
    probe = (
        "import importlib.util, json, jobvisor_worker, protocol; "
        "print(json.dumps({'library': jobvisor_worker.__file__, 'missing': "
        "[m for m in ('supervisor', 'psutil', 'pydantic', 'h11') "
        "if importlib.util.find_spec(m) is None]}))"
    )
    out = subprocess.run(
        [str(slim.python), "-c", probe],
        check=True,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=_clean_env(),
    ).stdout
    found = json.loads(out)
    assert found["library"].startswith(str(slim.python.parent.parent))
    assert found["missing"] == ["supervisor", "psutil", "pydantic", "h11"]


@pytest.mark.parametrize("transport", ["unix", "tcp"])
def test_a_worker_on_the_slim_venv_completes_a_job(
    slim, start: Callable[..., SupervisorThread], marker, transport
):
    """A worker run by the slim venv's python reports progress, logs and a result to a
    real supervisor, with both libraries from the venv and no supervisor importable."""
    kind = {
        "command": str(slim.python),
        "args": [str(WORKER)],
        "env": {TEST_RUN_VAR: marker, "PYTHONPATH": ""},
    }
    sv = start({"slim": kind}, transport=transport)
    job_id = sv.enqueue("slim", {"n": 1})
    job = sv.wait(job_id)
    assert job["status"] == "completed", job
    result = job["result"]
    venv = str(slim.python.parent.parent)
    assert result["echo"] == {"n": 1}
    assert result["library"].startswith(venv)
    assert result["protocol"].startswith(venv)
    assert result["supervisor"] is False
    assert job["progress"]["percent"] == 50
    assert "job.external.log" in sv.event_names(job_id)


def test_the_shell_library_ships_in_the_slim_wheel(slim):
    """A worker-only venv has the bash library and its helper: ``python -m
    jobvisor_worker.shell --path`` names an installed ``jobvisor-job.sh``."""
    found = subprocess.run(
        [str(slim.python), "-m", "jobvisor_worker.shell", "--path"],
        check=True,
        capture_output=True,
        text=True,
        env=_clean_env(),
    )
    path = Path(found.stdout.strip())
    assert path.name == "jobvisor-job.sh"
    assert path.is_file()
    assert str(path).startswith(str(slim.python.parent.parent))
