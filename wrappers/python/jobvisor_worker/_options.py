"""The library's knobs: keyword arguments of ``connect``/``run_job``, with env fallbacks.

Defaults: heartbeat every 5 s, reconnect_interval 2 s x 30 attempts = give up after 60 s,
and a 5 s fast-retry window (docs/worker-python.md). The reconnect schedule here applies
only until the first ``welcome``: from then on the supervisor's ``reconnect_interval`` and
``give_up_after`` replace it (the supervisor decides when a worker counts as lost).
``socket``, ``job_id`` and ``token`` normally come from the environment the supervisor
sets; passing them is for tests and for embedding.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, TypedDict

from jobvisor_worker._address import Address, parse_address
from jobvisor_worker.errors import ConfigurationError

ENV_SOCKET: Final = "JOBVISOR_SOCKET"
ENV_JOB_ID: Final = "JOBVISOR_JOB_ID"
ENV_TOKEN: Final = "JOBVISOR_TOKEN"  # noqa: S105 - the name of a variable, not a secret
ENV_HEARTBEAT_INTERVAL: Final = "JOBVISOR_HEARTBEAT_INTERVAL"

DEFAULT_HEARTBEAT_INTERVAL: Final = 5.0
DEFAULT_RECONNECT_INTERVAL: Final = 2.0
DEFAULT_MAX_RECONNECT_ATTEMPTS: Final = 30
DEFAULT_MAX_BUFFERED_LOGS: Final = 1000
DEFAULT_FAST_RECONNECT_WINDOW: Final = 5.0


class ConnectOptions(TypedDict, total=False):
    """Keyword arguments accepted by ``connect`` and ``run_job`` (see docs/worker-python.md)."""

    socket: str
    job_id: str
    token: str
    heartbeat_interval: float
    reconnect_interval: float
    max_reconnect_attempts: int
    max_buffered_logs: int
    fast_reconnect_window: float
    pid: int
    env: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class Options:
    """Resolved settings of one worker connection."""

    address: Address
    job_id: str
    token: str
    heartbeat_interval: float
    # True when the caller passed heartbeat_interval: then a welcome's value is ignored.
    heartbeat_interval_fixed: bool
    reconnect_interval: float
    max_reconnect_attempts: int
    max_buffered_logs: int
    fast_reconnect_window: float
    # The pid ``hello`` announces: None is this process (os.getpid() at each hello). A
    # helper speaking for another process (the shell library's) names that process.
    pid: int | None = None

    @property
    def give_up_after(self) -> float:
        """Seconds of continuous failure to reach a supervisor before the job stops."""
        return self.reconnect_interval * self.max_reconnect_attempts


def resolve_options(options: ConnectOptions) -> Options:
    """Merge keyword arguments with the environment, validating every value."""
    unknown = set(options) - set(ConnectOptions.__annotations__)
    if unknown:
        raise TypeError(f"unknown option(s): {', '.join(sorted(unknown))}")
    env = options.get("env", os.environ)
    socket_text = options.get("socket") or _require_env(env, ENV_SOCKET)
    job_id = options.get("job_id") or _require_env(env, ENV_JOB_ID)
    token = options.get("token")
    if token is None:
        token = _require_env(env, ENV_TOKEN)
    fixed = "heartbeat_interval" in options
    if fixed:
        heartbeat = options["heartbeat_interval"]
    elif env.get(ENV_HEARTBEAT_INTERVAL):
        heartbeat = _float_from_env(env, ENV_HEARTBEAT_INTERVAL)
    else:
        heartbeat = DEFAULT_HEARTBEAT_INTERVAL
    return Options(
        address=parse_address(socket_text),
        job_id=job_id,
        token=token,
        heartbeat_interval=_positive("heartbeat_interval", heartbeat),
        heartbeat_interval_fixed=fixed,
        reconnect_interval=_positive(
            "reconnect_interval", options.get("reconnect_interval", DEFAULT_RECONNECT_INTERVAL)
        ),
        max_reconnect_attempts=_positive_int(
            "max_reconnect_attempts",
            options.get("max_reconnect_attempts", DEFAULT_MAX_RECONNECT_ATTEMPTS),
        ),
        max_buffered_logs=_positive_int(
            "max_buffered_logs", options.get("max_buffered_logs", DEFAULT_MAX_BUFFERED_LOGS)
        ),
        fast_reconnect_window=_non_negative(
            "fast_reconnect_window",
            options.get("fast_reconnect_window", DEFAULT_FAST_RECONNECT_WINDOW),
        ),
        pid=_positive_int("pid", options["pid"]) if "pid" in options else None,
    )


def _require_env(env: Mapping[str, str], name: str) -> str:
    value = env.get(name)
    if not value:
        raise ConfigurationError(
            f"{name} is not set: this program is a jobvisor worker and must be started "
            "by the jobvisor supervisor (or given the option explicitly)"
        )
    return value


def _float_from_env(env: Mapping[str, str], name: str) -> float:
    try:
        return float(env[name])
    except ValueError:
        raise ConfigurationError(f"{name}={env[name]!r} is not a number") from None


def _number(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigurationError(f"{name} must be a number, got {value!r}")
    if not math.isfinite(value):
        raise ConfigurationError(f"{name} must be finite, got {value!r}")
    return float(value)


def _positive(name: str, value: object) -> float:
    number = _number(name, value)
    if number <= 0:
        raise ConfigurationError(f"{name} must be > 0, got {value!r}")
    return number


def _non_negative(name: str, value: object) -> float:
    number = _number(name, value)
    if number < 0:
        raise ConfigurationError(f"{name} must be >= 0, got {value!r}")
    return number


def _positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigurationError(f"{name} must be an integer >= 1, got {value!r}")
    return value
