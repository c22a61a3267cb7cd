"""Store write amplification: transactions/s and bytes written with N heartbeating jobs.

N seeded jobs re-attached by the load generator, each heartbeating every 100 ms (the
sessions' interval is fixed, whatever the welcome says). Heartbeats are "soft" state: the
supervisor batches them into at most one write transaction per ``flush_interval`` (1 s by
default) whatever the number of jobs (docs/persistence.md). Over a fixed window we read:

* transactions/s: ``jobvisor_commits_total`` / ``jobvisor_uptime_seconds`` from /metrics;
* heartbeats absorbed/s: ``jobvisor_worker_messages_total`` over the same window;
* bytes: ``/proc/<supervisor pid>/io`` ``write_bytes`` (what reached the block layer,
  counted when pages are dirtied) and ``wchar`` (bytes passed to write calls: SQLite's
  WAL and database pages, job log lines, HTTP answers), and the growth of jobs.db plus
  jobs.db-wal. The WAL file is reused after each checkpoint, so its size growth stops at
  its high-water mark: ``write_bytes`` is the better "bytes written" figure.

The same is measured at two sizes; ``tx_ratio`` = transactions/s at the larger over the
smaller: about 1 when commits do not grow with the number of heartbeating jobs.
"""

from __future__ import annotations

import time
from typing import Any

from bench.harness import Run, SeededSetup, Server, each_size

HEARTBEAT = 0.1
SETTLE = 2.0


def run(bench: Run) -> dict[str, Any]:
    sizes = [1000, 100]
    window = 3.0 if bench.quick else 10.0
    figures, error = each_size(sizes, lambda n: _measure(bench, n, window))
    ok = [f for f in figures if not f.get("error")]
    ratio = None
    if len(ok) == 2 and ok[1]["transactions_per_s"]:
        ratio = round(ok[0]["transactions_per_s"] / ok[1]["transactions_per_s"], 3)
    return {
        "params": {
            "sizes": sizes,
            "heartbeat_interval_s": HEARTBEAT,
            "window_s": window,
            "flush_interval_s": 1.0,
            "sqlite_synchronous": "normal",
        },
        "figures": figures,
        "tx_ratio": ratio,
        "caveats": [
            "write_bytes is counted when the supervisor dirties page-cache pages, before "
            "writeback; wchar also counts job-log appends and HTTP answers",
            "jobs are seeded and re-attached by the load generator (option b)",
        ],
        "error": error,
    }


def _sample(server: Server, setup: SeededSetup) -> dict[str, float]:
    metrics = server.metrics()
    io = server.io()
    db = setup.settings.db_path
    assert db is not None
    size = 0
    for path in (db, db.with_name(db.name + "-wal")):
        try:
            size += path.stat().st_size
        except FileNotFoundError:
            pass
    return {
        "commits": metrics["jobvisor_commits_total"],
        "messages": metrics["jobvisor_worker_messages_total"],
        "uptime": metrics["jobvisor_uptime_seconds"],
        "write_bytes": io.get("write_bytes", 0),
        "wchar": io.get("wchar", 0),
        "db_bytes": size,
    }


def _measure(bench: Run, n: int, window: float) -> dict[str, Any]:
    bench.say(f"store N={n}: heartbeats every {HEARTBEAT * 1000:.0f} ms for {window:g} s")
    setup = SeededSetup(bench, "store", n, "beat", heartbeat_timeout=30.0)
    gen, server, _attach_s = setup.seeded_and_connected(heartbeat=HEARTBEAT)
    try:
        time.sleep(SETTLE)
        a = _sample(server, setup)
        time.sleep(window)
        b = _sample(server, setup)
        status = gen.ask("status")
    finally:
        server.kill()
        gen.stop()
    elapsed = b["uptime"] - a["uptime"]
    return {
        "n": n,
        "window_s": round(elapsed, 3),
        "transactions": int(b["commits"] - a["commits"]),
        "transactions_per_s": round((b["commits"] - a["commits"]) / elapsed, 3),
        "messages_per_s": round((b["messages"] - a["messages"]) / elapsed),
        "write_bytes_per_s": round((b["write_bytes"] - a["write_bytes"]) / elapsed),
        "wchar_per_s": round((b["wchar"] - a["wchar"]) / elapsed),
        "db_growth_bytes": int(b["db_bytes"] - a["db_bytes"]),
        "db_and_wal_bytes_at_end": int(b["db_bytes"]),
        "connections_lost": status["lost_connections"],
    }
