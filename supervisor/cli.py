"""The ``jobvisor`` command line (SPEC §10)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="jobvisor",
        description="Run jobs as external worker processes that survive supervisor restarts.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, text in [
        ("serve", "run the supervisor"),
        ("submit", "submit a job"),
        ("jobs", "list jobs"),
        ("show", "show one job"),
        ("cancel", "cancel a job"),
        ("logs", "show a job's log"),
    ]:
        sub.add_parser(name, help=text)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    print(f"jobvisor {args.command}: not implemented yet", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
