"""The dashboard's routes (docs/dashboard.md): the page, its static files, the summary."""

from __future__ import annotations

import configparser
import fnmatch
from pathlib import Path

import pytest

from supervisor.http.dashboard import STATIC
from supervisor.testing import wait_for
from tests.supervisor.rawhttp import request

ROOT = Path(__file__).resolve().parents[2]
STATIC_DIR = ROOT / "supervisor" / "http" / "static"
BROWSER = {"accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}


def test_a_browser_gets_the_page_without_a_token_and_scripts_the_json_index(start, worker):
    """GET / answers a browser the dashboard's page (no data, so no token needed) and
    any other client the API's JSON index, which still needs the token."""
    sv = start({"demo": worker()})
    page = request(sv, "GET", "/", auth=False, headers=BROWSER)
    assert page.status == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert b'<script type="module" src="/static/app.js">' in page.body
    assert page.headers["referrer-policy"] == "no-referrer"
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert request(sv, "GET", "/", auth=False).status == 401
    index = request(sv, "GET", "/").json()
    assert index["service"] == "jobvisor"
    assert "GET /dashboard/summary" in index["routes"]


@pytest.mark.parametrize(
    ("name", "content_type"),
    [
        ("app.js", "text/javascript; charset=utf-8"),
        ("dashboard.css", "text/css; charset=utf-8"),
        ("favicon.svg", "image/svg+xml"),
        ("index.html", "text/html; charset=utf-8"),
    ],
)
def test_static_files_have_their_type_and_revalidate_with_an_etag(
    start, worker, name, content_type
):
    """Each static file is served public with its content type and an ETag; asked again
    with If-None-Match it is a bodiless 304."""
    sv = start({"demo": worker()})
    first = request(sv, "GET", f"/static/{name}", auth=False)
    assert first.status == 200
    assert first.headers["content-type"] == content_type
    assert first.headers["cache-control"] == "no-cache"
    assert first.body == (STATIC_DIR / name).read_bytes()
    again = request(
        sv, "GET", f"/static/{name}", auth=False, headers={"if-none-match": first.headers["etag"]}
    )
    assert again.status == 304
    assert again.body == b""
    assert (
        request(sv, "GET", f"/static/{name}", auth=False, headers={"if-none-match": '"x"'}).status
        == 200
    )


@pytest.mark.parametrize(
    "path",
    [
        "/static/..%2Fdashboard.py",
        "/static/%2e%2e%2fauth.py",
        "/static/../auth.py",
        "/static/dashboard.py",
        "/static/",
        "/static/.",
        "/static/app.js%00.html",
        "/static/sub/app.js",
    ],
)
def test_nothing_outside_the_static_table_can_be_read(start, worker, path):
    """A name that is not one of the shipped static files — a traversal, an encoded
    slash, a NUL, a subfolder — is a 404 and never another file's bytes."""
    sv = start({"demo": worker()})
    reply = request(sv, "GET", path, auth=False)
    assert reply.status in (401, 404), reply
    assert b"import" not in reply.body and b"def " not in reply.body


def test_the_summary_needs_the_token_and_refuses_bad_parameters(start, worker):
    """The summary holds job data: no token, 401; a bad or unknown parameter, a 400 that
    names it; the supervisor answers normally afterwards."""
    sv = start({"demo": worker()})
    assert request(sv, "GET", "/dashboard/summary", auth=False).status == 401
    bad = request(sv, "GET", "/dashboard/summary?minutes=0")
    assert bad.status == 400
    assert "minutes must be from 1 to 120" in bad.json()["error"]["message"]
    unknown = request(sv, "GET", "/dashboard/summary?since=1")
    assert unknown.status == 400
    assert "'since'" in unknown.json()["error"]["message"]
    assert (
        len(request(sv, "GET", "/dashboard/summary?minutes=5").json()["throughput"]["completed"])
        == 5
    )


@pytest.mark.parametrize("transport", ["unix", "tcp"])
def test_the_summary_counts_running_jobs_stale_ones_and_outcomes(
    start, worker, tmp_path, transport
):
    """Real workers: a running job is counted, one gone silent is listed stale, and a
    completed and a failed job land in the current minute of the throughput chart."""
    sv = start({"demo": worker(heartbeat_timeout=2.0, max_attempts=1)}, transport=transport)
    ready = tmp_path / "ready"
    running = sv.client.submit(
        "demo", {"actions": [["touch", str(ready)], ["wait_file", str(tmp_path / "go")]]}
    )
    silent = sv.client.submit("demo", {"actions": [["stop"]]})
    sv.client.wait(sv.client.submit("demo", {"actions": [["return", 1]]}))
    sv.client.wait(sv.client.submit("demo", {"actions": [["raise", "boom"]]}))
    wait_for(ready.exists, message="the running worker to start")

    def summary() -> dict:
        return request(sv, "GET", "/dashboard/summary").json()

    wait_for(lambda: silent in summary()["stale"], timeout=10, message="the silent job to be stale")
    shown = summary()
    assert shown["unconnected"] == {}  # both workers said hello
    assert shown["counts"]["running"] == 2
    assert running not in shown["stale"]
    assert sum(shown["throughput"]["completed"]) == 1
    assert sum(shown["throughput"]["failed"]) == 1
    assert shown["throughput"]["completed"][-1] + shown["throughput"]["completed"][-2] == 1
    (tmp_path / "go").touch()
    sv.client.wait(running)


def test_a_running_job_whose_worker_has_not_connected_is_listed_unconnected(
    start, worker, tmp_path
):
    """A worker that was started but has not said hello is listed with its process
    state (spawning): its welcome would be no event, so the page learns it here."""
    hold = tmp_path / "hold"
    sv = start({"held": worker("hold.sh", env={"HOLD_FILE": str(hold)}, heartbeat_timeout=30.0)})
    job = sv.client.submit("held")
    wait_for(hold.exists, message="the worker to start")
    assert request(sv, "GET", "/dashboard/summary").json()["unconnected"] == {job: "spawning"}
    sv.client.cancel(job)


def test_a_worker_that_outlived_its_supervisor_is_marked_reattached(start, worker, tmp_path):
    """A worker started by a supervisor that stopped is listed as re-attached by the
    next supervisor on the same state, and a worker that one started is not."""
    kinds = {"demo": worker()}
    state = tmp_path / "state"
    first = start(kinds, state=state)
    ready = tmp_path / "ready"
    old = first.client.submit(
        "demo", {"actions": [["touch", str(ready)], ["wait_file", str(tmp_path / "go")]]}
    )
    wait_for(ready.exists, message="the worker to start")
    first.stop()  # a graceful stop leaves workers running
    second = start(kinds, state=state)
    wait_for(lambda: second.client.get(old)["process_state"] == "running", message="re-attach")
    new = second.client.submit("demo", {"actions": [["wait_file", str(tmp_path / "go")]]})
    wait_for(lambda: second.client.get(new)["process_state"] == "running", message="new worker")
    shown = request(second, "GET", "/dashboard/summary").json()
    assert shown["reattached"] == [old]
    (tmp_path / "go").touch()
    second.client.wait(old)
    second.client.wait(new)


def test_every_static_file_is_package_data():
    """setup.cfg ships every file under supervisor/http/static/, and each is served."""
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    globs = [g.strip() for g in config["options.package_data"]["supervisor.http"].split(",")]
    files = sorted(p.name for p in STATIC_DIR.iterdir() if p.is_file())
    assert files, "no static files found"
    for name in files:
        assert any(fnmatch.fnmatch(f"static/{name}", g) for g in globs), name
        assert name in STATIC, name


def test_the_log_tail_is_the_end_of_the_log_from_a_whole_line(start, worker, tmp_path):
    """A job's log tail is its last bytes from the first whole line, with the offset of
    the log's end to follow it from; an unknown job is a 404 and no token a 401."""
    sv = start({"demo": worker()})
    job = sv.client.submit("demo", {"actions": [["spew", 1], ["log", "info", "the last word"]]})
    sv.client.wait(job)
    log = (sv.settings.log_dir / f"{job}.log").read_bytes()
    reply = request(sv, "GET", f"/dashboard/jobs/{job}/log-tail?bytes=4096")
    assert reply.status == 200
    assert 0 < len(reply.body) <= 4096
    assert log.endswith(reply.body)
    assert log[: len(log) - len(reply.body)].endswith(b"\n")
    assert b"the last word" in reply.body
    assert int(reply.headers["x-log-offset"]) == len(log)
    assert request(sv, "GET", "/dashboard/jobs/nope/log-tail").json()["error"]["code"] == (
        "job_not_found"
    )
    assert request(sv, "GET", f"/dashboard/jobs/{job}/log-tail", auth=False).status == 401
