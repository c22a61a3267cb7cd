"""``python -m jobvisor_worker.shell``: the helper ``job_init`` starts, or ``--path``.

Not meant to be run by hand: ``jobvisor-job.sh`` starts it as a co-process (see
docs/worker-shell.md). ``--path`` prints where ``jobvisor-job.sh`` is installed, for
worker-only installs that have no ``jobvisor`` command.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Sequence

from . import library_path
from .helper import run


def _signal(name: str) -> signal.Signals:
    upper = name.upper()
    try:
        return signal.Signals[upper if upper.startswith("SIG") else f"SIG{upper}"]
    except KeyError:
        message = f"{name!r} is not a signal name (TERM, INT, USR1, ...)"
        raise argparse.ArgumentTypeError(message) from None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m jobvisor_worker.shell",
        description="The co-process of jobvisor-job.sh (started by job_init), or --path.",
    )
    parser.add_argument("--path", action="store_true", help="print the path of jobvisor-job.sh")
    parser.add_argument(
        "--script-pid",
        type=int,
        default=os.getppid(),
        help="the script to serve and watch (default: the parent process)",
    )
    parser.add_argument(
        "--signal",
        type=_signal,
        default=signal.SIGTERM,
        help="sent to the script when the supervisor cancels the job (default: TERM)",
    )
    args = parser.parse_args(argv)
    if args.path:
        print(library_path())
        return 0
    return run(args.script_pid, args.signal)


if __name__ == "__main__":
    sys.exit(main())
