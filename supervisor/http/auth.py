"""Who may use the HTTP API: a bearer token by default, generated on first start.

Theory of operation. Anyone on the machine can connect to a loopback port, so an API
that runs commands as the supervisor's user must not trust the connection. The token is
``auth_token`` (config or ``JOBVISOR_AUTH_TOKEN``) when set; otherwise the first
supervisor on a state folder generates one into ``state_dir/http.token`` (created with
``O_EXCL``, mode 0600, so only the owner can read it) and every later start reuses it.
The CLI and ``supervisor.client.Client.for_config`` read the same file, which is how the
owner's commands work without a token being typed. ``http_auth = "none"`` turns the
check off; the config allows it on loopback addresses only and the server warns.

A request is authorized by ``Authorization: Bearer TOKEN``, or, for GET and HEAD only,
by ``?token=TOKEN``: a browser following a link, or an ``EventSource``, cannot set a
header. Reads only, so a token leaked into a history or a proxy log cannot be replayed
by a link to change anything. ``/healthz`` stays open (it shows counts, not jobs), and
so do the dashboard's static files under ``/static/``: the package's own code, no data,
and an ES module import cannot carry a token; and so does ``GET /`` asked by a browser
(``Accept: text/html``), which is the dashboard's page: a shell that holds no data and
asks for the token when its URL did not carry one (``supervisor.http.dashboard``).
"""

from __future__ import annotations

import contextlib
import hmac
import logging
import os
import secrets
import stat
from typing import TYPE_CHECKING

from supervisor.errors import ConfigError

if TYPE_CHECKING:
    from supervisor.config import Settings
    from supervisor.http.exchange import Request

log = logging.getLogger(__name__)

OPEN_PATHS = frozenset({"/healthz"})
OPEN_PREFIXES = ("/static/",)
QUERY_METHODS = frozenset({"GET", "HEAD"})


def server_token(settings: Settings) -> str | None:
    """The token this supervisor requires (``None``: no auth), generated if need be."""
    if settings.http_auth == "none":
        log.warning(
            'the HTTP API is open to every local user (http_auth = "none"): any of them '
            "can submit jobs, which run as this user, and read every job's data and logs"
        )
        return None
    if settings.auth_token:
        return settings.auth_token
    path = settings.token_file
    with contextlib.suppress(FileNotFoundError):
        return _read(settings)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    # Hex: a token that began with "-" would read as an option after --token, and hex
    # needs no quoting in a shell or escaping in a URL.
    token = secrets.token_hex(32)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except FileExistsError:  # another process on this state folder was first: use its token
        return _read(settings)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot create the HTTP token file: {exc.strerror}") from None
    with os.fdopen(fd, "w", encoding="ascii") as file:
        file.write(token + "\n")
        file.flush()
        os.fsync(file.fileno())
    log.info("generated the HTTP API token in %s", path)
    return token


def _read(settings: Settings) -> str:
    path = settings.token_file
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the HTTP token file: {exc.strerror}") from None
    with os.fdopen(fd, encoding="ascii", errors="replace") as file:
        mode = os.fstat(file.fileno()).st_mode
        if mode & 0o077:
            # Readable by others, the token protects nothing: take the file back.
            log.warning("%s was readable by other users; making it owner-only", path)
            os.fchmod(file.fileno(), stat.S_IRUSR | stat.S_IWUSR)
        token = file.read().strip()
    if not token:
        raise ConfigError(f"{path}: the HTTP token file is empty (delete it to get a new one)")
    return token


def wants_page(request: Request) -> bool:
    """A browser asking for the dashboard's page (``supervisor.http.dashboard``)."""
    return "text/html" in request.headers.get("accept", "")


def authorized(request: Request, token: str | None) -> bool:
    """Whether ``request`` may pass (see the module docstring)."""
    if token is None or request.path in OPEN_PATHS or request.path.startswith(OPEN_PREFIXES):
        return True
    if request.path == "/" and request.method in QUERY_METHODS and wants_page(request):
        return True  # the dashboard's page: a shell that asks for the token, no data
    expected = token.encode()
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), expected):
        return True
    query = request.query.get("token")
    return (
        query is not None
        and request.method in QUERY_METHODS
        and hmac.compare_digest(query.encode(), expected)
    )
