"""Build the trivial C worker (``trivial_worker.c``) once per source version.

The binary goes to ``bench/build/trivial_worker-<sha256 of the source, 12 hex>``, so an
edited source is rebuilt and an unchanged one is reused. Without gcc (or when it fails)
the overhead section falls back to ``workers/trivial.py`` and says so.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
SOURCE = HERE / "trivial_worker.c"
BUILD = HERE / "build"
FALLBACK = HERE / "workers" / "trivial.py"


@dataclass(frozen=True)
class Worker:
    command: str
    args: tuple[str, ...]
    description: str
    compiled: bool
    note: str = ""

    def argv(self, *extra: str) -> list[str]:
        return [self.command, *self.args, *extra]


def build() -> Worker:
    """The trivial worker to use: the compiled C binary, else the Python fallback."""
    digest = hashlib.sha256(SOURCE.read_bytes()).hexdigest()[:12]
    binary = BUILD / f"trivial_worker-{digest}"
    if binary.exists():
        return Worker(str(binary), (), "C (gcc -O2), cached build", compiled=True)
    gcc = shutil.which("gcc") or shutil.which("cc")
    note = "gcc not found"
    if gcc is not None:
        BUILD.mkdir(exist_ok=True)
        partial = binary.with_suffix(f".tmp{os.getpid()}")
        result = subprocess.run(
            [gcc, "-O2", "-Wall", "-o", str(partial), str(SOURCE)],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode == 0:
            partial.replace(binary)  # atomic: a concurrent run never runs half a file
            return Worker(str(binary), (), "C (gcc -O2), built now", compiled=True)
        partial.unlink(missing_ok=True)
        note = f"gcc failed: {result.stderr.strip()[:300]}"
    return Worker(
        sys.executable,
        (str(FALLBACK),),
        "Python fallback (workers/trivial.py): C build unavailable",
        compiled=False,
        note=note,
    )
