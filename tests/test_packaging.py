"""Packaging: what setup.cfg installs is what the tree holds."""

from __future__ import annotations

import configparser
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _listed_packages() -> set[str]:
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    return {line.strip() for line in config["options"]["packages"].splitlines() if line.strip()}


def test_every_package_directory_is_listed_in_setup_cfg():
    """Each folder with an __init__.py under protocol/, supervisor/ and the worker library is packaged."""
    found = set()
    for top in ("protocol", "supervisor"):
        for init in (ROOT / top).rglob("__init__.py"):
            found.add(".".join(init.parent.relative_to(ROOT).parts))
    found.add("jobvisor_worker")
    found.add("jobvisor_worker.shell")  # wrappers/shell, mapped by package_dir
    assert found == _listed_packages()


def test_console_script_and_worker_library_are_installed():
    """`jobvisor --help` works and jobvisor_worker imports from the installed environment."""
    bindir = Path(sys.executable).parent
    done = subprocess.run(
        [str(bindir / "jobvisor"), "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0
    assert "serve" in done.stdout and "submit" in done.stdout
    probe = subprocess.run(
        [sys.executable, "-c", "import jobvisor_worker, protocol; print(jobvisor_worker.run_job)"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd="/",
    )
    assert probe.returncode == 0, probe.stderr
