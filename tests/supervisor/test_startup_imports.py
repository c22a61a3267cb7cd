"""What a supervisor imports to start (docs/bench.md, "startup"): ``prometheus_client`` only
with the first scrape of ``/metrics``, the worker library only inside a pool worker.

Each check runs in a fresh interpreter, since this one has imported everything already.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.supervisor.serverconfig import write_config

ROOT = Path(__file__).resolve().parents[2]
LAZY = ("prometheus_client", "jobvisor_worker")


def _fresh(code: str, *args: str) -> dict[str, object]:
    """Run ``code`` in a fresh interpreter from the repository; the JSON it printed last."""
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result: dict[str, object] = json.loads(proc.stdout.splitlines()[-1])
    return result


def test_importing_serve_loads_neither_prometheus_client_nor_the_worker_library():
    """``import supervisor.serve`` (what ``jobvisor serve`` imports) leaves both unloaded."""
    loaded = _fresh(
        """
        import json, sys
        import supervisor.serve
        print(json.dumps({name: name in sys.modules for name in sys.argv[1:]}))
        """,
        *LAZY,
    )
    assert loaded == dict.fromkeys(LAZY, False)


def test_pool_worker_module_loads_the_worker_library_only_when_it_runs():
    """The supervisor imports the pool worker's module for its assignments without the
    worker library, which the pool worker's own ``main`` imports before waiting."""
    loaded = _fresh(
        """
        import json, sys
        from supervisor.workflows.poolworker import Assignment, check_entry
        print(json.dumps({"jobvisor_worker": "jobvisor_worker" in sys.modules}))
        """
    )
    assert loaded == {"jobvisor_worker": False}


@pytest.mark.parametrize("transport", ["unix", "tcp"])
def test_metrics_library_is_loaded_by_the_first_scrape_which_still_answers(
    tmp_path, marker, transport
):
    """A started supervisor has not loaded ``prometheus_client``; its first ``GET /metrics``
    loads it and answers the exposition, counters and gauges included."""
    config = write_config(tmp_path, marker, transport=transport)
    seen = _fresh(
        """
        import json, sys
        from supervisor.config import load_config
        from supervisor.testing import SupervisorThread

        with SupervisorThread(load_config(sys.argv[1])) as sv:
            before = "prometheus_client" in sys.modules
            text = sv.client.metrics()
            after = "prometheus_client" in sys.modules
        print(json.dumps({"before": before, "after": after, "text": text}))
        """,
        str(config),
    )
    assert (seen["before"], seen["after"]) == (False, True)
    text = str(seen["text"])
    assert "# TYPE jobvisor_spawned_total counter" in text
    assert 'jobvisor_workers_connected{kind="demo"} 0.0' in text
