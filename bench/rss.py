"""Supervisor RSS per connected idle job.

For each level (0, 1,000, 10,000 jobs; quick: 0 and 1,000) a fresh supervisor starts on a
store seeded with that many running jobs (``harness.SeededSetup``), the load generator
re-attaches all of them (at most 256 handshakes in flight, so accepted connections plus
still-open listeners stay within RLIMIT_NOFILE), the supervisor settles, and its RSS
(psutil ``memory_info().rss``) is read three times, 0.5 s apart; the median counts.
Idle: ``heartbeat_timeout = 600``, so the welcome asks for a heartbeat every 5 s.
Bytes per job = (RSS at N - RSS at 0) / N.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

from bench.harness import Run, SeededSetup, Server, each_size

SETTLE = 2.0
MAX_HANDSHAKES = 256


def run(bench: Run) -> dict[str, Any]:
    levels = [0, 1000] if bench.quick else [0, 1000, 10000]
    figures, error = each_size(levels, lambda n: _level(bench, n), key="jobs", label="{} jobs")
    base = figures[0].get("rss_bytes") if figures else None
    for f in figures[1:]:
        if base is not None and f.get("rss_bytes") is not None:
            f["bytes_per_job"] = round((f["rss_bytes"] - base) / f["jobs"])
    return {
        "params": {
            "levels": levels,
            "heartbeat_timeout_s": 600,
            "heartbeat_interval_s": 5,
            "transport": "unix",
            "max_handshakes_in_flight": MAX_HANDSHAKES,
        },
        "figures": figures,
        "caveats": [
            "RSS includes what start-up at that size left behind (recovery, the first "
            "commits, Python's allocator keeping freed arenas), not only per-connection state",
            "RLIMIT_NOFILE is 20000 here: a connected job costs the supervisor one fd "
            "(its listener is closed after the hello), so 10,000 jobs fit, 20,000 would not",
            "jobs are seeded and re-attached by the load generator (option b)",
        ],
        "error": error,
    }


def _rss(server: Server) -> int:
    samples = []
    for _ in range(3):
        samples.append(server.rss())
        time.sleep(0.5)
    return int(statistics.median(samples))


def _level(bench: Run, n: int) -> dict[str, Any]:
    bench.say(f"rss: {n} connected idle jobs")
    setup = SeededSetup(bench, "rss", n, "idle", heartbeat_timeout=600.0)
    if n == 0:
        server = setup.start()
        try:
            time.sleep(SETTLE)
            return {"jobs": 0, "rss_bytes": _rss(server), "fds": server.ps.num_fds()}
        finally:
            server.kill()
    gen, server, attach_s = setup.seeded_and_connected(max_handshakes=MAX_HANDSHAKES, wait=300)
    try:
        time.sleep(SETTLE)
        connected = int(server.metric("jobvisor_workers_connected"))
        return {
            "jobs": n,
            "rss_bytes": _rss(server),
            "fds": server.ps.num_fds(),
            "connected": connected,
            "startup_ms": round((server.listening_at - server.started_at) * 1000),
            "attach_all_s": round(attach_s, 2),
        }
    finally:
        server.kill()
        gen.stop()
