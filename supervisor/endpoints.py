"""Per-job endpoints: the socket folder, listener sockets, and reservations (docs/restarts.md).

Every job gets its own endpoint: a Unix socket ``<socket_dir>/<instance>/<job id>.sock``
or a loopback TCP port from ``tcp_port_range``; a retry reuses it when it is still free
(attempts are fenced by a fresh token each, not by the address). An endpoint is
*reserved* from the moment an attempt owns it until the attempt's process is confirmed
gone; reservations are derived from the jobs the store holds as running, so they survive
any number of restarts.
A new attempt is never given a reserved endpoint, and asking for one explicitly raises
``ReservationError``.

Security (docs/security.md): the socket folder is 0700 and must belong to us; socket
files are 0600 (chmod right after bind, inside the private folder); TCP listeners bind
127.0.0.1 only. Proofs of the attempt's token, not addresses, authenticate workers.
"""

from __future__ import annotations

import contextlib
import errno
import os
import random
import socket
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from supervisor.errors import ReservationError
from supervisor.privatedir import prepare_private_dir


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where one attempt's worker connects: a Unix path or a loopback TCP port."""

    path: str | None = None
    port: int | None = None

    def __post_init__(self) -> None:
        if (self.path is None) == (self.port is None):
            raise ValueError("an endpoint is a path or a port, not both or neither")

    @property
    def address(self) -> str:
        """The value of JOBVISOR_SOCKET."""
        return self.path if self.path is not None else f"tcp://127.0.0.1:{self.port}"

    def __str__(self) -> str:
        return self.address


def prepare_socket_dir(path: Path, *, source: str = "socket_dir") -> None:
    """Create ``path`` (0700) or check that an existing one is private and ours.

    An existing folder open to others is refused rather than tightened: a socket folder
    may be shared on purpose (``socket_dir`` set by hand), and changing it is the
    user's call.
    """
    prepare_private_dir(path, key=source, what="the socket folder", tighten=False)


class Reservations:
    """Endpoints held by attempts, by job id; the source of truth for 'in use'."""

    def __init__(self) -> None:
        self._paths: dict[str, str] = {}
        self._ports: dict[int, str] = {}

    def __len__(self) -> int:
        return len(self._paths) + len(self._ports)

    def holder(self, endpoint: Endpoint) -> str | None:
        if endpoint.path is not None:
            return self._paths.get(endpoint.path)
        assert endpoint.port is not None
        return self._ports.get(endpoint.port)

    def reserve(self, endpoint: Endpoint, job_id: str) -> None:
        holder = self.holder(endpoint)
        if holder is not None and holder != job_id:
            raise ReservationError(
                f"{endpoint} is reserved for job {holder}, whose worker may still "
                "reconnect to it; choose another"
            )
        if endpoint.path is not None:
            self._paths[endpoint.path] = job_id
        else:
            assert endpoint.port is not None
            self._ports[endpoint.port] = job_id

    def release(self, endpoint: Endpoint, job_id: str) -> None:
        if self.holder(endpoint) != job_id:
            return
        if endpoint.path is not None:
            del self._paths[endpoint.path]
        else:
            assert endpoint.port is not None
            del self._ports[endpoint.port]

    def ports(self) -> Iterable[int]:
        return self._ports.keys()


def unix_endpoint(socket_dir: Path, job_id: str) -> Endpoint:
    return Endpoint(path=str(socket_dir / f"{job_id}.sock"))


def listen_unix(path: str, backlog: int = 16) -> socket.socket:
    """Bind a fresh listener at ``path`` (replacing a stale file), mode 0600."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(path)
        # chmod right after bind rather than a umask dance: umask is process-wide (not
        # thread-safe), and the folder is 0700, so nobody else can reach the file meanwhile.
        os.chmod(path, 0o600)
        sock.listen(backlog)
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    return sock


def listen_tcp(port: int, backlog: int = 16) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        # SO_REUSEADDR: re-bind a port whose old connections sit in TIME_WAIT after a restart.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
        sock.listen(backlog)
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    return sock


def listen_free_tcp(
    port_range: tuple[int, int], reservations: Reservations, rng: random.Random | None = None
) -> tuple[socket.socket, int]:
    """A listener on a free, unreserved port of the range, probing from a random start."""
    low, high = port_range
    size = high - low + 1
    start = (rng or random).randrange(size)
    reserved = set(reservations.ports())
    for i in range(size):
        port = low + (start + i) % size
        if port in reserved:
            continue
        try:
            return listen_tcp(port), port
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                continue
            raise
    raise ReservationError(f"no free TCP port in {low}-{high} (all in use or reserved)")


def remove_socket_file(path: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)


def clean_stale_sockets(socket_dir: Path, keep: Iterable[str]) -> list[str]:
    """Remove socket files in our own folder that no reserved endpoint names."""
    keep_set = set(keep)
    removed: list[str] = []
    try:
        entries = list(os.scandir(socket_dir))
    except OSError:
        return removed
    for entry in entries:
        if entry.path in keep_set or not entry.name.endswith(".sock"):
            continue
        with contextlib.suppress(OSError):
            if stat.S_ISSOCK(entry.stat(follow_symlinks=False).st_mode):
                os.unlink(entry.path)
                removed.append(entry.path)
    return removed
