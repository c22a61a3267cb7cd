"""Throughput: messages/s the supervisor absorbs from N flooding connections.

The load generator (``loadgen.py``) connects N seeded jobs (hello, welcome, started,
through ``jobvisor_worker.Session``), then keeps every socket's kernel buffer full of
pre-encoded ``progress`` + ``heartbeat`` frames with non-blocking sends. The rate is
the supervisor's own counter ``jobvisor_worker_messages_total`` from ``GET /metrics``,
taken after a warm-up and again after a fixed window, divided by the difference of the
``jobvisor_uptime_seconds`` gauge of the same two answers (both are computed when the
supervisor renders the page, so the time an answer waits behind a long loop iteration
does not distort the rate).

The ceiling is the decode-only reader (``ceiling.py``) fed by the same load generator
with the same frames over the same number of Unix connections, measured over the same
window by its own counters and clock. ``ratio`` = supervisor / ceiling.
"""

from __future__ import annotations

import time
from typing import Any

import psutil

from bench.child import start_helper
from bench.harness import Run, SeededSetup, Server, each_size
from supervisor.records import new_job_id
from supervisor.testing import wait_for

WARMUP = 1.0


def run(bench: Run) -> dict[str, Any]:
    sizes = [100] if bench.quick else [100, 1000]
    window = 2.0 if bench.quick else 5.0
    frames: dict[str, Any] = {}

    def measure(n: int) -> dict[str, Any]:
        bench.say(f"throughput N={n}: supervisor, then the decode-only ceiling")
        sup = _supervisor(bench, n, window)
        frames.update(sup.pop("frames"))
        ceiling = _ceiling(bench, n, window)
        rate, top = sup["supervisor_msgs_per_s"], ceiling["ceiling_msgs_per_s"]
        entry = {"n": n, **sup, **ceiling, "ratio": round(rate / top, 3) if top else None}
        if sup["protocol_errors"] or sup["connections_lost"]:
            # The supervisor closed flooding connections: the rate is not comparable.
            entry["error"] = (
                f"invalid measurement: {sup['protocol_errors']} protocol errors, "
                f"{sup['connections_lost']} connections lost during the flood"
            )
        return entry

    figures, error = each_size(sizes, measure)
    return {
        "params": {
            "sizes": sizes,
            "window_s": window,
            "warmup_s": WARMUP,
            "transport": "unix",
            "frames": "alternating progress {percent, message, ts} and heartbeat {ts}",
            **frames,
        },
        "figures": figures,
        "caveats": [
            "senders and receiver share the machine: the load generator takes CPU the "
            "supervisor (or the ceiling reader) could otherwise use",
            "the ceiling decodes with msgpack.unpackb only; the supervisor also validates "
            "each message into a dataclass, dispatches it and updates the job",
            "connections are seeded jobs re-attached by the load generator (option b)",
        ],
        "error": error,
    }


def _scrape(server: Server) -> tuple[dict[str, float], float]:
    began = time.monotonic()
    values = server.metrics()
    return values, time.monotonic() - began


def _supervisor(bench: Run, n: int, window: float) -> dict[str, Any]:
    setup = SeededSetup(bench, "throughput", n, "flood", heartbeat_timeout=60.0)
    gen, server, _attach_s = setup.seeded_and_connected()
    try:
        flood = gen.ask("flood")
        time.sleep(WARMUP)
        first, scrape_a = _scrape(server)
        cpu_a, gen_cpu_a, wall_a = _cpu(server.pid), _cpu(gen.pid), time.monotonic()
        time.sleep(window)
        second, scrape_b = _scrape(server)
        cpu_b, gen_cpu_b, wall_b = _cpu(server.pid), _cpu(gen.pid), time.monotonic()
        status = gen.ask("status")
    finally:
        server.kill()
        gen.stop()
    elapsed = second["jobvisor_uptime_seconds"] - first["jobvisor_uptime_seconds"]
    messages = second["jobvisor_worker_messages_total"] - first["jobvisor_worker_messages_total"]
    received = second["jobvisor_worker_bytes_total"] - first["jobvisor_worker_bytes_total"]
    return {
        "supervisor_msgs_per_s": round(messages / elapsed),
        "supervisor_bytes_per_s": round(received / elapsed),
        "supervisor_window_s": round(elapsed, 3),
        "supervisor_cpu_cores": round((cpu_b - cpu_a) / (wall_b - wall_a), 2),
        "loadgen_cpu_cores_supervisor_run": round((gen_cpu_b - gen_cpu_a) / (wall_b - wall_a), 2),
        "scrape_max_s": round(max(scrape_a, scrape_b), 3),
        "connections_lost": status["lost_connections"],
        "protocol_errors": int(second.get("jobvisor_protocol_errors_total", 0)),
        "frames": {
            k: v for k, v in flood.items() if k.endswith("_bytes") or k.startswith("flood_")
        },
    }


def _cpu(pid: int) -> float:
    """CPU seconds (user + system) used so far by process ``pid``."""
    times = psutil.Process(pid).cpu_times()
    return float(times.user + times.system)


def _ceiling(bench: Run, n: int, window: float) -> dict[str, Any]:
    folder = bench.folder(f"ceiling-{n}")
    sockets = bench.short_dir()
    ids = [new_job_id() for _ in range(n)]
    jobs = [[job_id, "-", str(sockets / f"{job_id}.sock")] for job_id in ids]
    paths = [path for _, _, path in jobs]
    reader = start_helper("bench.ceiling", {"paths": paths}, folder=folder, env=bench.env)
    gen = None
    try:
        spec = {"jobs": jobs, "handshake": False}
        gen = start_helper("bench.loadgen", spec, folder=folder, env=bench.env)
        gen.ask("flood")
        gen.ask("start")
        wait_for(
            lambda: reader.ask("status")["accepted"] >= n, 60, 0.05, f"{n} ceiling connections"
        )
        time.sleep(WARMUP)
        first = reader.ask("status")
        cpu_a, wall_a = _cpu(reader.pid), time.monotonic()
        time.sleep(window)
        second = reader.ask("status")
        cpu_b, wall_b = _cpu(reader.pid), time.monotonic()
    finally:
        if gen is not None:
            gen.stop()
        reader.stop()
    elapsed = second["t"] - first["t"]
    return {
        "ceiling_msgs_per_s": round((second["messages"] - first["messages"]) / elapsed),
        "ceiling_bytes_per_s": round((second["bytes"] - first["bytes"]) / elapsed),
        "ceiling_window_s": round(elapsed, 3),
        "ceiling_cpu_cores": round((cpu_b - cpu_a) / (wall_b - wall_a), 2),
    }
