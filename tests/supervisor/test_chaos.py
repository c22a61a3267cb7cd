"""Chaos: kill -9 the supervisor again and again, at chosen and random moments.

Every job must end exactly once with its own result: none lost, none run to the end
twice. The ledger file records each time a worker actually did a job's work.
"""

from __future__ import annotations

import logging
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from supervisor.testing import ServerProcess, live_workers, wait_for
from tests.supervisor.serverconfig import write_config

log = logging.getLogger(__name__)


def test_thirty_jobs_survive_five_kills_at_any_moment(tmp_path: Path, marker: str):
    """32 jobs, five kill -9s (mid-start, mid-spawn, mid-ack, two at random): all exactly once."""
    rng = random.Random(20261125)
    config = write_config(tmp_path, marker, concurrency=8)
    ledger = tmp_path / "ledger"
    count = 32
    began = time.monotonic()

    server = ServerProcess(config).start()
    ids = []
    for i in range(count):
        actions = [
            ["progress", 20, "working"],
            ["sleep", round(rng.uniform(0.1, 0.6), 3)],
            ["ledger", str(ledger)],
            ["return", {"i": i}],
        ]
        ids.append(server.client.submit("demo", {"actions": actions}))
    time.sleep(rng.uniform(0.1, 0.4))
    server.kill()  # 1: at a random moment, jobs starting and running

    for point in ("start:2", "spawn:3", "outcome:2"):  # 2-4: at the worst moments
        crashed = subprocess.run(
            [sys.executable, "-m", "supervisor", "--config", str(config), "serve"],
            env={**os.environ, "JOBVISOR_CRASH_AT": point},
            capture_output=True,
            timeout=60,
            check=False,
        )
        assert crashed.returncode == -signal.SIGKILL, crashed.stderr[-2000:]
        log.warning("supervisor crashed itself at %s", point)

    server = ServerProcess(config).start()
    time.sleep(rng.uniform(0.2, 0.8))
    server.kill()  # 5: random again

    server = ServerProcess(config).start()
    try:
        results = {job_id: server.client.wait(job_id, timeout=60) for job_id in ids}
        elapsed = time.monotonic() - began
        log.warning("chaos: %d jobs done in %.1f s across 5 kills", count, elapsed)
        for i, job_id in enumerate(ids):
            job = results[job_id]
            assert job["status"] == "completed", job
            assert job["result"] == {"i": i}
        done = Counter(line.split()[0] for line in ledger.read_text().splitlines())
        twice = {job_id: n for job_id, n in done.items() if n != 1}
        assert not twice, f"work done more than once: {twice}"
        assert set(done) == set(ids)
        wait_for(lambda: not list(live_workers(marker)), timeout=20, message="every worker to exit")
        assert elapsed < 60
    finally:
        server.kill()


def test_live_workers_are_never_lost_to_long_outages_or_wall_clock_steps(tmp_path, marker):
    """heartbeat_timeout 0.5, an 8.4 s outage, then +5 min of wall clock: nothing re-runs.

    The outage outlasts the workers' 5 s of fast retries: they are backing off, their
    next tries 10.15 s and 12.15 s into it, when the supervisor is back at about 8.7 s;
    some have finished and wait to deliver their result. The clock step happens while
    the supervisor is down, as after a VM resume.
    """
    rng = random.Random(20261129)
    config = write_config(tmp_path, marker, concurrency=12, heartbeat_timeout=0.5)
    ledger = tmp_path / "ledger"
    count = 12
    server = ServerProcess(config).start()
    ids = []
    for i in range(count):
        actions = [
            ["progress", 10, "working"],
            ["touch", str(tmp_path / f"ready-{i}")],
            ["sleep", round(rng.uniform(0.5, 11.0), 3)],
            ["ledger", str(ledger)],
            ["return", {"i": i}],
        ]
        ids.append(server.client.submit("demo", {"actions": actions}))
    wait_for(
        lambda: all((tmp_path / f"ready-{i}").exists() for i in range(count)),
        timeout=30,
        message="every worker to start",
    )
    server.kill()
    time.sleep(8.4)  # the outage itself is what is tested: longer than the fast retries
    server = ServerProcess(config).start()
    wait_for(
        lambda s=server: all(s.client.get(j)["process_state"] != "orphaned" for j in ids),
        timeout=30,
        message="every orphan to come back or be judged",
    )
    server.kill()
    server = ServerProcess(config, env={"JOBVISOR_WALL_OFFSET": "300"}).start()
    try:
        results = {job_id: server.client.wait(job_id, timeout=60) for job_id in ids}
        for i, job_id in enumerate(ids):
            job = results[job_id]
            text = (tmp_path / "state" / "logs" / f"{job_id}.log").read_text()
            assert job["status"] == "completed", (job, text)
            assert job["result"] == {"i": i} and job["attempts"] == 1, (job, text)
            assert "worker lost" not in text, text
        done = Counter(line.split()[0] for line in ledger.read_text().splitlines())
        assert done == dict.fromkeys(ids, 1)
        wait_for(lambda: not list(live_workers(marker)), timeout=20, message="every worker to exit")
    finally:
        server.kill()
