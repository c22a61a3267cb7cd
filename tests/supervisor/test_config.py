"""jobvisor.toml (supervisor/config.py) and the socket folder checks, with real files."""

from __future__ import annotations

import os
import shutil
import socket
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from supervisor.config import CONFIG_NAME, check_commands, load_config
from supervisor.endpoints import prepare_socket_dir
from supervisor.errors import ConfigError
from supervisor.testing import SupervisorThread, make_settings, short_socket_dir

FULL = """
state_dir = "state"
persist = true
db_path = "db/jobs.db"
store = "sqlite"
dsn = ""
node = "node-a"
concurrency = 7
http = "127.0.0.1:9876"
auth_token = "s3cret"
transport = "unix"
socket_dir = "socks"
tcp_port_range = [50000, 50100]
default_heartbeat_timeout = 12
python_path = [".", "lib"]
workflows = ["mypkg.flows:onboarding"]

[jobs.process-video]
command = "python"
args = ["-m", "video_processor"]
cwd = "./workers"
env = { FOO = "bar" }
heartbeat_timeout = 60
timeout = 3600
max_attempts = 3
concurrency = 2

[jobs.local-script]
command = "bin/run.sh"
"""


def write(folder: Path, text: str | bytes, name: str = CONFIG_NAME) -> Path:
    path = folder / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def config_error(path: Path) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(path)
    return str(info.value)


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """A short folder under /tmp, so socket paths inside it fit the AF_UNIX limit."""
    folder = Path(short_socket_dir())
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(autouse=True)
def _no_token_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("JOBVISOR_AUTH_TOKEN", raising=False)


# --- valid files ------------------------------------------------------------------------


def test_full_file_resolves_every_key_and_relative_path_against_its_folder(tmp_path, monkeypatch):
    """Every documented top-level key is read; relative paths resolve against the file's folder, not cwd."""
    # A short folder: socket_dir resolves under it and must fit a Unix socket address,
    # whatever the length of pytest's tmp_path on this machine.
    conf_dir = Path(short_socket_dir()) / "conf"
    conf_dir.mkdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    settings = load_config(write(conf_dir, FULL))
    base = conf_dir.resolve()
    assert settings.source == str(conf_dir / CONFIG_NAME)
    assert settings.base_dir == base
    assert settings.state_dir == base / "state"
    assert settings.db_path == base / "db" / "jobs.db"
    assert settings.socket_dir == base / "socks"
    assert settings.log_dir == base / "state" / "logs"
    assert settings.persist is True and settings.store == "sqlite" and settings.dsn == ""
    assert settings.node == "node-a"
    assert settings.concurrency == 7
    assert (settings.http_host, settings.http_port) == ("127.0.0.1", 9876)
    assert settings.auth_token == "s3cret"
    assert settings.transport == "unix"
    assert settings.tcp_port_range == (50000, 50100)
    assert settings.default_heartbeat_timeout == 12.0
    assert settings.python_path == (base, base / "lib")
    assert settings.workflows == ("mypkg.flows:onboarding",)

    video = settings.jobs["process-video"]
    assert video.command == "python"  # no slash: looked up on PATH, left alone
    assert video.args == ("-m", "video_processor")
    assert video.cwd == str(base / "workers")
    assert dict(video.env) == {"FOO": "bar"}
    assert (video.heartbeat_timeout, video.timeout) == (60.0, 3600.0)
    assert (video.max_attempts, video.concurrency) == (3, 2)

    local = settings.jobs["local-script"]
    assert local.command == str(base / "bin" / "run.sh")  # relative with a slash: resolved
    assert local.cwd == str(base)  # default cwd: the config's folder
    assert local.heartbeat_timeout == 12.0  # default_heartbeat_timeout
    assert local.timeout is None and local.concurrency is None


def test_defaults_when_no_file_is_in_the_working_directory(tmp_path, monkeypatch):
    """Without ./jobvisor.toml the defaults apply, rooted in the working directory."""
    monkeypatch.chdir(tmp_path)
    settings = load_config()
    assert settings.source == "<defaults>"
    assert settings.state_dir == tmp_path.resolve() / ".jobvisor"
    assert settings.db_path == tmp_path.resolve() / ".jobvisor" / "jobs.db"
    assert settings.store == "sqlite" and settings.persist
    assert (settings.http_host, settings.http_port) == ("127.0.0.1", 8765)
    assert settings.concurrency == 5
    assert settings.tcp_port_range == (49152, 65535)
    assert settings.default_heartbeat_timeout == 30.0
    assert settings.jobs == {}
    assert settings.node == socket.gethostname()


def test_jobvisor_toml_in_the_working_directory_is_found(tmp_path, monkeypatch):
    """With no path given, ./jobvisor.toml is read."""
    write(tmp_path, "concurrency = 2\n")
    monkeypatch.chdir(tmp_path)
    settings = load_config()
    assert settings.concurrency == 2
    assert settings.source.endswith(CONFIG_NAME)


def test_persist_false_means_the_memory_store(tmp_path):
    """persist = false selects the memory store whatever store says."""
    assert load_config(write(tmp_path, "persist = false\n")).store == "memory"


def test_empty_http_disables_the_api(tmp_path):
    """http = "" turns the HTTP server off."""
    settings = load_config(write(tmp_path, 'http = ""\n'))
    assert settings.http_host is None


def test_non_loopback_http_is_allowed_with_a_token(tmp_path, monkeypatch):
    """Binding beyond loopback is fine once a token is set, in the file or the environment."""
    settings = load_config(write(tmp_path, 'http = "0.0.0.0:8080"\nauth_token = "t"\n'))
    assert (settings.http_host, settings.http_port) == ("0.0.0.0", 8080)
    monkeypatch.setenv("JOBVISOR_AUTH_TOKEN", "from-env")
    settings = load_config(write(tmp_path, 'http = "[::]:8080"\n'))
    assert (settings.http_host, settings.auth_token) == ("::", "from-env")


# --- errors name the file and the key ---------------------------------------------------


@pytest.mark.parametrize(
    ("text", "key", "problem"),
    [
        ("bogus = 1\n", "bogus", "unknown key"),
        ('[jobs.x]\ncommand = "c"\nbogus = 1\n', "jobs.x.bogus", "unknown key"),
        ('concurrency = "5"\n', "concurrency", "valid integer"),
        ('[jobs.x]\ncommand = "c"\nmax_attempts = 2.5\n', "jobs.x.max_attempts", "integer"),
        ('[jobs.x]\ncommand = "c"\nenv = { A = 1 }\n', "jobs.x.env.A", "valid string"),
        ('[jobs.x]\ncommand = "c"\nargs = "-v"\n', "jobs.x.args", "valid list"),
        ("[jobs.x]\nargs = []\n", "jobs.x.command", "Field required"),
        ('[jobs.x]\ncommand = "c"\nconcurrency = 0\n', "jobs.x.concurrency", "greater than"),
        ('[jobs."a b"]\ncommand = "c"\n', "jobs", "invalid job name"),
        ("persist = 1\n", "persist", "valid boolean"),
        ('transport = "udp"\n', "transport", "'unix' or 'tcp'"),
        ("tcp_port_range = [60000, 50000]\n", "tcp_port_range", "runs backwards"),
        ("tcp_port_range = [1, 2, 3]\n", "tcp_port_range", "at most 2"),
        ("default_heartbeat_timeout = 0\n", "default_heartbeat_timeout", "greater than 0"),
    ],
)
def test_invalid_values_name_the_file_and_the_key_path(tmp_path, text, key, problem):
    """Each validation error reads ``FILE: KEY.PATH: problem``."""
    path = write(tmp_path, text)
    message = config_error(path)
    assert message.startswith(f"{path}: {key}: "), message
    assert problem in message


def test_every_problem_in_a_file_is_reported_at_once(tmp_path):
    """Several bad keys give one error with one line per key."""
    path = write(tmp_path, 'bogus = 1\nconcurrency = "5"\n')
    lines = config_error(path).splitlines()
    assert sorted(lines) == [
        f"{path}: bogus: unknown key",
        f"{path}: concurrency: Input should be a valid integer (got '5')",
    ]


def test_invalid_toml_reports_the_line(tmp_path):
    """A TOML syntax error names the file and where in it."""
    path = write(tmp_path, 'concurrency = 5\nhttp = "127.0.0.1:1\nnode = "x"\n')
    message = config_error(path)
    assert message.startswith(f"{path}: invalid TOML: ")
    assert "line 2" in message


def test_a_file_that_is_not_utf8_is_refused(tmp_path):
    """Bytes that are not UTF-8 are a clear error, not a UnicodeDecodeError."""
    path = write(tmp_path, b'node = "\xff\xfe"\n')
    assert config_error(path) == f"{path}: not UTF-8 text"


def test_a_missing_file_is_refused_with_its_name(tmp_path):
    """--config pointing nowhere names the path and says why."""
    path = tmp_path / "nope.toml"
    assert config_error(path) == f"{path}: cannot read config file: No such file or directory"


def test_a_socket_dir_too_long_for_unix_sockets_is_refused(tmp_path):
    """A socket_dir whose socket paths would pass the AF_UNIX limit is refused up front."""
    long_dir = "/tmp/" + "d" * 80
    path = write(tmp_path, f'socket_dir = "{long_dir}"\n')
    message = config_error(path)
    assert message.startswith(f"{path}: socket_dir: {long_dir} is too long")
    assert "Unix socket" in message and "107" in message
    # With TCP workers the folder holds no sockets, so its length does not matter.
    assert load_config(write(tmp_path, f'socket_dir = "{long_dir}"\ntransport = "tcp"\n'))


def test_http_beyond_loopback_without_a_token_is_refused(tmp_path):
    """Binding a non-loopback address needs auth_token (or JOBVISOR_AUTH_TOKEN)."""
    path = write(tmp_path, 'http = "0.0.0.0:8765"\n')
    message = config_error(path)
    assert message.startswith(f"{path}: http: binding 0.0.0.0 (not loopback) requires auth_token")


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("localhost", 'expected "HOST:PORT"'),
        (":8765", 'expected "HOST:PORT"'),
        ("127.0.0.1:http", 'expected "HOST:PORT"'),
        ("127.0.0.1:-1", 'expected "HOST:PORT"'),
        ("127.0.0.1:70000", "port 70000 is out of range"),
    ],
)
def test_malformed_http_addresses_are_refused(tmp_path, value, problem):
    """http must be HOST:PORT with a port from 0 to 65535."""
    path = write(tmp_path, f'http = "{value}"\n')
    message = config_error(path)
    assert message.startswith(f"{path}: http: ")
    assert problem in message


def test_postgres_without_dsn_is_refused(tmp_path):
    """store = "postgres" names the missing dsn."""
    path = write(tmp_path, 'store = "postgres"\n')
    assert config_error(path) == f'{path}: dsn: store = "postgres" needs a dsn'


# --- the socket folder --------------------------------------------------------------------


def test_missing_socket_dir_is_created_private(short_dir):
    """A socket folder that does not exist is created (with parents), mode 0700."""
    folder = short_dir / "a" / "b"
    prepare_socket_dir(folder)
    assert folder.is_dir()
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700


def test_existing_private_socket_dir_is_accepted(short_dir):
    """A 0700 folder owned by us passes the check untouched."""
    os.chmod(short_dir, 0o700)
    prepare_socket_dir(short_dir)
    assert stat.S_IMODE(short_dir.stat().st_mode) == 0o700


@pytest.mark.parametrize("mode", [0o755, 0o770, 0o701])
def test_socket_dir_readable_by_others_is_refused(short_dir, mode):
    """A folder others can enter is refused, and the message says how to fix it."""
    os.chmod(short_dir, mode)
    with pytest.raises(ConfigError) as info:
        prepare_socket_dir(short_dir)
    message = str(info.value)
    assert f"mode {mode:04o}" in message
    assert f"chmod 700 {short_dir}" in message


def test_socket_dir_owned_by_another_user_is_refused(short_dir):
    """A folder that belongs to someone else is refused even when its mode is 0700 (as root)."""
    os.chmod(short_dir, 0o700)
    os.chown(short_dir, 12345, -1)
    with pytest.raises(ConfigError) as info:
        prepare_socket_dir(short_dir)
    message = str(info.value)
    assert "belongs to uid 12345" in message and f"uid {os.getuid()}" in message


def test_socket_dir_that_is_a_file_is_refused(short_dir):
    """A plain file where the folder should be is refused as not a directory."""
    path = short_dir / "file"
    path.write_text("x")
    with pytest.raises(ConfigError, match=f"{path} is not a directory"):
        prepare_socket_dir(path)


def test_socket_dir_that_is_a_symlink_is_refused(short_dir):
    """A symlink (even to a private folder) is not trusted as the socket folder."""
    target = short_dir / "real"
    target.mkdir(mode=0o700)
    link = short_dir / "link"
    link.symlink_to(target)
    with pytest.raises(ConfigError, match=f"{link} is not a directory"):
        prepare_socket_dir(link)


def test_a_supervisor_with_an_unsafe_socket_dir_does_not_open(tmp_path, short_dir):
    """Starting a supervisor on a 0755 socket folder fails with the ConfigError, cleanly."""
    os.chmod(short_dir, 0o755)
    settings = make_settings(
        tmp_path / "state",
        {"demo": {"command": sys.executable, "args": ["-c", "pass"]}},
        socket_dir=str(short_dir),
    )
    sv = SupervisorThread(settings)
    with pytest.raises(ConfigError, match=f"chmod 700 {short_dir}"):
        sv.start()
    assert sv.thread is None


# --- worker commands, checked when a supervisor starts ----------------------------------


def executable(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n")
    path.chmod(0o755)
    return path


def command_error(folder: Path, kind: str) -> str:
    settings = load_config(write(folder, f"[jobs.x]\n{kind}\n"))
    with pytest.raises(ConfigError) as info:
        check_commands(settings)
    return str(info.value)


def test_serve_refuses_a_command_that_does_not_exist_naming_file_and_key(tmp_path, short_dir):
    """``jobvisor serve`` exits 5 naming ``jobs.NAME.command``; no attempt is ever made."""
    config = write(
        tmp_path,
        f'http = "127.0.0.1:0"\nsocket_dir = "{short_dir}"\n'
        '[jobs.convert]\ncommand = "/nonexistent/convert"\n',
    )
    result = subprocess.run(
        [sys.executable, "-m", "supervisor", "--config", str(config), "serve"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 5, result.stderr
    assert (
        f"jobvisor: {config}: jobs.convert.command: '/nonexistent/convert' does not exist"
        in result.stderr
    )


def test_a_command_path_relative_to_the_config_folder_is_found(tmp_path):
    """``command = "bin/tool"`` is the file beside the config, whatever the cwd; missing, refused."""
    (tmp_path / "elsewhere").mkdir()
    kind = 'command = "bin/tool"\ncwd = "elsewhere"'
    tool = tmp_path / "bin" / "tool"
    assert f"jobs.x.command: '{tool}' does not exist" in command_error(tmp_path, kind)
    executable(tool)
    check_commands(load_config(write(tmp_path, f"[jobs.x]\n{kind}\n")))


def test_a_bare_command_is_searched_on_the_kinds_path_from_its_cwd(tmp_path):
    """A name without a slash is looked up on the kind's PATH, relative entries from cwd."""
    executable(tmp_path / "work" / "tools" / "convert")
    ok = '[jobs.x]\ncommand = "convert"\ncwd = "work"\nenv = { PATH = "tools" }\n'
    check_commands(load_config(write(tmp_path, ok)))
    message = command_error(tmp_path, 'command = "convert"\ncwd = "work"\nenv = { PATH = "/none" }')
    assert "jobs.x.command: 'convert' is not found on PATH (/none) from cwd" in message
    assert str(tmp_path / "work") in message


def test_a_file_that_is_not_executable_is_refused(tmp_path):
    """A command that exists but cannot be executed is refused, saying so."""
    (tmp_path / "tool").write_text("#!/bin/sh\n")
    os.chmod(tmp_path / "tool", 0o644)
    message = command_error(tmp_path, f'command = "{tmp_path / "tool"}"')
    assert f"jobs.x.command: '{tmp_path / 'tool'}' is not an executable file" in message


def test_a_missing_cwd_is_refused(tmp_path):
    """A kind whose ``cwd`` does not exist could never start: refused, naming the key."""
    message = command_error(tmp_path, 'command = "/bin/true"\ncwd = "gone"')
    assert f"jobs.x.cwd: {tmp_path / 'gone'} is not a folder" in message


def test_every_missing_command_is_reported_at_once(tmp_path):
    """Two bad kinds: both are named in one error."""
    settings = load_config(
        write(tmp_path, '[jobs.a]\ncommand = "/no/a"\n[jobs.b]\ncommand = "/no/b"\n')
    )
    with pytest.raises(ConfigError) as info:
        check_commands(settings)
    assert "jobs.a.command" in str(info.value) and "jobs.b.command" in str(info.value)
