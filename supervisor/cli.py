"""The ``jobvisor`` command line (docs/cli.md).

Every command but ``serve`` talks to a running supervisor over HTTP: ``--url``, else
``JOBVISOR_URL``, else the ``http`` address of the config file, else the default. The
token comes from ``--token``, else ``JOBVISOR_AUTH_TOKEN``, else the config (its
``auth_token``, or the token the supervisor generated into its state folder).
The global options may come before or after the command.

Exit codes: 0 success (for ``submit --wait``/``--follow``: the job completed; for
``workflow start --follow``: the instance completed), 1 the job (or instance) failed,
2 bad usage or input, 3 the job (or instance) was cancelled, 4 the supervisor
could not be reached or refused the request, 5 bad configuration (or a store that
cannot be opened or written); Ctrl-C 130, except for ``watch``, which one leaves that way
(0). Live views (``submit --follow``, ``logs --follow``, ``watch``) are in
``supervisor/clilive.py``, rendering in ``supervisor/cliview.py``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import sys
import time
from collections import deque
from collections.abc import Sequence
from importlib import metadata
from typing import TYPE_CHECKING, Any, Final

from supervisor.client import TERMINAL, Client, ClientError
from supervisor.errors import JobvisorError
from supervisor.states import JobStatus

if TYPE_CHECKING:
    # Imported where used: rendering brings rich, which ``serve`` must not pay for.
    from supervisor.cliview import LogPrinter

JOB_STATUSES: Final = tuple(status.value for status in JobStatus)
# The API's largest page (docs/http-api.md): ``jobs`` with several statuses pages by it.
API_PAGE: Final = 1000

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_CANCELLED, EXIT_UNREACHABLE, EXIT_CONFIG = 0, 1, 2, 3, 4, 5
OUTCOME_EXIT = {"completed": EXIT_OK, "failed": EXIT_FAILED, "cancelled": EXIT_CANCELLED}


class UsageError(Exception):
    """Bad input on the command line that argparse cannot check (e.g. --data JSON): exit 2."""


def _global_options(*, suppress: bool) -> argparse.ArgumentParser:
    """The options every command takes. After the command (``suppress``) an option left
    out must not overwrite the value given before it, hence SUPPRESS as its default."""
    options = argparse.ArgumentParser(add_help=False)
    default = argparse.SUPPRESS if suppress else None
    options.add_argument(
        "--config",
        metavar="FILE",
        default=default,
        help="config file (default: ./jobvisor.toml)",
    )
    options.add_argument(
        "--url", default=default, help="supervisor URL (default: from JOBVISOR_URL or the config)"
    )
    options.add_argument(
        "--token",
        default=default,
        help="bearer token (default: JOBVISOR_AUTH_TOKEN, or the config's auth_token, "
        "or the token the supervisor generated in its state folder)",
    )
    return options


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="jobvisor",
        description="Run jobs as external worker processes that survive supervisor restarts.",
        epilog="Exit codes: 0 ok/completed, 1 job failed, 2 usage, 3 job cancelled, "
        "4 supervisor unreachable or request refused, 5 bad configuration or store.",
        parents=[_global_options(suppress=False)],
    )
    parser.add_argument("--version", action="version", version=f"jobvisor {_version()}")
    after = [_global_options(suppress=True)]
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def command(name: str, help: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=help, parents=after)

    serve = command("serve", "run the supervisor in the foreground")
    serve.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    serve.add_argument(
        "--http", metavar="HOST:PORT", help='override the config\'s http address ("" disables HTTP)'
    )

    submit = command("submit", "submit a job")
    submit.add_argument("name", help="job kind, a [jobs.NAME] of the config")
    submit.add_argument("--data", help="payload as JSON (default: {}, as over HTTP)")
    submit.add_argument("--max-attempts", type=int, help="override the kind's max_attempts")
    submit.add_argument("--run-at", help="start at this time (ISO 8601 or epoch seconds)")
    submit.add_argument("--wait", action="store_true", help="wait for the outcome")
    submit.add_argument(
        "--follow", action="store_true", help="show progress and logs until the outcome"
    )

    jobs = command("jobs", "list jobs, newest first")
    jobs.add_argument(
        "--status",
        action="append",
        metavar="S[,S...]",
        help="only jobs in these states (comma-separated or repeated): " + ", ".join(JOB_STATUSES),
    )
    jobs.add_argument("--name", help="only jobs of this kind")
    jobs.add_argument("--limit", type=int, default=50, help="at most this many (default 50)")
    jobs.add_argument("--offset", type=int, default=0, help="skip this many first (paging)")
    jobs.add_argument("--json", action="store_true", help="print JSON")

    show = command("show", "show one job as JSON")
    show.add_argument("id")

    cancel = command("cancel", "cancel a pending or running job")
    cancel.add_argument("id")
    cancel.add_argument("--reason", help="recorded as the job's error message")

    retry = command("retry", "run a failed or cancelled job again (same id)")
    retry.add_argument("id")
    retry.add_argument(
        "--max-attempts", type=int, help="attempts it may make now (default: its kind's)"
    )

    delete = command("delete", "delete a finished job and its log")
    delete.add_argument("id")

    logs = command("logs", "print a job's log")
    logs.add_argument("id")
    logs.add_argument("-f", "--follow", action="store_true", help="keep printing until it ends")
    logs.add_argument("-n", "--tail", type=int, metavar="N", help="only the last N lines")
    logs.add_argument(
        "--raw", action="store_true", help="the bytes as stored, without labels and alignment"
    )

    watch = command("watch", "a live table of running jobs, their progress and outcomes")
    watch.add_argument("--name", help="only jobs of this kind")
    watch.add_argument(
        "--until-idle",
        action="store_true",
        help="end once no job runs or waits to start (pending, or a retry's backoff)",
    )

    command("shell-lib", "print the path of jobvisor-job.sh, the bash worker library")

    flow = command("workflow", "start, show and list workflow instances")
    flow_sub = flow.add_subparsers(dest="workflow_command", metavar="SUBCOMMAND", required=True)
    flow_start = flow_sub.add_parser("start", help="start an instance", parents=after)
    flow_start.add_argument("name", help="a registered workflow")
    flow_start.add_argument("--input", help="the workflow input as JSON (default: {})")
    flow_start.add_argument(
        "--follow", action="store_true", help="show each step as it goes, then the outcome"
    )
    flow_show = flow_sub.add_parser("show", help="show one instance as JSON", parents=after)
    flow_show.add_argument("id")
    flow_list = flow_sub.add_parser("list", help="list instances, newest first", parents=after)
    flow_list.add_argument("--workflow", help="only instances of this workflow")
    flow_list.add_argument("--status", help="pending|running|completed|failed|cancelled")
    flow_list.add_argument("--limit", type=int, default=50)
    flow_list.add_argument("--json", action="store_true", help="print JSON")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    try:
        if args.command == "serve":
            return _serve(args)
        if args.command == "shell-lib":
            return _shell_lib()
        client = _client(args)
        code = int(COMMANDS[args.command](client, args))
        sys.stdout.flush()  # here, where a closed pipe is caught, not at interpreter exit
        return code
    except UsageError as exc:
        print(f"jobvisor: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except JobvisorError as exc:  # bad config, or a store it cannot open or write
        print(f"jobvisor: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except ClientError as exc:
        print(f"jobvisor: {exc}", file=sys.stderr)
        return EXIT_UNREACHABLE if exc.status == 0 or exc.status >= 500 else EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (``jobvisor show ID | head``): what it wanted it has.
        # Point stdout at /dev/null so the interpreter's final flush cannot fail again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return EXIT_OK


def _settings(args: argparse.Namespace) -> Any:
    from supervisor.config import load_config  # noqa: PLC0415 - keep client commands light

    return load_config(args.config)


def _client(args: argparse.Namespace) -> Client:
    url = args.url or os.environ.get("JOBVISOR_URL")
    token = args.token or os.environ.get("JOBVISOR_AUTH_TOKEN")
    if url and token:
        return Client(url, token)
    return Client.for_config(_settings(args), url=url, token=token)


def _serve(args: argparse.Namespace) -> int:
    from supervisor.serve import run  # noqa: PLC0415

    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    from supervisor.config import override_http  # noqa: PLC0415

    settings = _settings(args)
    if args.http is not None:
        settings = override_http(settings, args.http)
    return run(settings)


def _shell_lib() -> int:
    # Imported by name: the package is wrappers/shell, reached through the symlink
    # jobvisor_worker/shell (setup.cfg); mypy checks that folder on its own.
    shell = importlib.import_module("jobvisor_worker.shell")
    print(shell.library_path())
    return EXIT_OK


def _parse_json(text: str, option: str = "--data") -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        # Not SystemExit(message): that exits 1, the code for "the job failed".
        raise UsageError(f"{option} is not valid JSON: {exc}") from None


def cmd_submit(client: Client, args: argparse.Namespace) -> int:
    options: dict[str, Any] = {}
    if args.data is not None:  # without --data the server's default applies, as over HTTP
        options["data"] = _parse_json(args.data)
    run_at: float | str | None = args.run_at
    if run_at is not None:
        try:
            run_at = float(run_at)
        except ValueError:
            pass
    if args.follow:
        # The stream position before the job exists: none of its events can be missed.
        position = client.event_position()
    job_id = client.submit(args.name, **options, max_attempts=args.max_attempts, run_at=run_at)
    if not (args.wait or args.follow):
        print(job_id)
        return EXIT_OK
    print(job_id, file=sys.stderr)
    if args.follow:
        from supervisor import cliview  # noqa: PLC0415 - rich, not for serve
        from supervisor.clilive import JobFollower  # noqa: PLC0415

        screen = cliview.stderr()
        job = JobFollower(client, job_id, position, cliview.LogPrinter(screen), screen).run()
    else:
        job = client.wait(job_id)
    print(json.dumps(job["result"] if job["status"] == "completed" else job["error"], indent=2))
    return OUTCOME_EXIT.get(job["status"], EXIT_FAILED)


def cmd_jobs(client: Client, args: argparse.Namespace) -> int:
    statuses = _statuses(args.status)
    if args.limit < 1:
        raise UsageError(f"--limit must be at least 1, got {args.limit}")
    if args.offset < 0:
        raise UsageError(f"--offset must be 0 or more, got {args.offset}")
    if len(statuses) <= 1:
        status = statuses[0] if statuses else None
        jobs = _page(client, args.name, status, args.offset, args.limit)
    else:
        # The API filters by one status: take the first offset+limit of each, newest
        # first, and merge them (each list is newest first, so their union's first
        # offset+limit are among them).
        wanted = args.offset + args.limit
        merged = [job for s in statuses for job in _page(client, args.name, s, 0, wanted)]
        merged.sort(key=lambda job: job["created_at"] or "", reverse=True)
        jobs = merged[args.offset : wanted]
    if args.json:
        print(json.dumps(jobs, indent=2))
        return EXIT_OK
    from supervisor import cliview  # noqa: PLC0415 - rich, not for serve

    cliview.jobs_table(cliview.stdout(), jobs)
    return EXIT_OK


def _statuses(given: list[str] | None) -> list[str]:
    """``--status failed,cancelled --status running`` as a list without repeats."""
    statuses: list[str] = []
    for part in (p.strip() for value in given or () for p in value.split(",")):
        if part not in JOB_STATUSES:
            raise UsageError(
                f"--status: unknown status {part!r} (one of: {', '.join(JOB_STATUSES)})"
            )
        if part not in statuses:
            statuses.append(part)
    return statuses


def _page(
    client: Client, name: str | None, status: str | None, offset: int, count: int
) -> list[dict[str, Any]]:
    """``count`` jobs from ``offset``, in as many requests as the API's page size needs."""
    jobs: list[dict[str, Any]] = []
    while len(jobs) < count:
        limit = min(API_PAGE, count - len(jobs))
        page = client.list(name=name, status=status, limit=limit, offset=offset + len(jobs))
        jobs += page
        if len(page) < limit:
            break
    return jobs


def cmd_show(client: Client, args: argparse.Namespace) -> int:
    print(json.dumps(client.get(args.id), indent=2))
    return EXIT_OK


def cmd_cancel(client: Client, args: argparse.Namespace) -> int:
    job = client.cancel(args.id, args.reason)
    print(f"{job['id']} {job['status']}")
    return EXIT_OK


def cmd_retry(client: Client, args: argparse.Namespace) -> int:
    job = client.retry(args.id, args.max_attempts)
    print(f"{job['id']} {job['status']}")
    return EXIT_OK


def cmd_delete(client: Client, args: argparse.Namespace) -> int:
    deleted = client.delete(args.id)
    print(f"{deleted['deleted']} deleted")
    return EXIT_OK


def cmd_logs(client: Client, args: argparse.Namespace) -> int:
    if args.tail is not None and args.tail < 0:
        raise UsageError(f"--tail must be 0 or more, got {args.tail}")
    from supervisor import cliview  # noqa: PLC0415 - rich, not for serve

    printer = cliview.LogPrinter(cliview.stdout(), raw=args.raw)
    position = client.event_position() if args.follow else ""
    job = client.get(args.id)  # an unknown id is refused here, before any output
    following = args.follow and job["status"] not in TERMINAL
    offset = _print_log(client, args.id, printer, args.tail, following=following)
    if following:
        from supervisor.clilive import JobFollower  # noqa: PLC0415

        JobFollower(client, args.id, position, printer, offset=offset).run()
    else:
        printer.flush()
    return EXIT_OK


def _print_log(
    client: Client,
    job_id: str,
    printer: LogPrinter,
    tail: int | None,
    *,
    following: bool,
) -> int:
    """Print the job's log as it is now (its last ``tail`` lines); return the offset
    after what was printed. A partial last line is left for the follower, if any."""
    offset = 0
    kept: deque[bytes] | None = None if tail is None else deque(maxlen=tail)
    partial = b""
    while (read := client.logs(job_id, offset)).data:
        offset = read.offset
        if kept is None:
            printer.feed(read.data)
            continue
        # Whole lines only into the window; the log is read once, start to end.
        lines = (partial + read.data).split(b"\n")
        partial = lines.pop()
        kept.extend(line + b"\n" for line in lines)
    if kept is not None:
        if following:
            offset -= len(partial)  # the follower reads it again, whole
        elif tail and partial:
            kept.append(partial)
        printer.feed(b"".join(kept))
    return offset


def cmd_watch(client: Client, args: argparse.Namespace) -> int:
    from supervisor import cliview  # noqa: PLC0415 - rich, not for serve
    from supervisor.clilive import Watch  # noqa: PLC0415

    try:
        return Watch(client, cliview.stdout(), name=args.name, until_idle=args.until_idle).run()
    except KeyboardInterrupt:  # how one leaves a watch: not an error
        return EXIT_OK


def _version() -> str:
    try:
        return metadata.version("jobvisor")
    except metadata.PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown (not installed)"


# --- workflow --------------------------------------------------------------------------


def cmd_workflow(client: Client, args: argparse.Namespace) -> int:
    return WORKFLOW_COMMANDS[args.workflow_command](client, args)


def cmd_workflow_start(client: Client, args: argparse.Namespace) -> int:
    options: dict[str, Any] = {}
    if args.input is not None:  # without --input the server's default applies, as over HTTP
        options["input"] = _parse_json(args.input, "--input")
    instance_id = client.start_workflow(args.name, **options)
    if not args.follow:
        print(instance_id)
        return EXIT_OK
    print(instance_id, file=sys.stderr)
    instance = _follow_instance(client, instance_id)
    shown = instance["output"] if instance["status"] == "completed" else instance["error"]
    print(json.dumps(shown, indent=2))
    return OUTCOME_EXIT.get(instance["status"], EXIT_FAILED)


def _step_lines(instance: dict[str, Any], prefix: str = "") -> dict[str, str]:
    """``{step key: line}`` for every step of ``instance`` and of its branches; a line
    changes when the step's status (or attempt) does."""
    lines: dict[str, str] = {}
    for name, step in (instance.get("steps") or {}).items():
        key = f"{prefix}{name}"
        status = step.get("status")
        line = f"step {key} {status}"
        if status in ("running", "waiting_retry") and (step.get("attempts") or 0) > 1:
            line += f" (attempt {step['attempts']})"
        error = step.get("error")
        if status == "failed" and isinstance(error, dict) and error.get("message"):
            line += f": {error['message']}"
        lines[key] = line
        for branch in step.get("branches") or ():
            lines.update(_step_lines(branch, f"{key}[{branch.get('branch')}]."))
    return lines


def _follow_instance(client: Client, instance_id: str, *, interval: float = 0.25) -> dict[str, Any]:
    """Print each step as it starts, completes or fails until the instance ends; return
    its final JSON."""
    shown: dict[str, str] = {}
    while True:
        instance = client.instance(instance_id)
        for key, line in _step_lines(instance).items():
            if shown.get(key) != line:
                print(line, file=sys.stderr, flush=True)
                shown[key] = line
        if instance["status"] in TERMINAL:
            print(f"workflow {instance['workflow']} {instance['status']}", file=sys.stderr)
            return instance
        time.sleep(interval)


def cmd_workflow_show(client: Client, args: argparse.Namespace) -> int:
    print(json.dumps(client.instance(args.id), indent=2))
    return EXIT_OK


def cmd_workflow_list(client: Client, args: argparse.Namespace) -> int:
    if args.limit < 1:
        raise UsageError(f"--limit must be at least 1, got {args.limit}")
    instances = client.instances(args.workflow, args.status, limit=args.limit)
    if args.json:
        print(json.dumps(instances, indent=2))
        return EXIT_OK
    print(f"{'ID':<20}  {'WORKFLOW':<20}  {'STATUS':<9}  {'STEP':<16}  CREATED")
    for instance in instances:
        step = instance["current_step"] or ""
        print(
            f"{instance['id']:<20}  {instance['workflow'][:20]:<20}  {instance['status']:<9}  "
            f"{step[:16]:<16}  {instance['created_at']}"
        )
    return EXIT_OK


WORKFLOW_COMMANDS = {
    "start": cmd_workflow_start,
    "show": cmd_workflow_show,
    "list": cmd_workflow_list,
}

COMMANDS = {
    "submit": cmd_submit,
    "jobs": cmd_jobs,
    "show": cmd_show,
    "cancel": cmd_cancel,
    "retry": cmd_retry,
    "delete": cmd_delete,
    "logs": cmd_logs,
    "watch": cmd_watch,
    "workflow": cmd_workflow,
}
