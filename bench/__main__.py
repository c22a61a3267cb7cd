"""``python -m bench [--quick] [--json FILE] [--only SECTION,...]``: run, print, write JSON.

Sections run one after another, each isolated: an exception is recorded as that section's
``error`` (and the run exits 1) instead of ending the run. Whatever happens, every
process the run started is killed and its temp folders removed.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import (
    busyworker,
    overhead,
    reconnect,
    report,
    rss,
    startup,
    store,
    throughput,
    workerimport,
    workflow,
)
from bench.harness import Run
from bench.machine import machine, mount_of, settle

SECTIONS: dict[str, Callable[[Run], dict[str, Any]]] = {
    "reconnect": reconnect.run,
    "throughput": throughput.run,
    "overhead": overhead.run,
    "store": store.run,
    "rss": rss.run,
    "workflow": workflow.run,
    "startup": startup.run,
    "worker-import": workerimport.run,
    "busy-worker": busyworker.run,
}
DEFAULT_JSON = Path(__file__).parent / "results" / "latest.json"


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "--quick", action="store_true", help="small N and short windows (a CI smoke run)"
    )
    parser.add_argument(
        "--json", type=Path, default=DEFAULT_JSON, help=f"where to write JSON ({DEFAULT_JSON})"
    )
    parser.add_argument(
        "--only", default="", help=f"comma-separated subset of: {', '.join(SECTIONS)}"
    )
    parser.add_argument(
        "--socket-base",
        default="/tmp",
        help="where the short socket folders are made (default /tmp; e.g. /dev/shm for tmpfs)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    args = parser.parse_args(argv)
    named = dict.fromkeys(s.strip() for s in args.only.split(",") if s.strip())  # each once
    args.sections = list(named) or list(SECTIONS)
    unknown = set(args.sections) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown section(s): {', '.join(sorted(unknown))}")
    return args


def run_section(name: str, bench: Run) -> dict[str, Any]:
    began = time.monotonic()
    try:
        result = SECTIONS[name](bench)
    except Exception as exc:
        traceback.print_exc()
        result = {"error": f"{type(exc).__name__}: {exc}"}
    result.setdefault("error", None)
    result["machine"] = machine()
    result["seconds"] = round(time.monotonic() - began, 1)
    return result


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    mode = "quick" if args.quick else "full"
    began = time.monotonic()
    results: dict[str, Any] = {}
    bench = Run(quick=args.quick, verbose=not args.quiet, socket_base=args.socket_base)
    try:
        for name in args.sections:
            settled = settle()  # what the previous section left the kernel doing is not ours
            bench.say(f"section {name} (machine settled after {settled:.1f} s)")
            results[name] = run_section(name, bench)
            results[name]["settled_s"] = round(settled, 1)
            bench.say(f"section {name} done in {results[name]['seconds']} s")
    finally:
        bench.cleanup()
    results["meta"] = {
        "mode": mode,
        "sections": args.sections,
        "seconds": round(time.monotonic() - began, 1),
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": machine(),
        "socket_folder_fs": mount_of(args.socket_base),
        "command": " ".join(["python -m bench", *argv]),
    }
    print(report.table(results, mode))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(f"JSON written to {args.json}")
    failed = [name for name in args.sections if results[name].get("error")]
    if failed:
        print(f"sections with errors: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
