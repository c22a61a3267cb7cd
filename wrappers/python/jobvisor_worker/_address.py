"""Where the supervisor listens for this job: parsing ``JOBVISOR_SOCKET`` and connecting.

``JOBVISOR_SOCKET`` is either a filesystem path of a Unix socket, or ``tcp://HOST:PORT``
where HOST is a loopback IP literal (``127.0.0.1``, any ``127.x.y.z``, ``[::1]``). The
supervisor only ever listens on loopback (docs/protocol.md, section 1); refusing anything
else here means a job's traffic never goes across a network because of a typo in an
environment variable.
"""

from __future__ import annotations

import os
import socket
import sys
from dataclasses import dataclass
from typing import Final

from jobvisor_worker.errors import ConfigurationError

TCP_SCHEME: Final = "tcp://"
# sun_path holds 108 bytes on Linux and 104 on the BSDs/macOS, including the final NUL.
MAX_UNIX_PATH: Final = 103 if sys.platform == "darwin" or "bsd" in sys.platform else 107


@dataclass(frozen=True, slots=True)
class Address:
    """A parsed supervisor address: ``path`` for a Unix socket, else ``host``/``port``."""

    path: str | None = None
    host: str = ""
    port: int = 0

    @property
    def family(self) -> socket.AddressFamily:
        if self.path is not None:
            return socket.AF_UNIX
        return socket.AF_INET6 if ":" in self.host else socket.AF_INET

    def __str__(self) -> str:
        if self.path is not None:
            return self.path
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{TCP_SCHEME}{host}:{self.port}"

    def connect(self, timeout: float) -> socket.socket:
        """A connected, non-blocking socket; raises ``OSError`` when nobody listens."""
        sock = socket.socket(self.family, socket.SOCK_STREAM)
        try:
            sock.settimeout(timeout)
            if self.path is not None:
                sock.connect(self.path)
            else:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                sock.connect((self.host, self.port))
            sock.setblocking(False)
        except BaseException:
            sock.close()
            raise
        return sock


def parse_address(text: str) -> Address:
    """Parse a ``JOBVISOR_SOCKET`` value, raising ``ConfigurationError`` naming the problem."""
    if not text:
        raise ConfigurationError("JOBVISOR_SOCKET is empty")
    if text.startswith(TCP_SCHEME):
        return _parse_tcp(text)
    if len(os.fsencode(text)) > MAX_UNIX_PATH:
        raise ConfigurationError(
            f"JOBVISOR_SOCKET {text!r} is longer than the {MAX_UNIX_PATH}-byte limit "
            "of a Unix socket path"
        )
    return Address(path=text)


def _parse_tcp(text: str) -> Address:
    hostport = text[len(TCP_SCHEME) :]
    host, sep, port_text = hostport.rpartition(":")
    if not sep or not host or not port_text.isdigit():
        raise ConfigurationError(f"JOBVISOR_SOCKET {text!r} is not tcp://HOST:PORT")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    import ipaddress  # noqa: PLC0415 - only a TCP address needs it

    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        raise ConfigurationError(
            f"JOBVISOR_SOCKET {text!r}: host {host!r} is not an IP address (use 127.0.0.1 or [::1])"
        ) from None
    if not ip.is_loopback:
        raise ConfigurationError(f"JOBVISOR_SOCKET {text!r}: host {host!r} is not loopback")
    port = int(port_text)
    if not 0 < port < 65536:
        raise ConfigurationError(f"JOBVISOR_SOCKET {text!r}: port {port} is out of range")
    return Address(host=str(ip), port=port)
