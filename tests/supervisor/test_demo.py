"""The README's quick start command 1 (``scripts/demo``) runs the example jobs to the end."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_demo_once_runs_every_example_job_to_completion(tmp_path):
    """``scripts/demo --once`` starts a supervisor, runs the example jobs and a workflow, all
    complete, exit 0."""
    # A copy of examples/: the demo's state goes to the copy, never to the user's
    # examples/.jobvisor (where a demo of theirs may be running right now).
    # All of it: every kind in the config must find its program.
    demo = tmp_path / "examples"
    ignore = shutil.ignore_patterns(".jobvisor", "__pycache__")
    shutil.copytree(ROOT / "examples", demo, ignore=ignore)
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOBVISOR_")}
    env["JOBVISOR_DEMO_HTTP"] = "127.0.0.1:0"  # an ephemeral port: never clash with 8765
    env["JOBVISOR_DEMO_DIR"] = str(demo)
    proc = subprocess.Popen(
        [str(ROOT / "scripts" / "demo"), "--once"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        cwd=ROOT,
        env=env,
        start_new_session=True,  # so a hung demo can be killed with its supervisor
    )
    try:
        output, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
    assert proc.returncode == 0, output
    assert "jobvisor listening on http://127.0.0.1:" in output
    assert "jobvisor listening on http://127.0.0.1:8765" not in output
    assert '"thumbnails": [' in output and "owl.png@256" in output  # resize-images result
    assert '"rows": 1234' in output  # flaky-import completed after its retry
    assert "completed [##############################] 100.0%" in output  # --follow's bar
    table = [line for line in output.splitlines() if line.split()[1:3] == ["checksum", "completed"]]
    assert len(table) >= 5
    assert '"shipping": {' in output and '"notification": {' in output  # the workflow's
    assert "all example jobs and the workflow completed" in output
    assert (demo / ".jobvisor" / "jobs.db").exists()
