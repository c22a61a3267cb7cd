#!/usr/bin/env python3
"""Build the slim ``jobvisor-worker`` wheel: the worker library and the protocol, nothing else.

Usage: ``python scripts/build_worker_package.py [--out DIR]`` (default ``dist/``); prints
the wheel's path.

Theory of operation. setuptools packages only files inside the project folder, and
``jobvisor_worker`` lives under ``wrappers/python/`` while ``protocol`` is at the top, next
to the supervisor. So this script stages a project of its own in a temporary folder: a
copy of ``protocol/`` and of ``wrappers/python/jobvisor_worker/``, with the subpackages
``setup.cfg`` maps elsewhere (``jobvisor_worker.shell`` from ``wrappers/shell/``, with the
``.sh`` library), every data file in them, minus bytecode caches, a
``pyproject.toml`` naming ``msgpack`` as the only dependency, and a ``MANIFEST.in`` that
grafts both folders so package data needs no list. Then ``pip wheel`` builds it like
any project (in an isolated build environment). The version is the supervisor's
(``setup.cfg``), so a worker library and the supervisor it talks to can be pinned
together. The supervisor's own distribution still contains both packages
(docs/dependencies.md says why).
"""

from __future__ import annotations

import argparse
import configparser
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Final

ROOT: Final = Path(__file__).resolve().parent.parent
NAME: Final = "jobvisor-worker"
# The import packages the wheel carries, with their subpackages.
ROOTS: Final = ("jobvisor_worker", "protocol")
SKIP: Final = shutil.ignore_patterns("__pycache__", "*.pyc", "*.pyo")

PYPROJECT: Final = """\
[build-system]
requires = ["setuptools>=77"]  # SPDX license strings; wheels without the wheel package
build-backend = "setuptools.build_meta"

[project]
name = "{name}"
version = "{version}"
description = "The jobvisor worker library for Python and its wire protocol, without the supervisor"
readme = "README.md"
license = "MIT"
requires-python = ">=3.11"
dependencies = ["{msgpack}"]
classifiers = [
    "Programming Language :: Python :: 3",
    "Operating System :: POSIX :: Linux",
]

[tool.setuptools]
include-package-data = true

[tool.setuptools.packages.find]
include = ["jobvisor_worker", "jobvisor_worker.*", "protocol", "protocol.*"]
"""

MANIFEST: Final = """\
graft jobvisor_worker
graft protocol
global-exclude *.py[co]
prune **/__pycache__
"""

README: Final = """\
# jobvisor-worker

The Python worker library of jobvisor (`jobvisor_worker`) and the wire protocol it
speaks (`protocol`), for a worker's own virtual environment: it depends on `msgpack`
only. The supervisor is the `jobvisor` distribution, which contains these two packages
too: install one or the other in an environment, not both.
"""


def _setup_cfg() -> configparser.ConfigParser:
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    return config


def _msgpack_requirement(config: configparser.ConfigParser) -> str:
    """The supervisor's own ``msgpack`` pin: one place decides which versions work."""
    for line in config["options"]["install_requires"].splitlines():
        if line.strip().startswith("msgpack"):
            return line.strip()
    raise SystemExit("setup.cfg's install_requires has no msgpack line")


def package_folders(config: configparser.ConfigParser | None = None) -> dict[str, Path]:
    """Import package -> its folder in the repository, for ``ROOTS`` and every subpackage
    ``setup.cfg`` maps elsewhere (``jobvisor_worker.shell`` lives in ``wrappers/shell``):
    the supervisor's packaging is the one list of where each package lives."""
    config = config or _setup_cfg()
    mapped = {}
    for line in config["options"].get("package_dir", "").splitlines():
        name, sep, folder = line.partition("=")
        if sep:
            mapped[name.strip()] = ROOT / folder.strip()
    folders = {}
    for line in config["options"]["packages"].splitlines():
        name = line.strip()
        if name.split(".")[0] in ROOTS and (name in mapped or "." not in name):
            folders[name] = mapped.get(name, ROOT / name)
    return folders


def stage(into: Path) -> Path:
    """Write the slim project into ``into`` and return it."""
    config = _setup_cfg()
    # Parents before children, so that a mapped subpackage lands inside its parent's copy.
    for package, source in sorted(package_folders(config).items()):
        target = into.joinpath(*package.split("."))
        shutil.copytree(source, target, ignore=SKIP, dirs_exist_ok=True)
    (into / "pyproject.toml").write_text(
        PYPROJECT.format(
            name=NAME,
            version=config["metadata"]["version"],
            msgpack=_msgpack_requirement(config),
        )
    )
    (into / "MANIFEST.in").write_text(MANIFEST)
    (into / "README.md").write_text(README)
    return into


def build(out: Path) -> Path:
    """Build the wheel into ``out``; returns its path."""
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="jobvisor-worker-") as temp:
        project = stage(Path(temp) / "project")
        wheels = Path(temp) / "wheels"
        pip_wheel = [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps"]
        subprocess.run([*pip_wheel, "-w", str(wheels), str(project)], check=True)
        (wheel,) = wheels.glob("*.whl")
        target = out / wheel.name
        shutil.copyfile(wheel, target)
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "dist", help="where the wheel goes")
    args = parser.parse_args()
    print(build(args.out))  # the output is the path, for scripts


if __name__ == "__main__":
    main()
