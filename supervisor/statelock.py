"""One supervisor per state: lock files held for the supervisor's whole life.

Theory of operation. Two supervisors on one store would both run recovery: each adopts
the other's live workers, declares them lost and starts their next attempt. So before
``Supervisor.open`` touches anything (store, logs, sockets, recovery) it takes an
exclusive ``flock`` on one lock file per shared resource:

* ``<state_dir>/supervisor.lock`` - the state folder (logs, the HTTP token);
* ``<db_path>.lock`` - the SQLite store, wherever ``db_path`` points, so that two
  configs with different state folders but one database are refused too;
* ``<job socket folder>/supervisor.lock`` - the per-job sockets (Unix transport), which
  a second supervisor would otherwise clean as stale.

Kernel facts this relies on (Linux): a ``flock`` belongs to the open file description,
so it is released when the last descriptor on it closes - by ``close``, by exit, or by
the kernel on ``kill -9``; a stale lock file is therefore harmless and never deleted
(deleting it would let two processes lock two different files of one name). The
descriptor is close-on-exec: a worker, which outlives the supervisor on purpose, must
not inherit it and keep the next supervisor out. Locks are taken non-blocking: a second
supervisor refuses at once, naming the PID the holder wrote into the file.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path
from typing import Final

from supervisor.config import Settings
from supervisor.endpoints import prepare_socket_dir
from supervisor.errors import ConfigError, JobvisorError
from supervisor.privatedir import make_private, own_dir

LOCK_NAME: Final = "supervisor.lock"


class StateLocked(JobvisorError):
    """Another process holds the lock on this state: it is another supervisor."""

    code = "state_locked"


def lock_files(settings: Settings) -> list[tuple[Path, str]]:
    """The lock files ``settings`` needs, each with the name of what it guards."""
    files = [(settings.state_dir / LOCK_NAME, f"the state folder {settings.state_dir}")]
    if settings.store == "sqlite" and settings.db_path is not None:
        db = settings.db_path
        files.append((db.with_name(db.name + ".lock"), f"the store {db}"))
    if settings.transport == "unix" and settings.socket_dir is not None:
        sockets = settings.job_socket_dir
        files.append((sockets / LOCK_NAME, f"the socket folder {sockets}"))
    return files


class StateLock:
    """The locks of one supervisor; ``release`` (or process exit) gives them back."""

    def __init__(self) -> None:
        self._fds: list[int] = []

    @classmethod
    def acquire(cls, settings: Settings) -> StateLock:
        """Create the state folder (private), then lock everything the state shares.

        Raises ``StateLocked`` naming the holder's PID, or ``ConfigError`` when a folder
        cannot be made or used; in both cases whatever was locked is released again.
        Nothing that exists is changed before the locks are ours: an existing state
        folder is made private only after.
        """
        key, what = f"{settings.source}: state_dir", "the state folder"
        mode = own_dir(settings.state_dir, key=key, what=what)  # created only if missing
        if settings.transport == "unix" and settings.socket_dir is not None:
            prepare_socket_dir(settings.socket_dir, source=f"{settings.source}: socket_dir")
            prepare_socket_dir(settings.job_socket_dir, source=f"{settings.source}: socket_dir")
        lock = cls()
        try:
            for path, name in lock_files(settings):
                lock._fds.append(_lock(path, name, settings.source))
            make_private(settings.state_dir, mode, key=key, what=what)  # ours to change now
        except BaseException:
            lock.release()
            raise
        return lock

    def release(self) -> None:
        while self._fds:
            with contextlib.suppress(OSError):
                os.close(self._fds.pop())  # closing the only descriptor drops the flock


def _lock(path: Path, what: str, source: str) -> int:
    """An exclusive flock on ``path`` (created 0600), with our PID written into it."""
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        raise ConfigError(f"{source}: cannot create lock file {path}: {exc.strerror}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _holder(fd)
        os.close(fd)
        raise StateLocked(
            f"another supervisor (pid {holder}) holds {what} (lock file {path}); stop it first"
        ) from None
    except OSError as exc:
        os.close(fd)
        raise ConfigError(f"{source}: cannot lock {path}: {exc.strerror}") from None
    # Only now is the file ours to rewrite. The PID serves the message above, not the
    # lock: failing to write it (a full disk) must not stop the supervisor.
    with contextlib.suppress(OSError):
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


def _holder(fd: int) -> str:
    """The PID written by the lock's holder ("unknown" in the instant before it writes)."""
    with contextlib.suppress(OSError):
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
        if text.isdigit():
            return text
    return "unknown"
