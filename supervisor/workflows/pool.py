"""The warm pool: step workers started ahead of time, each serving jobs in turn.

Theory of operation (docs/workflows.md, "Where code runs"). A ``WarmPool`` serves one
job kind whose command is the pool worker (``python -m supervisor.workflows.poolworker
--path ... --import ...``). Installed on the runner (``install``), it becomes that
kind's ``ProcessSource`` (``supervisor/ports.py``): instead of spawning a worker, the
runner asks the pool to ``start`` one.

* The pool keeps ``size`` workers started with the kind's command, cwd and environment,
  each in its own session, its stdout/stderr in the pool's log
  (``logs/pool-<kind>.log``), its stdin a pipe whose write end only the supervisor
  holds (``procs.spawn_waiting``). A worker imports the workflow modules, then waits on
  that pipe.
* ``take`` hands an attempt to the first idle worker (a released one, else the oldest):
  one JSON line with the job's ``JOBVISOR_*`` environment (the token included: it
  crosses only this private pipe), the job's log path and the entry function. The
  line is written after the loop iteration that records the worker's PID commits; the
  pipe stays open for the next line: a supervisor killed in between leaves a worker
  that was never assigned (it sees end-of-file and exits) and a job whose worker
  recovery can find by its stored PID or declare lost; never a step running that the
  store cannot name. A replacement is started ``REFILL_DELAY`` later if still needed: a
  worker taken less than ``REFILL_DELAY`` ago counts as coming back (short steps release
  it any moment), one busy for longer as away.
  With no idle worker, one is spawned cold and handed the same line the same way:
  slower, otherwise the same.
* ``release`` (``ProcessSource.release``): the runner hands back a busy worker whose
  outcome is committed and acked and which hung up alive; it waits again, first in
  line, watched through its pidfd. Beyond ``size`` idle, the newest unused one is let
  go (pipe closed, reaped here). ``forget``: a busy worker exited or was killed (the
  runner's cancel, timeout, silence kills are unchanged): its pipe is closed and the
  pool refills.
* The returned ``ProcessHandle`` (pidfd, start time, own process group) is the
  runner's until it is released: watch, watchdog, timeout, cancel, restart adoption
  are those of any worker. The pool stops watching it meanwhile.
* An idle worker that exits (its pidfd becomes readable) is discarded and replaced;
  repeated deaths back off (a broken command must not become a fork loop).
* ``close`` closes every worker's pipe: idle ones read end-of-file and exit, busy ones
  after their step. When the supervisor dies, the kernel closes the pipes for it, with
  the same effect; a busy worker finishes its step (re-attaching like any worker),
  then reads end-of-file and exits.

Everything here runs on the supervisor's loop thread, except ``close`` after the loop
has stopped.
"""

from __future__ import annotations

import logging
import os
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from supervisor import joblogs
from supervisor.errors import ConfigError, UnknownJobKind
from supervisor.procs import ProcessHandle, describe_exit, spawn_waiting
from supervisor.workflows.poolworker import Assignment, check_entry

if TYPE_CHECKING:
    from supervisor.loop import Loop
    from supervisor.records import JobKind
    from supervisor.runner import Runner

log = logging.getLogger(__name__)

# Replacing a worker handed a job waits this long: a worker done with its job often
# comes back (``release``) first, and then no new interpreter is needed.
REFILL_DELAY = 0.2
# Replacing workers that die while idle: the first at once, then backing off.
FIRST_BACKOFF = 0.1
MAX_BACKOFF = 30.0


@dataclass(slots=True, eq=False)
class _Waiting:
    """A started worker that has no job yet."""

    handle: ProcessHandle
    pipe: int  # write end of its stdin
    argv: tuple[str, ...]
    cwd: str | None
    env: dict[str, str]  # what it started with
    taken_at: float = 0.0  # the loop clock's monotonic time it was handed a job


class WarmPool:
    """Keeps ``size`` step workers of one job kind started and waiting (module docstring).

    ``size=None`` takes the supervisor's ``workflow_pool_size``; 0 means every worker
    is spawned cold (still through the pipe: the token never goes in an environment).
    """

    def __init__(self, entry: str, *, size: int | None = None) -> None:
        try:
            self.entry = check_entry(entry)
        except ValueError as exc:
            raise ConfigError(f"warm pool: {exc}") from None
        if size is not None and size < 0:
            raise ConfigError(f"warm pool for entry {entry!r}: size must be >= 0, got {size}")
        self._size = size
        self._runner: Runner | None = None
        self.kind_name = ""
        self._idle: deque[_Waiting] = deque()
        # Workers handed a job, by PID: their pipe stays open for the next assignment.
        self._busy: dict[int, _Waiting] = {}
        self._log_fd: int | None = None
        self._deaths = 0  # idle workers that died in a row: the replacement backs off
        self._closed = False
        self.warm_starts = 0  # attempts handed to a waiting worker
        self.cold_starts = 0  # attempts that found none and spawned one
        self.idle_deaths = 0  # waiting workers that exited without a job
        self.reuses = 0  # workers handed back by the runner after a job, kept idle

    # --- set-up -----------------------------------------------------------------------------

    def install(self, runner: Runner, kind_name: str) -> None:
        """Become the process source of ``kind_name`` and start filling (loop thread)."""
        if kind_name not in runner.sup.kinds:
            known = ", ".join(sorted(runner.sup.kinds)) or "none"
            raise UnknownJobKind(
                f"warm pool: no job kind named {kind_name!r} to serve (registered: {known})"
            )
        self._runner = runner
        self.kind_name = kind_name
        runner.sources[kind_name] = self
        self._loop.call_soon(self._refill)

    @property
    def size(self) -> int:
        if self._size is not None:
            return self._size
        return self._runner.settings.workflow_pool_size if self._runner is not None else 0

    @property
    def log_path(self) -> Path:
        """Where waiting workers write (the state's ``logs/`` folder)."""
        return self._settings_log_dir / f"pool-{self.kind_name}.log"

    def idle_pids(self) -> list[int]:
        """The PIDs of the workers waiting now, oldest first."""
        return [w.handle.pid for w in self._idle]

    @property
    def _loop(self) -> Loop:
        assert self._runner is not None, "the pool is not installed"
        return self._runner.loop

    @property
    def _settings_log_dir(self) -> Path:
        assert self._runner is not None, "the pool is not installed"
        return self._runner.settings.log_dir

    def _kind(self) -> JobKind | None:
        assert self._runner is not None
        return self._runner.sup.kinds.get(self.kind_name)

    # --- handing out workers ----------------------------------------------------------------

    def start(
        self, argv: Sequence[str], cwd: str | None, env: Mapping[str, str], log_path: Path
    ) -> ProcessHandle:
        """``ProcessSource.start``: the runner's way in; see ``take``."""
        return self.take(argv, cwd, env, log_path)

    def take(
        self, argv: Sequence[str], cwd: str | None, env: Mapping[str, str], log_path: Path
    ) -> ProcessHandle:
        """A worker for one attempt: a waiting one if any (the oldest whose command and
        cwd are ``argv`` and ``cwd``), else one spawned now. It is handed its assignment
        (``env``, ``log_path``, the entry) after this loop iteration commits. Raises
        ``OSError`` when no worker can be started."""
        worker = self._pop_waiting(tuple(argv), cwd)
        if worker is None:
            worker = self._spawn(tuple(argv), cwd, self._worker_env())
            self.cold_starts += 1
        else:
            self.warm_starts += 1
            self._deaths = 0
        assigned = {k: v for k, v in env.items() if worker.env.get(k) != v}
        line = Assignment(env=assigned, log=str(log_path), entry=self.entry).encode()
        worker.taken_at = self._loop.clock.monotonic()
        self._busy[worker.handle.pid] = worker
        self._loop.after_commit(lambda: self._hand_over(worker, line))
        # A moment later: by then a worker done with its job has often come back.
        fill = ("pool-fill", self.kind_name)
        if fill not in self._loop.timers:  # not pushed back by every take: it does fire
            self._loop.call_later(fill, REFILL_DELAY, self._refill)
        return worker.handle

    def release(self, proc: ProcessHandle) -> bool:
        """``ProcessSource.release``: a worker of ours, alive and done with its job,
        waits again, first in line for the next ``take`` (its own pidfd watched for its
        death). Beyond ``size`` idle workers, or once closed, it is let go instead (its
        pipe closed: it exits, and is reaped here). ``False`` for a process this pool
        did not hand out (e.g. one adopted after a restart: it exits by itself)."""
        worker = self._busy.get(proc.pid)
        if worker is None or worker.handle.start_time != proc.start_time:
            return False
        del self._busy[proc.pid]
        worker.handle = proc
        if self._closed or self.size == 0:
            self._let_go(worker)
            return True
        self.reuses += 1
        self._idle.appendleft(worker)
        self._watch(worker)
        while len(self._idle) > self.size:  # too many waiting: the newest, unused, goes
            extra = self._idle.pop()
            self._unwatch(extra)
            self._let_go(extra)
        return True

    def forget(self, proc: ProcessHandle) -> None:
        """``ProcessSource.forget``: a busy worker exited or was killed; close its pipe
        and start a replacement."""
        worker = self._busy.get(proc.pid)
        if worker is None or worker.handle.start_time != proc.start_time:
            return
        del self._busy[proc.pid]
        self._close_pipe(worker)
        if self._runner is not None and not self._closed:
            self._loop.call_soon(self._refill)

    def _pop_waiting(self, argv: tuple[str, ...], cwd: str | None) -> _Waiting | None:
        while self._idle:
            worker = self._idle.popleft()
            self._unwatch(worker)
            if worker.argv == argv and worker.cwd == cwd and not worker.handle.poll():
                return worker
            self._discard(worker)  # dead, or started for a kind since changed
        return None

    def _worker_env(self) -> dict[str, str]:
        """What a worker starts with: the supervisor's environment and the kind's, as
        the runner's spawn would give it, but none of the job's (that comes through
        the pipe)."""
        kind = self._kind()
        return {**os.environ, **(kind.env if kind is not None else {})}

    def _hand_over(self, worker: _Waiting, line: bytes) -> None:
        try:
            written = os.write(worker.pipe, line)
            if written != len(line):  # a full 64 KiB pipe: not a line we would write
                log.error(
                    "warm pool %s: assignment to worker %d cut short (%d of %d bytes)",
                    self.kind_name,
                    worker.handle.pid,
                    written,
                    len(line),
                )
                self._busy.pop(worker.handle.pid, None)
                self._close_pipe(worker)  # it reads a broken line, then end-of-file
        except OSError as exc:  # it died meanwhile: the runner sees its exit
            log.warning(
                "warm pool %s: cannot hand worker %d its job: %s",
                self.kind_name,
                worker.handle.pid,
                exc,
            )
            self._busy.pop(worker.handle.pid, None)
            self._close_pipe(worker)

    # --- keeping the pool full --------------------------------------------------------------

    def _refill(self) -> None:
        if self._closed or self._runner is None:
            return
        kind = self._kind()
        if kind is None:
            return
        argv = (kind.command, *kind.args)
        target, recheck = self._idle_target()
        if recheck is not None:  # a worker counted as coming back may not: look again then
            self._loop.call_later(("pool-fill", self.kind_name), recheck, self._refill)
        while len(self._idle) < target:
            try:
                worker = self._spawn(argv, kind.cwd, self._worker_env())
            except OSError as exc:
                log.error("warm pool %s: cannot start a worker %r: %s", self.kind_name, argv, exc)
                self._deaths += 1
                self._refill_later()
                return
            self._idle.append(worker)
            self._watch(worker)

    def _idle_target(self) -> tuple[int, float | None]:
        """How many should wait, and in how many seconds to look again.

        ``size``, less the workers taken within the last ``REFILL_DELAY``, whose short
        steps bring them back any moment (in a chain of short steps one is always busy:
        without this, each refill started an interpreter that the returning worker then
        made surplus). A worker busy for longer counts as away, and is replaced as before:
        the second value is when the oldest worker counted as coming back would count as
        away (None: no need to look again)."""
        now = self._loop.clock.monotonic()
        # A microsecond short of the delay: the look again scheduled at ``recheck`` must
        # find the worker away, whatever the rounding of the clock's sums.
        recent = [w.taken_at for w in self._busy.values() if now - w.taken_at < REFILL_DELAY - 1e-6]
        target = max(self.size - len(recent), 0)
        recheck = REFILL_DELAY - (now - min(recent)) if recent and target < self.size else None
        return target, recheck

    def _refill_later(self) -> None:
        delay = min(MAX_BACKOFF, FIRST_BACKOFF * 2 ** max(0, self._deaths - 1))
        self._loop.call_later(("pool-refill", self.kind_name), delay, self._refill)

    def _spawn(self, argv: tuple[str, ...], cwd: str | None, env: dict[str, str]) -> _Waiting:
        if self._log_fd is None:
            self._log_fd = joblogs.open_log(self.log_path)
        handle, pipe = spawn_waiting(argv, cwd=cwd, env=env, log_fd=self._log_fd)
        return _Waiting(handle, pipe, argv, cwd, env)

    def _watch(self, worker: _Waiting) -> None:
        pidfd = worker.handle.pidfd
        if pidfd is not None:  # without pidfds, ``take`` polls before handing out
            self._loop.add_reader(pidfd, lambda _mask: self._exited_idle(worker))

    def _unwatch(self, worker: _Waiting) -> None:
        if worker.handle.pidfd is not None:
            self._loop.remove(worker.handle.pidfd)

    def _exited_idle(self, worker: _Waiting) -> None:
        if worker not in self._idle or not worker.handle.poll():
            return
        self._idle.remove(worker)
        self._unwatch(worker)
        self.idle_deaths += 1
        self._deaths += 1
        log.warning(
            "warm pool %s: waiting worker %d %s (see %s); replacing it",
            self.kind_name,
            worker.handle.pid,
            describe_exit(worker.handle.returncode),
            self.log_path,
        )
        self._discard(worker)
        self._refill_later()

    def _discard(self, worker: _Waiting) -> None:
        """Let a worker go: closing its pipe makes a live one exit (end-of-file)."""
        worker.handle.close()
        self._close_pipe(worker)

    def _close_pipe(self, worker: _Waiting) -> None:
        if worker.pipe >= 0:
            try:
                os.close(worker.pipe)
            except OSError:
                pass
            worker.pipe = -1

    def _let_go(self, worker: _Waiting) -> None:
        """A live worker we do not keep: close its pipe (it exits) and reap it."""
        self._close_pipe(worker)
        pidfd = worker.handle.pidfd
        if pidfd is None or self._runner is None:
            worker.handle.close()
            return

        def reap(_mask: int) -> None:
            if worker.handle.poll():
                self._loop.remove(pidfd)
                worker.handle.close()

        self._loop.add_reader(pidfd, reap)

    # --- the end ----------------------------------------------------------------------------

    def close(self) -> None:
        """Stop refilling and let every waiting worker go (they exit on end-of-file).
        Workers already handed a job are the runner's and carry on."""
        self._closed = True
        if self._runner is not None:
            self._loop.cancel_timer(("pool-refill", self.kind_name))
            self._loop.cancel_timer(("pool-fill", self.kind_name))
            if self._runner.sources.get(self.kind_name) is self:
                del self._runner.sources[self.kind_name]
        while self._idle:
            worker = self._idle.popleft()
            if self._runner is not None:
                self._unwatch(worker)
            self._discard(worker)
        for worker in self._busy.values():  # they finish their job, then exit
            self._close_pipe(worker)
        self._busy.clear()
        if self._log_fd is not None:
            os.close(self._log_fd)
            self._log_fd = None
