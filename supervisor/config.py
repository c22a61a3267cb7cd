"""jobvisor.toml: parsing, validation and resolution into ``Settings`` (docs/configuration.md).

Validation is pydantic in strict mode (a TOML string is never silently turned into a
number) with unknown keys forbidden; every error is reported as
``FILE: KEY.PATH: what is wrong``. Relative paths resolve against the folder of the
file, and so does a relative ``command`` that contains a slash. Tuning and hardening keys
beyond the core set (``flush_interval``, ``kill_grace`` ...) are in docs/configuration.md.
"""

from __future__ import annotations

import hashlib
import ipaddress
import math
import os
import socket
import sys
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Annotated, Any, Final, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from supervisor.errors import ConfigError
from supervisor.records import DEFAULT_MAX_ATTEMPTS, JobKind

CONFIG_NAME: Final = "jobvisor.toml"
# sun_path is 108 bytes on Linux including the terminating NUL.
MAX_UNIX_PATH: Final = 107
# "/<instance>/<job id>.sock": 1 + 8 + 1 + 20 + 5
SOCKET_NAME_ROOM: Final = 1 + 8 + 1 + 20 + 5

DEFAULT_RETENTION: Final = 7 * 86400.0
_AGE_UNITS: Final = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 7 * 86400.0}

PositiveFloat = Annotated[float, Field(gt=0)]
NonNegativeFloat = Annotated[float, Field(ge=0)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class JobKindModel(_Strict):
    command: Annotated[str, Field(min_length=1)]
    # "none": a plain program that knows nothing of the protocol (docs/worker-plain.md).
    # Declared before heartbeat_timeout, whose check reads it.
    protocol: Literal["jobvisor", "none"] = "jobvisor"
    args: list[str] = []
    cwd: str | None = None
    env: dict[str, str] = {}
    heartbeat_timeout: PositiveFloat | None = None
    timeout: PositiveFloat | None = None
    max_attempts: Annotated[int, Field(ge=1, le=1000)] = DEFAULT_MAX_ATTEMPTS
    concurrency: Annotated[int, Field(ge=1)] | None = None
    retry_delay: NonNegativeFloat = 1.0
    retry_backoff: Annotated[float, Field(ge=1)] = 2.0
    retry_max_delay: NonNegativeFloat = 300.0

    @field_validator("heartbeat_timeout")
    @classmethod
    def _plain_has_no_heartbeat(cls, value: float | None, info: ValidationInfo) -> float | None:
        if value is not None and info.data.get("protocol") == "none":
            raise ValueError(
                'does not apply to protocol = "none": a plain program sends no heartbeats, '
                "its liveness is its process (bound it with timeout)"
            )
        return value

    @field_validator("env")
    @classmethod
    def _env_names(cls, env: dict[str, str]) -> dict[str, str]:
        for name in env:
            if not name or "=" in name or "\0" in name:
                raise ValueError(f"invalid environment variable name {name!r}")
        return env


class ConfigModel(_Strict):
    state_dir: str = ".jobvisor"
    persist: bool = True
    db_path: str = ""
    store: Annotated[str, Field(min_length=1)] = "sqlite"
    dsn: str = ""
    node: str = ""
    concurrency: Annotated[int, Field(ge=1)] = 5
    http: str = "127.0.0.1:8765"
    auth_token: str = ""
    # "token": the HTTP API needs a bearer token (auth_token, else one generated into
    # state_dir/http.token); "none": open to every local user, loopback addresses only.
    http_auth: Literal["token", "none"] = "token"
    transport: Literal["unix", "tcp"] = "tcp" if sys.platform == "win32" else "unix"
    socket_dir: str = ""
    tcp_port_range: Annotated[
        list[Annotated[int, Field(ge=1, le=65535)]], Field(min_length=2, max_length=2)
    ] = [
        49152,
        65535,
    ]
    default_heartbeat_timeout: PositiveFloat = 30.0
    python_path: list[str] = ["."]
    workflows: list[str] = []
    # Step workers kept started and waiting (docs/workflows.md); 0: always spawned cold.
    workflow_pool_size: Annotated[int, Field(ge=0, le=64)] = 2
    # Beyond the core keys (docs/configuration.md):
    flush_interval: PositiveFloat = 1.0
    kill_grace: PositiveFloat = 10.0
    max_frame_size: Annotated[int, Field(ge=1024, le=(1 << 32) - 1)] = 1 << 20
    sqlite_synchronous: Literal["normal", "full"] = "normal"
    worker_give_up: PositiveFloat = 60.0
    worker_reconnect_interval: PositiveFloat = 2.0
    # Events over HTTP (docs/http-api.md, "Events (SSE)"):
    sse_keepalive: PositiveFloat = 15.0
    sse_buffer: Annotated[int, Field(ge=4096)] = 1 << 20
    sse_max_streams: Annotated[int, Field(ge=1, le=1024)] = 128
    sse_replay_events: Annotated[int, Field(ge=0)] = 10_000
    sse_replay_bytes: Annotated[int, Field(ge=0)] = 16 << 20
    log_event_rate: Annotated[int, Field(ge=1)] = 100

    # How long finished jobs and their logs are kept (docs/configuration.md): "7d",
    # "12h", "30m", "90s" or seconds; 0 or "off" keeps them forever.
    retention: str | NonNegativeFloat = "7d"
    jobs: dict[str, JobKindModel] = {}

    @field_validator("retention")
    @classmethod
    def _retention(cls, value: str | float) -> str | float:
        parse_age(value)  # raises ValueError naming what is accepted
        return value

    @field_validator("tcp_port_range")
    @classmethod
    def _ordered(cls, value: list[int]) -> list[int]:
        if value[0] > value[1]:
            raise ValueError(f"the range {value} runs backwards")
        return value

    @field_validator("jobs")
    @classmethod
    def _job_names(cls, jobs: dict[str, JobKindModel]) -> dict[str, JobKindModel]:
        for name in jobs:
            if not name or len(name) > 200 or any(c.isspace() or c == "/" for c in name):
                raise ValueError(f"invalid job name {name!r} (no spaces or '/')")
        return jobs


@dataclass(frozen=True, slots=True)
class Settings:
    """A validated configuration with every path absolute and every default filled in."""

    base_dir: Path
    state_dir: Path
    persist: bool = True
    db_path: Path | None = None
    store: str = "sqlite"
    dsn: str = ""
    node: str = field(default_factory=socket.gethostname)
    concurrency: int = 5
    http_host: str | None = "127.0.0.1"
    http_port: int = 8765
    auth_token: str = ""
    http_auth: str = "token"
    transport: str = "unix"
    socket_dir: Path | None = None
    tcp_port_range: tuple[int, int] = (49152, 65535)
    default_heartbeat_timeout: float = 30.0
    python_path: tuple[Path, ...] = ()
    workflows: tuple[str, ...] = ()
    workflow_pool_size: int = 2
    flush_interval: float = 1.0
    kill_grace: float = 10.0
    max_frame_size: int = 1 << 20
    sqlite_synchronous: str = "normal"
    # How long a disconnected worker library keeps trying before it stops itself
    # (reconnect_interval x max_reconnect_attempts, 2.0 x 30 by default).
    worker_give_up: float = 60.0
    # The longest pause between a disconnected worker's reconnection tries; sent to
    # the worker in ``welcome`` so that both sides use one schedule.
    worker_reconnect_interval: float = 2.0
    # Events over HTTP: a keep-alive comment every ``sse_keepalive`` s; a stream whose
    # unsent bytes pass ``sse_buffer`` is dropped; at most ``sse_max_streams`` at once.
    sse_keepalive: float = 15.0
    sse_buffer: int = 1 << 20
    sse_max_streams: int = 128
    # The replay window for resuming streams: the newest events, this many and this many
    # bytes of JSON at most.
    sse_replay_events: int = 10_000
    sse_replay_bytes: int = 16 << 20
    # A worker's log lines become ``job.external.log`` events at most this many a second
    # per job; the rest are counted and reported in one note (the log file has them all).
    log_event_rate: int = 100

    # Seconds a finished job (and its log) is kept before the supervisor purges it;
    # ``None``: kept forever (supervisor/retention.py).
    retention: float | None = DEFAULT_RETENTION
    jobs: Mapping[str, JobKind] = field(default_factory=dict)
    source: str = "<defaults>"

    @property
    def log_dir(self) -> Path:
        return self.state_dir / "logs"

    @property
    def token_file(self) -> Path:
        """Where the supervisor keeps the HTTP token it generated (owner-only, 0600)."""
        return self.state_dir / "http.token"

    @property
    def instance(self) -> str:
        """Eight hex digits naming this supervisor's state, used for its socket folder."""
        return hashlib.sha256(str(self.state_dir).encode()).hexdigest()[:8]

    @property
    def job_socket_dir(self) -> Path:
        """Where this supervisor's per-job sockets live (a private subfolder)."""
        assert self.socket_dir is not None
        return self.socket_dir / self.instance


def default_socket_dir() -> Path:
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime and Path(runtime).is_dir():
        return Path(runtime) / "jobvisor"
    return Path(f"/tmp/jobvisor-{os.getuid()}")  # noqa: S108 - private 0700 dir, checked


def load_config(path: str | os.PathLike[str] | None = None) -> Settings:
    """Read, validate and resolve a config file.

    ``path=None`` uses ./jobvisor.toml when it exists, else the defaults.
    """
    if path is None:
        candidate = Path.cwd() / CONFIG_NAME
        if not candidate.exists():
            return settings_from_mapping({}, base_dir=Path.cwd(), source="<defaults>")
        path = candidate
    file = Path(path)
    try:
        raw = file.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{file}: cannot read config file: {exc.strerror}") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"{file}: not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{file}: invalid TOML: {exc}") from None
    return settings_from_mapping(data, base_dir=file.resolve().parent, source=str(file))


def settings_from_mapping(data: Mapping[str, Any], *, base_dir: Path, source: str) -> Settings:
    """Validate a parsed config (e.g. a TOML document) into ``Settings``."""
    try:
        model = ConfigModel.model_validate(dict(data))
    except ValidationError as exc:
        raise ConfigError(_describe(source, exc)) from None
    return _resolve(model, base_dir.resolve(), source)


def _describe(source: str, exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        key = ".".join(str(part) for part in err["loc"]) or "(top level)"
        if err["type"] == "extra_forbidden":
            lines.append(f"{source}: {key}: unknown key")
        else:
            shown = repr(err.get("input"))
            if len(shown) > 60:
                shown = shown[:57] + "..."
            message = err["msg"].removeprefix("Value error, ")
            lines.append(f"{source}: {key}: {message} (got {shown})")
    return "\n".join(lines)


def _path(base: Path, value: str) -> Path:
    return (base / os.path.expanduser(value)).resolve()


def _resolve(model: ConfigModel, base: Path, source: str) -> Settings:
    def fail(key: str, message: str) -> ConfigError:
        return ConfigError(f"{source}: {key}: {message}")

    state_dir = _path(base, model.state_dir)
    db_path = _path(base, model.db_path) if model.db_path else state_dir / "jobs.db"
    socket_dir = _path(base, model.socket_dir) if model.socket_dir else default_socket_dir()
    if model.transport == "unix" and len(str(socket_dir)) + SOCKET_NAME_ROOM > MAX_UNIX_PATH:
        raise fail(
            "socket_dir",
            f"{socket_dir} is too long: socket paths under it would exceed the "
            f"{MAX_UNIX_PATH}-byte limit of Unix socket addresses "
            f"(keep it to {MAX_UNIX_PATH - SOCKET_NAME_ROOM} characters or fewer)",
        )

    http_host: str | None
    if model.http:
        http_host, http_port = _parse_http(model.http, fail)
    else:
        http_host, http_port = None, 0
    auth_token = model.auth_token or os.environ.get("JOBVISOR_AUTH_TOKEN", "")
    if http_host is not None and not _is_loopback(http_host) and not auth_token:
        raise fail(
            "http",
            f"binding {http_host} (not loopback) requires auth_token or JOBVISOR_AUTH_TOKEN",
        )
    if http_host is not None and model.http_auth == "none" and not _is_loopback(http_host):
        raise fail("http_auth", f'"none" is allowed on a loopback address only, not {http_host}')

    jobs: dict[str, JobKind] = {}
    for name, kind in model.jobs.items():
        command = kind.command
        if "/" in command and not os.path.isabs(command):
            command = str(_path(base, command))
        jobs[name] = JobKind(
            name=name,
            command=command,
            args=tuple(kind.args),
            cwd=str(_path(base, kind.cwd)) if kind.cwd else str(base),
            env=dict(kind.env),
            heartbeat_timeout=kind.heartbeat_timeout or model.default_heartbeat_timeout,
            timeout=kind.timeout,
            max_attempts=kind.max_attempts,
            concurrency=kind.concurrency,
            retry_delay=kind.retry_delay,
            retry_backoff=kind.retry_backoff,
            retry_max_delay=kind.retry_max_delay,
            protocol=kind.protocol,
        )

    store = model.store if model.persist else "memory"
    if store == "postgres" and not model.dsn:
        raise fail("dsn", 'store = "postgres" needs a dsn')
    return Settings(
        base_dir=base,
        state_dir=state_dir,
        persist=model.persist,
        db_path=db_path,
        store=store,
        dsn=model.dsn,
        node=model.node or socket.gethostname(),
        concurrency=model.concurrency,
        http_host=http_host,
        http_port=http_port,
        auth_token=auth_token,
        http_auth=model.http_auth,
        transport=model.transport,
        socket_dir=socket_dir,
        tcp_port_range=(model.tcp_port_range[0], model.tcp_port_range[1]),
        default_heartbeat_timeout=model.default_heartbeat_timeout,
        python_path=tuple(_path(base, p) for p in model.python_path),
        workflows=tuple(model.workflows),
        workflow_pool_size=model.workflow_pool_size,
        flush_interval=model.flush_interval,
        kill_grace=model.kill_grace,
        max_frame_size=model.max_frame_size,
        sqlite_synchronous=model.sqlite_synchronous,
        worker_give_up=model.worker_give_up,
        worker_reconnect_interval=model.worker_reconnect_interval,
        sse_keepalive=model.sse_keepalive,
        sse_buffer=model.sse_buffer,
        sse_max_streams=model.sse_max_streams,
        sse_replay_events=model.sse_replay_events,
        sse_replay_bytes=model.sse_replay_bytes,
        log_event_rate=model.log_event_rate,
        retention=parse_age(model.retention),
        jobs=jobs,
        source=source,
    )


def parse_age(value: str | float) -> float | None:
    """An age such as ``"7d"``, ``"12h"``, ``"30m"``, ``"90s"``, ``"2w"`` or a number of
    seconds, in seconds; ``0``, ``"0"`` and ``"off"`` are ``None`` (no limit)."""
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        text = value.strip().lower()
        if text in ("off", "0", ""):
            return None
        number, unit = text[:-1], _AGE_UNITS.get(text[-1:])
        if unit is None:
            number, unit = text, 1.0
        try:
            seconds = float(number) * unit
        except ValueError:
            raise ValueError(
                f'expected an age such as "7d", "12h", "30m", "90s", a number of seconds, '
                f'or "off"; got {value!r}'
            ) from None
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"an age must be a finite number of seconds >= 0, got {value!r}")
    return seconds or None


def check_commands(settings: Settings) -> None:
    """Refuse job kinds whose worker cannot be started, naming each ``jobs.NAME`` key.

    Run when a supervisor starts rather than in ``load_config``: the check is about the
    machine the workers run on, and a client command (``jobvisor jobs``) reading the
    same file elsewhere must not fail over it.
    """
    problems = []
    for name, kind in settings.jobs.items():
        problem = command_problem(kind)
        if problem:
            problems.append(f"{settings.source}: jobs.{name}.{problem}")
    if problems:
        raise ConfigError("\n".join(problems))


def command_problem(kind: JobKind) -> str:
    """Why ``kind``'s worker cannot be spawned (``"KEY: reason"``), or "" when it can.

    Resolves the command as ``subprocess.Popen`` will at spawn: a name with a slash is
    a path (relative ones against ``cwd``, where the child starts); a bare name is
    searched in the PATH of the worker's environment (the supervisor's, overridden by
    the kind's ``env``), each relative PATH entry against ``cwd``.
    """
    cwd = Path(kind.cwd) if kind.cwd else Path.cwd()
    if not cwd.is_dir():
        return f"cwd: {cwd} is not a folder"
    if "/" in kind.command:
        path = cwd / kind.command
        if not path.exists():
            return f"command: {kind.command!r} does not exist"
        if not _executable(path):
            return f"command: {kind.command!r} is not an executable file"
        return ""
    search = os.get_exec_path({**os.environ, **kind.env})
    if any(_executable(cwd / folder / kind.command) for folder in search):
        return ""
    shown = os.pathsep.join(search)
    return f"command: {kind.command!r} is not found on PATH ({shown}) from cwd {cwd}"


def _executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def override_http(settings: Settings, value: str) -> Settings:
    """``settings`` with another HTTP address (the ``serve --http`` option)."""

    def fail(key: str, message: str) -> ConfigError:
        return ConfigError(f"--http: {message}")

    if not value:
        return replace(settings, http_host=None, http_port=0)
    host, port = _parse_http(value, fail)
    if not _is_loopback(host) and not settings.auth_token:
        raise fail("http", f"binding {host} (not loopback) requires auth_token")
    if not _is_loopback(host) and settings.http_auth == "none":
        raise fail("http", f'http_auth = "none" is allowed on a loopback address only, not {host}')
    return replace(settings, http_host=host, http_port=port)


def _parse_http(value: str, fail: Any) -> tuple[str, int]:
    host, sep, port_text = value.rpartition(":")
    if not sep or not host or not port_text.isdigit():
        raise fail("http", f'expected "HOST:PORT" or "", got {value!r}')
    port = int(port_text)
    if not 0 <= port <= 65535:
        raise fail("http", f"port {port} is out of range")
    return host.strip("[]"), port


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
