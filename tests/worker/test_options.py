"""Options and JOBVISOR_SOCKET parsing: environment, overrides, and clear errors."""

from __future__ import annotations

import socket
from typing import Any

import pytest

from jobvisor_worker import ConfigurationError
from jobvisor_worker._address import parse_address
from jobvisor_worker._options import resolve_options

ENV = {
    "JOBVISOR_SOCKET": "/run/jv/job.sock",
    "JOBVISOR_JOB_ID": "j1",
    "JOBVISOR_TOKEN": "t",
    "JOBVISOR_HEARTBEAT_INTERVAL": "0.25",
}


def test_defaults_come_from_the_environment_and_the_seed():
    """Address, identity and heartbeat come from the env; the rest are the seed's knobs."""
    opts = resolve_options({"env": ENV})
    assert opts.address.path == "/run/jv/job.sock"
    assert (opts.job_id, opts.token) == ("j1", "t")
    assert opts.heartbeat_interval == 0.25
    assert not opts.heartbeat_interval_fixed
    assert (opts.reconnect_interval, opts.max_reconnect_attempts) == (2.0, 30)
    assert opts.give_up_after == 60.0
    assert (opts.max_buffered_logs, opts.fast_reconnect_window) == (1000, 5.0)


def test_heartbeat_defaults_to_5s_without_env():
    """Without JOBVISOR_HEARTBEAT_INTERVAL the heartbeat interval is 5 s."""
    env = {k: v for k, v in ENV.items() if k != "JOBVISOR_HEARTBEAT_INTERVAL"}
    assert resolve_options({"env": env}).heartbeat_interval == 5.0


def test_keyword_arguments_override_the_environment():
    """Explicit options win over the environment, and a given heartbeat is fixed."""
    opts = resolve_options(
        {"env": ENV, "socket": "tcp://127.0.0.1:9", "job_id": "j2", "heartbeat_interval": 1}
    )
    assert (opts.address.host, opts.address.port, opts.job_id) == ("127.0.0.1", 9, "j2")
    assert (opts.heartbeat_interval, opts.heartbeat_interval_fixed) == (1.0, True)


@pytest.mark.parametrize("missing", ["JOBVISOR_SOCKET", "JOBVISOR_JOB_ID", "JOBVISOR_TOKEN"])
def test_missing_environment_is_named(missing: str):
    """A worker started outside jobvisor gets an error naming the missing variable."""
    env = {k: v for k, v in ENV.items() if k != missing}
    with pytest.raises(ConfigurationError, match=missing):
        resolve_options({"env": env})


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"reconnect_interval": 0}, "reconnect_interval"),
        ({"max_reconnect_attempts": 0}, "max_reconnect_attempts"),
        ({"max_reconnect_attempts": 2.5}, "max_reconnect_attempts"),
        ({"max_buffered_logs": True}, "max_buffered_logs"),
        ({"heartbeat_interval": float("inf")}, "heartbeat_interval"),
        ({"fast_reconnect_window": -1}, "fast_reconnect_window"),
        ({"env": {**ENV, "JOBVISOR_HEARTBEAT_INTERVAL": "soon"}}, "JOBVISOR_HEARTBEAT_INTERVAL"),
    ],
)
def test_bad_values_are_named(options: dict[str, Any], match: str):
    """Each bad knob is refused with its name."""
    with pytest.raises(ConfigurationError, match=match):
        resolve_options({"env": ENV, **options})  # type: ignore[typeddict-item]


def test_unknown_option_is_a_type_error():
    """A misspelt option is refused rather than silently ignored."""
    with pytest.raises(TypeError, match="reconect_interval"):
        resolve_options({"env": ENV, "reconect_interval": 1})  # type: ignore[typeddict-unknown-key]


@pytest.mark.parametrize(
    ("text", "family", "host", "port"),
    [
        ("tcp://127.0.0.1:8000", socket.AF_INET, "127.0.0.1", 8000),
        ("tcp://127.1.2.3:1", socket.AF_INET, "127.1.2.3", 1),
        ("tcp://[::1]:65535", socket.AF_INET6, "::1", 65535),
    ],
)
def test_tcp_addresses(text: str, family: socket.AddressFamily, host: str, port: int):
    """tcp://HOST:PORT with a loopback IP literal is accepted."""
    address = parse_address(text)
    assert (address.family, address.host, address.port) == (family, host, port)
    assert str(address) == text


@pytest.mark.parametrize(
    "text",
    [
        "",
        "tcp://10.0.0.1:80",
        "tcp://example.com:80",
        "tcp://127.0.0.1",
        "tcp://127.0.0.1:0",
        "tcp://127.0.0.1:70000",
        "tcp://:80",
        "/" + "x" * 200,
    ],
)
def test_bad_addresses_are_refused(text: str):
    """Non-loopback hosts, bad ports and over-long socket paths are configuration errors."""
    with pytest.raises(ConfigurationError):
        parse_address(text)


def test_unix_path():
    """Anything else is a Unix socket path."""
    address = parse_address("relative/job.sock")
    assert (address.family, address.path, str(address)) == (
        socket.AF_UNIX,
        "relative/job.sock",
        "relative/job.sock",
    )
