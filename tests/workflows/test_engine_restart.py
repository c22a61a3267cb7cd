"""Instances in a long step survive a kill -9 of a real ``jobvisor serve`` (docs/workflows.md)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from supervisor.config import load_config
from supervisor.testing import (
    TEST_RUN_VAR,
    ServerProcess,
    SupervisorThread,
    make_settings,
    short_socket_dir,
    wait_for,
)
from tests.workflows.conftest import Modules
from tests.workflows.enginehelpers import COUNTING, Flows

LONG = """
import time
from supervisor.workflows import workflow


def long(value, ctx):
    count("long-" + ctx.instance["id"])
    while not (COUNTS / "release").exists():
        time.sleep(0.05)
    return {"n": value["n"]}


def after(value, ctx):
    count("after-" + ctx.instance["id"])
    return {"done": value["n"]}


flows = [workflow("long").task("long", handler=long).task("after", handler=after).build()]
"""


def test_instances_in_a_long_step_complete_once_across_kill_9(
    modules: Modules, marker: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Three instances wait in a step while serve is killed -9 twice: each step job
    re-attaches every time (its log says "worker reconnected", the last supervisor emits
    job.reconnected), each instance completes, and each handler ran exactly once. The
    instances are started by an embedded supervisor on the same state, stopped gracefully
    (workers keep running), before serve takes over; an embedded one takes over last."""
    counts = tmp_path / "counts"
    counts.mkdir()
    monkeypatch.setenv(TEST_RUN_VAR, marker)
    monkeypatch.setenv("ENGINE_COUNTS", str(counts))
    module = modules.write(COUNTING + LONG)
    config = tmp_path / "jobvisor.toml"
    config.write_text(
        textwrap.dedent(f"""
        state_dir = "state"
        http = "127.0.0.1:0"
        socket_dir = "{short_socket_dir()}"
        flush_interval = 0.1
        kill_grace = 1.0
        workflow_pool_size = 1
        workflows = ["{module}:flows"]
        python_path = ["{modules.folder}"]
        """)
    )
    settings = load_config(config)
    sv = SupervisorThread(settings).start()
    try:
        engine = sv.engine
        assert engine is not None
        ids = [sv.call(lambda n=n: engine.start("long", {"n": n}).id) for n in range(3)]
        wait_for(
            lambda: all((counts / f"long-{i}").exists() for i in ids), message="three long steps"
        )
        jobs = sv.call(lambda: [engine.get(i).steps["long"].job_id for i in ids])  # type: ignore[union-attr]
    finally:
        sv.stop()
    server = ServerProcess(config).start()
    logs = [settings.log_dir / f"{job}.log" for job in jobs]

    def reconnections(count: int) -> bool:
        return all(
            log.exists() and log.read_text().count("worker reconnected") >= count for log in logs
        )

    try:
        wait_for(lambda: reconnections(1), timeout=30, message="the steps to re-attach to serve")
        server.kill()  # SIGKILL
        server = ServerProcess(config).start()
        wait_for(lambda: reconnections(2), timeout=30, message="the steps to re-attach again")
    finally:
        server.kill()  # SIGKILL again: the last supervisor is in-process, to see its events
    last = SupervisorThread(settings).start()
    try:
        flows = Flows(last, counts)
        wait_for(
            lambda: all("job.reconnected" in last.event_names(job) for job in jobs),
            timeout=30,
            message="job.reconnected for each step",
        )
        (counts / "release").write_text("")
        for instance_id in ids:
            done = flows.wait(instance_id)
            assert done.status == "completed", done.error
            assert done.output == {"done": done.input["n"]}
            assert (counts / f"long-{instance_id}").read_text() == "x"  # ran exactly once
            assert (counts / f"after-{instance_id}").read_text() == "x"
            assert flows.events(instance_id)[-1] == "workflow.completed"
    finally:
        last.stop()


REARMED = """
import time
from supervisor.workflows import workflow


def flaky(value, ctx):
    count("flaky")
    if len((COUNTS / "flaky").read_text()) < 2:
        raise ConnectionError("down")
    return {"ok": True}


def hang(value, ctx):
    count("hang")
    time.sleep(60)


flows = [
    workflow("retry-later").task("t", handler=flaky, retry={"max_attempts": 2, "interval": 1.5})
    .build(),
    workflow("deadline").timeout(2).task("t", handler=hang).build(),
]
"""


def test_a_retry_and_a_workflow_timeout_are_re_armed_after_a_restart(
    modules: Modules, marker: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A step waiting for its retry and an instance with a deadline, across a graceful
    stop: the next supervisor retries the step at retry_at and times the instance out."""
    counts = tmp_path / "counts"
    counts.mkdir()
    monkeypatch.setenv(TEST_RUN_VAR, marker)
    monkeypatch.setenv("ENGINE_COUNTS", str(counts))
    module = modules.write(COUNTING + REARMED)
    settings = make_settings(
        tmp_path / "state",
        workflows=[f"{module}:flows"],
        python_path=[str(modules.folder)],
        workflow_pool_size=0,
    )
    first = SupervisorThread(settings).start()
    try:
        engine = first.engine
        assert engine is not None
        retried = first.call(lambda: engine.start("retry-later", {}).id)
        timed = first.call(lambda: engine.start("deadline", {}).id)

        def waiting() -> bool:
            found = first.call(lambda: engine.get(retried))
            return found is not None and found.steps["t"].status == "waiting_retry"

        wait_for(waiting, message="the step to wait for its retry")
        wait_for((counts / "hang").exists, message="the long step to run")
    finally:
        first.stop()
    second = SupervisorThread(settings).start()
    try:
        flows = Flows(second, counts)
        done = flows.wait(retried)
        assert done.status == "completed", done.error
        assert flows.runs("flaky") == 2
        timed_out = flows.wait(timed)
        assert timed_out.status == "failed"
        assert timed_out.error is not None
        assert timed_out.error["message"] == "timed out after 2 s"
    finally:
        second.stop()


def test_serve_with_a_bad_workflow_spec_exits_5_naming_it(tmp_path: Path) -> None:
    """A workflows entry that names no module stops serve with the config exit code."""
    config = tmp_path / "jobvisor.toml"
    config.write_text(
        textwrap.dedent(f"""
        state_dir = "state"
        http = "127.0.0.1:0"
        socket_dir = "{short_socket_dir()}"
        workflows = ["no_such_module_here:flows"]
        """)
    )
    proc = subprocess.run(
        [sys.executable, "-m", "supervisor", "--config", str(config), "serve"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 5, proc.stderr
    assert "no_such_module_here:flows" in proc.stderr
    assert "workflows" in proc.stderr
