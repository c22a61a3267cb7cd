"""``jobvisor serve``: run a supervisor in the foreground until SIGTERM or Ctrl-C.

Stopping is graceful: state is flushed, listeners are closed, and workers are left
running; they re-attach to the next supervisor that starts on the same state
(docs/restarts.md). To stop the workers as well, cancel their jobs first
(``jobvisor cancel ID``), or signal their process groups yourself. SIGHUP is logged and
ignored: configuration reload does not exist yet, and the signal's default action
would end the supervisor without a word.

Only one supervisor runs on a state: ``Supervisor.open`` takes the state lock
(``supervisor/statelock.py``) before anything else, so a second ``serve`` on the same
state, store or socket folder exits 5 naming the first one's PID.
"""

from __future__ import annotations

import logging
import resource
import signal
import sys
import threading
from types import FrameType
from typing import TextIO

from supervisor.config import Settings
from supervisor.core import Supervisor
from supervisor.errors import ConfigError
from supervisor.http.server import HttpServer
from supervisor.workflows.engine import WorkflowEngine
from supervisor.workflows.service import attach, prepare

log = logging.getLogger(__name__)


def raise_fd_limit() -> int:
    """Use the whole RLIMIT_NOFILE allowance: each connected job costs a descriptor or two."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            return hard
        except (ValueError, OSError):
            return soft
    return soft


def on_hangup(signum: int, frame: FrameType | None) -> None:
    log.warning("SIGHUP: configuration reload is not supported yet; ignored (still serving)")


def listening_line(http: HttpServer | None) -> str:
    """``jobvisor listening on URL``, then the URL to open in a browser (with the token):
    scripts read the first URL, so it stays first and ends at the first space."""
    if http is None:
        return "jobvisor listening on (HTTP disabled)"
    return f"jobvisor listening on {http.url} (open {http.browser_url})"


def run(settings: Settings, *, out: TextIO = sys.stdout) -> int:
    limit = raise_fd_limit()
    log.info("file descriptor limit %d", limit)
    sup = Supervisor(settings)
    prepare(sup)  # the workflows and their step kind, before recovery meets their workers
    sup.open()
    http = None
    engine: WorkflowEngine | None = None
    try:
        engine = attach(sup)  # the workflows, their step pool, the instances to resume
        if settings.http_host is not None:
            try:
                http = HttpServer(sup, settings.http_host, settings.http_port)
            except OSError as exc:
                raise ConfigError(
                    f"{settings.source}: http: cannot listen on "
                    f"{settings.http_host}:{settings.http_port}: {exc.strerror or exc}"
                ) from None
        stop_signals = (signal.SIGTERM, signal.SIGINT)
        if threading.current_thread() is threading.main_thread():
            sup.loop.install_signal_wakeup()

            def on_signal(signum: int, frame: FrameType | None) -> None:
                log.info(
                    "received %s: stopping (workers keep running)", signal.Signals(signum).name
                )
                sup.loop.stop()

            for sig in stop_signals:
                signal.signal(sig, on_signal)
            # SIGHUP's default action ends the process without a word; a service manager
            # sends it to ask for a reload. Until reloading exists, say so and carry on.
            signal.signal(signal.SIGHUP, on_hangup)
        print(listening_line(http), file=out, flush=True)
        sup.serve_forever()
    finally:
        if http is not None:
            http.close()
        try:
            sup.close()
        finally:
            if engine is not None:
                engine.close()  # the pool's waiting workers exit; running steps carry on
    return 0
