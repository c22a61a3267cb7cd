"""The dashboard in a real headless Chromium against a real ``jobvisor serve``.

One supervisor process per test (killed with SIGKILL and started again on the same port
to check recovery), real workers, the example order workflow, and one browser for the
session. Screenshots land in the test-artifacts folder (tests/dashboard/browser.py).
"""

from __future__ import annotations

import json
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from supervisor.testing import TEST_RUN_VAR, ServerProcess, wait_for
from tests.dashboard.browser import Page, new_profile, start_chromium
from tests.supervisor.serverconfig import WORKERS, write_serve_config

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def page() -> Iterator[Page]:
    """One headless Chromium for the whole session (starting one costs a second or two)."""
    with new_profile() as profile:
        driver = start_chromium(Path(profile))
        try:
            yield Page(driver)
        finally:
            driver.quit()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def write_config(tmp_path: Path, marker: str, transport: str) -> Path:
    """A config on a fixed free port (a restart must come back on the same one), with
    the scripted test worker and the example order workflow."""
    return write_serve_config(
        tmp_path,
        f"""workflow_pool_size = 1
python_path = ["{ROOT / "examples" / "workflows"}"]
workflows = ["orders:process_order"]

[jobs.demo]
command = "{sys.executable}"
args = ["{WORKERS / "scripted.py"}"]
env = {{ {TEST_RUN_VAR} = "{marker}" }}
heartbeat_timeout = 5.0
max_attempts = 1
""",
        transport=transport,
        http=f"127.0.0.1:{free_port()}",
    )


def job_row(job_id: str) -> str:
    return f"document.querySelector('[data-job=\"{job_id}\"]')"


def bar_value(job_id: str) -> str:
    """The running row's progress bar value (a string), or null."""
    return f"{job_row(job_id)}?.querySelector('[role=progressbar]')?.getAttribute('aria-valuenow')"


@pytest.mark.parametrize("transport", ["unix", "tcp"])
def test_the_dashboard_shows_jobs_and_workflows_live_and_recovers_after_kill_9(
    page: Page, tmp_path: Path, marker: str, transport: str
) -> None:
    """A running job's bar advances, a completed and a failed job show with the error (as
    text: markup in it never runs), a workflow instance's steps show their states, the
    page asks for a token when its URL has none, a job's panel shows its log and
    attempts and its cancel button stops it; after kill -9 and a restart on the same
    port the page reconnects by itself and catches up (the bar moves on, the job is
    marked re-attached, then completes)."""
    config = write_config(tmp_path, marker, transport)
    server = ServerProcess(config, env={TEST_RUN_VAR: marker}).start()
    gate = tmp_path / "gate"

    def actions_file(step: str) -> str:
        return str(gate.with_name(f"gate-{step}"))

    try:
        client = server.client
        long_id = client.submit(
            "demo",
            {
                "actions": [
                    ["progress", 10, "warming up"],
                    ["wait_file", actions_file("1")],
                    ["progress", 45, "half way"],
                    ["wait_file", actions_file("2")],
                    ["progress", 80, "after the restart"],
                    ["wait_file", actions_file("3")],
                    ["return", {"rows": 3}],
                ]
            },
        )
        ok_id = client.submit("demo", {"actions": [["log", "info", "all good"], ["return", 1]]})
        markup = "<img src=x onerror=window.pwned=1>"  # shown as text, never run
        bad_id = client.submit("demo", {"actions": [["raise", f"{markup} disk on fire"]]})
        held_id = client.submit("demo", {"actions": [["wait_file", actions_file("never")]]})
        order = client.start_workflow("process-order", {"order_id": "A-1", "quantity": 2})

        # Without the token in its URL the page asks for it, and refuses a wrong one.
        page.open(server.url + "/")
        page.until("!document.getElementById('login').hidden", message="the token form")
        page.js("document.getElementById('token').value = 'wrong'")
        page.js("document.getElementById('login').requestSubmit()")
        page.until(
            "document.getElementById('login-error').textContent.includes('refused')",
            message="a wrong token refused",
        )
        browser_url = server.line.split("(open ")[1].rstrip(")")
        page.open(browser_url)
        assert "token=" not in page.js("location.href"), "the token stays in the address bar"
        page.until("document.getElementById('conn').dataset.state === 'live'", message="stream")

        assert page.until(f"{bar_value(long_id)} === '10.0'", message="the bar at 10%")
        (tmp_path / "gate-1").touch()
        page.until(f"{bar_value(long_id)} === '45.0'", message="the bar to advance to 45%")
        assert "half way" in page.js(f"{job_row(long_id)}.textContent")

        page.until(f"{job_row(ok_id)}?.classList.contains('status-completed')", message="ok")
        page.until(f"{job_row(bad_id)}?.classList.contains('status-failed')", message="failed")
        assert f"{markup} disk on fire" in page.js(f"{job_row(bad_id)}.textContent")
        assert page.js("window.pwned === undefined && !document.querySelector('img')")

        wf = f"document.querySelector('[data-instance=\"{order}\"]')"
        page.until(f"{wf}?.classList.contains('status-completed')", message="the workflow")
        steps = page.js(
            f"Object.fromEntries([...{wf}.querySelectorAll('.step')]"
            ".map(s => [s.dataset.step, s.dataset.status]))"
        )
        assert steps["validate"] == "completed"
        assert steps["fulfill"] == "completed"
        assert steps["ship"] == "completed" and steps["notify"] == "completed"
        assert steps["backorder"] == "unreached"  # the choice took the other branch
        page.screenshot(f"dashboard-{transport}")
        # A step opens the panel of the job that ran it.
        page.js(f"{wf}.querySelector('[data-step=\"validate\"]').click()")
        page.until(
            "document.getElementById('d-title').textContent.includes('workflow-step')",
            message="the validate step's job in the panel",
        )

        # The failed job's panel: its error, the supervisor's attempt lines, its log.
        page.js(f"{job_row(bad_id)}.click()")
        page.until(
            "document.getElementById('d-log').textContent.includes('disk on fire')",
            message="the failed job's log in its panel",
        )
        assert "attempt 1 of 1" in page.js("document.getElementById('d-attempts').textContent")
        assert not page.js("document.getElementById('d-retry').hidden")
        page.screenshot(f"job-{transport}")
        # Retry runs the failed job again: a second attempt, same id, no error shown.
        page.js("document.getElementById('d-retry').click()")
        wait_for(
            lambda: server.client.get(bad_id)["attempts"] == 2,
            timeout=30,
            message="the retried job's second attempt",
        )
        assert page.js("document.getElementById('d-action-error').textContent") == ""
        # Cancel from a running job's panel stops it.
        page.js(f"location.hash = 'job/{held_id}'")
        page.until(
            "!document.getElementById('d-cancel').hidden"
            " && document.getElementById('d-title').textContent.includes('running')",
            message="the running job's panel with its cancel button",
        )
        page.js("document.getElementById('d-cancel').click()")
        page.until(f"{job_row(held_id)}?.classList.contains('status-cancelled')", message="cancel")
        assert server.client.get(held_id)["status"] == "cancelled"
        page.js("document.getElementById('d-close').click()")

        # A burst of outcomes (read back as lists, not one by one) all show.
        burst = [client.submit("demo", {"actions": [["return", n]]}) for n in range(12)]
        shown = " && ".join(f"{job_row(j)}?.classList.contains('status-completed')" for j in burst)
        page.until(shown, message="a burst of twelve outcomes")

        server.kill()  # SIGKILL: the worker lives on and re-attaches to the next one
        page.until(
            "document.getElementById('conn').dataset.state !== 'live'",
            message="the page to notice the supervisor is gone",
        )
        server = ServerProcess(config, env={TEST_RUN_VAR: marker}).start()
        wait_for(
            lambda: server.client.get(long_id)["process_state"] == "running",
            timeout=30,
            message="the worker to re-attach",
        )
        page.until(
            "document.getElementById('conn').dataset.state === 'live'",
            timeout=30,
            message="the page to reconnect by itself",
        )
        (tmp_path / "gate-2").touch()
        page.until(f"{bar_value(long_id)} === '80.0'", message="progress after the restart")
        page.until(
            f"{job_row(long_id)}?.querySelector('.badge-reattached')",
            message="the re-attached mark",
        )
        page.screenshot(f"after-restart-{transport}")
        (tmp_path / "gate-3").touch()
        page.until(f"{job_row(long_id)}?.classList.contains('status-completed')", message="done")
        assert json.loads(json.dumps(server.client.get(long_id)["result"])) == {"rows": 3}
    finally:
        server.kill()
