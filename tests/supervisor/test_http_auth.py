"""The HTTP API needs a token by default: generated on first start, owner-only, read by
the CLI and the client from the config; no auth only when asked, on loopback only."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shutil
import stat
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from supervisor.client import Client, ClientError
from supervisor.errors import ConfigError
from supervisor.testing import ServerProcess, make_settings
from tests.supervisor.rawhttp import request
from tests.supervisor.serverconfig import write_config
from tests.supervisor.test_cli import jobvisor

ROOT = Path(__file__).resolve().parents[2]


def test_every_route_but_healthz_needs_the_generated_token(start, worker):
    """By default a token is generated into state_dir/http.token (0600); without it every
    route answers 401, with it 200; /healthz stays open."""
    sv = start({"demo": worker()})
    token_file = sv.settings.state_dir / "http.token"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    token = token_file.read_text().strip()
    assert sv.client.token == token
    # 256 bits, in hex: never read as an option after --token, never escaped in a URL.
    assert re.fullmatch("[0-9a-f]{64}", token), token
    job_id = sv.client.submit("demo", {"actions": [["hang"]]})
    sv.wait(job_id, "running")
    attempts = [
        ("POST", "/jobs", b'{"name": "demo"}'),
        ("GET", "/jobs", None),
        ("GET", f"/jobs/{job_id}", None),
        ("GET", f"/jobs/{job_id}/logs", None),
        ("POST", f"/jobs/{job_id}/cancel", b""),
        ("GET", "/metrics", None),
    ]
    for method, path, body in attempts:
        for wrong in ("", "not-the-token", token + "x"):
            reply = request(sv, method, path, body, token=wrong, auth=bool(wrong))
            assert reply.status == 401, (method, path, reply.body)
            assert reply.json()["error"]["code"] == "unauthorized"
            assert reply.headers["www-authenticate"] == "Bearer"
    assert request(sv, "GET", "/healthz", auth=False).status == 200
    assert [job["id"] for job in sv.client.list()] == [job_id]  # nothing got in
    assert sv.job(job_id)["status"] == "running"  # nor was anything cancelled


def test_the_token_in_the_query_opens_reads_only(start, worker):
    """?token= authorizes GET and HEAD (a browser cannot set a header), never a POST."""
    sv = start({"demo": worker()})
    token = sv.client.token
    assert request(sv, "GET", f"/jobs?token={token}", auth=False).status == 200
    assert request(sv, "HEAD", f"/jobs?token={token}", auth=False).status == 200
    assert request(sv, "GET", "/jobs?token=wrong", auth=False).status == 401
    refused = request(sv, "POST", f"/jobs?token={token}", b'{"name": "demo"}', auth=False)
    assert refused.status == 401
    assert sv.client.list() == []


def test_the_token_survives_restarts_and_an_explicit_one_wins(start, worker, tmp_path):
    """A restart on the same state reuses the generated token; auth_token replaces it."""
    state = tmp_path / "state"
    first = start({"demo": worker()}, state=state)
    token = first.client.token
    first.stop()
    second = start({"demo": worker()}, state=state)
    assert second.client.token == token
    assert second.client.list() == []
    second.stop()
    third = start({"demo": worker()}, state=state, auth_token="chosen-by-the-admin")
    assert third.client.token == "chosen-by-the-admin"
    assert third.client.list() == []
    with pytest.raises(ClientError) as refused:
        Client(third.client.url, token).list()
    assert refused.value.status == 401


def test_a_token_file_others_can_read_is_taken_back(start, worker, tmp_path):
    """A token file left readable by others is made owner-only again at start."""
    state = tmp_path / "state"
    state.mkdir()
    (state / "http.token").write_text("an-old-token\n")
    (state / "http.token").chmod(0o644)
    sv = start({"demo": worker()}, state=state)
    assert stat.S_IMODE((state / "http.token").stat().st_mode) == 0o600
    assert sv.client.token == "an-old-token"
    assert sv.client.list() == []


def test_no_auth_is_an_explicit_loopback_only_setting(start, worker, tmp_path, caplog):
    """http_auth = "none" opens the API, with a warning; off loopback it is refused."""
    with caplog.at_level(logging.WARNING, logger="supervisor"):
        sv = start({"demo": worker()}, http_auth="none")
    assert "open to every local user" in caplog.text
    assert request(sv, "GET", "/jobs", auth=False).status == 200
    assert not (sv.settings.state_dir / "http.token").exists()
    with pytest.raises(ConfigError, match='http_auth: "none" is allowed on a loopback'):
        make_settings(tmp_path / "other", http="0.0.0.0:0", http_auth="none", auth_token="x")


def test_serve_prints_a_browser_url_with_the_token(marker, tmp_path):
    """The listening line keeps the URL first and adds one a browser can open; the
    client made from the config reads the token without being told."""
    config = write_config(tmp_path, marker)
    server = ServerProcess(config, env={"JOBVISOR_AUTH_TOKEN": ""}).start()
    try:
        token = (tmp_path / "state" / "http.token").read_text().strip()
        assert (
            server.line == f"jobvisor listening on {server.url} (open {server.url}/?token={token})"
        )
        index = Client(server.url)._json("GET", f"/?token={token}")
        assert index["service"] == "jobvisor"
        assert server.client.list() == []
    finally:
        server.stop()


# --- another local user ------------------------------------------------------------------


@pytest.fixture
def stranger() -> Iterator[str]:
    """A fresh unprivileged local user (the test runs as root), removed afterwards."""
    if os.geteuid() != 0:
        pytest.skip("creating another local user needs root")
    useradd, userdel = shutil.which("useradd"), shutil.which("userdel")
    if useradd is None or userdel is None:
        pytest.skip("useradd/userdel are not installed")
    name = f"jvt{uuid.uuid4().hex[:8]}"
    subprocess.run(
        [useradd, "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
        check=True,
        capture_output=True,
    )
    try:
        yield name
    finally:
        subprocess.run([userdel, name], check=False, capture_output=True)


STRANGER_SCRIPT = """
import json, sys
sys.path.insert(0, sys.argv[1])  # supervisor.client: standard library only
from supervisor.client import Client, ClientError
url, job_id, token_file = sys.argv[2:5]
out = {}
try:
    open(token_file).read()
    out["token_file"] = "read"
except OSError as exc:
    out["token_file"] = type(exc).__name__
def attempt(name, fn):
    try:
        fn()
        out[name] = 200
    except ClientError as exc:
        out[name] = exc.status
for token in ("", "guess"):
    client = Client(url, token)
    attempt("submit " + token, lambda: client.submit("demo"))
    attempt("list " + token, lambda: client.list())
    attempt("get " + token, lambda: client.get(job_id))
    attempt("logs " + token, lambda: client.logs(job_id))
    attempt("cancel " + token, lambda: client.cancel(job_id))
attempt("browser", lambda: Client(url)._json("GET", "/jobs?token=guess"))
attempt("health", lambda: Client(url).health())
print(json.dumps(out))
"""


def test_another_local_user_can_do_nothing_but_the_owner_needs_no_token(stranger, marker, tmp_path):
    """Another user can neither read the token nor submit, list, read or cancel (401);
    the owner's CLI, given only the config, works."""
    python = shutil.which("python3", path="/usr/local/bin:/usr/bin:/bin")
    if python is None:
        pytest.skip("no python3 the other user can run")
    # A state folder others may enter: only the token file's own mode protects it.
    base = Path(tempfile.mkdtemp(prefix="jv-auth-"))
    base.chmod(0o755)
    try:
        config = write_config(base, marker)
        server = ServerProcess(config, log=tmp_path / "serve.log", env={"JOBVISOR_AUTH_TOKEN": ""})
        server.start()
        job_id = ""
        try:
            (base / "state").chmod(0o755)
            owner = jobvisor(
                "--config",
                str(config),
                "--url",  # the config's port is 0; the token is not given
                server.url,
                "submit",
                "demo",
                "--data",
                json.dumps({"actions": [["hang"]]}),
                cwd=tmp_path,
            )
            assert owner.returncode == 0, owner.stderr
            job_id = owner.stdout.strip()
            tried = subprocess.run(
                [
                    python,
                    "-I",
                    "-c",
                    STRANGER_SCRIPT,
                    str(ROOT),
                    server.url,
                    job_id,
                    str(base / "state" / "http.token"),
                ],
                capture_output=True,
                text=True,
                timeout=60,
                cwd="/",
                check=False,
                user=stranger,
                group=stranger,
                extra_groups=[],
                env={"PATH": "/usr/bin:/bin", "HOME": "/"},
            )
            assert tried.returncode == 0, tried.stderr
            results = json.loads(tried.stdout)
            assert results.pop("token_file") == "PermissionError"
            assert results.pop("health") == 200
            assert set(results.values()) == {401}, results
            listed = jobvisor(
                "jobs", "--json", "--config", str(config), "--url", server.url, cwd=tmp_path
            )
            assert listed.returncode == 0, listed.stderr
            jobs = json.loads(listed.stdout)
            assert [(j["id"], j["status"]) for j in jobs] == [(job_id, "running")]
        finally:
            if job_id:
                with contextlib.suppress(ClientError):
                    server.client.cancel(job_id)
            server.stop()
    finally:
        shutil.rmtree(base, ignore_errors=True)
