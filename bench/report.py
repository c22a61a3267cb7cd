"""The human-readable table printed at the end of a run (the JSON holds everything)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bench.machine import describe, machine

INDENT = " " * 11  # continuation lines start under the first line's "N="


def _one(x: float) -> str:
    return f"{round(x, 1) or 0.0:.1f}"  # no "-0.0": a stamp a hair before listening is 0


def _ms(s: dict[str, Any] | None) -> str:
    if not s or not s.get("count"):
        return "no samples"
    return (
        f"min {_one(s['min'])} ms  median {_one(s['median'])} ms  "
        f"p99 {_one(s['p99'])} ms  max {_one(s['max'])} ms"
    )


def _rate(x: float | None) -> str:
    return "n/a" if x is None else f"{x:,.0f}"


def _mb(x: float | None) -> str:
    return "n/a" if x is None else f"{x / 1e6:.1f} MB"


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.0f}%"


def _per_size(section: str, r: dict[str, Any], line: Callable[[dict[str, Any]], str]) -> list[str]:
    """``<section> N=<n>`` and ``line(figure)`` for each figure; an errored one says ERROR."""
    lines = []
    for f in r.get("figures", []):
        head = f"{section:<10} N={f['n']:<5}"
        lines.append(f"{head} ERROR {f['error']}" if f.get("error") else f"{head} {line(f)}")
    return lines


def _reconnect(r: dict[str, Any]) -> list[str]:
    def line(f: dict[str, Any]) -> str:
        pooled = f["pooled"]
        kind = "load generator" if "load generator" in f["workers"] else "worker processes"
        pooled_line = (
            f"restarts={len(f['restarts'])}  after listening: "
            f"{_ms(pooled['after_listening_ms'])} ; after process start: "
            f"{_ms(pooled['after_process_start_ms'])} ; lost {f['lost']}  [{kind}]"
        )
        restart_lines = [
            f"{INDENT}restart {rs['restart']}: startup {rs['startup_ms']:.0f} ms, "
            f"re-attached {rs['reattached']}/{f['n']}, after listening "
            f"{_ms(rs['after_listening_ms'])}, lost {rs['lost']}"
            for rs in f["restarts"]
        ]
        return "\n".join([pooled_line, *restart_lines])

    lines = _per_size("reconnect", r, line)
    floor = r.get("floor_ms")
    if floor:
        lines.append(
            f"{INDENT}floor of 'after process start' (python + dependency imports, median): "
            f"wall {_one(floor['wall_ms'])} ms  CPU {_one(floor['cpu_ms'])} ms"
        )
    return lines


def _throughput(r: dict[str, Any]) -> list[str]:
    return _per_size(
        "throughput",
        r,
        lambda f: (
            f"supervisor {_rate(f['supervisor_msgs_per_s'])} msg/s  "
            f"ceiling {_rate(f['ceiling_msgs_per_s'])} msg/s  ratio {_pct(f['ratio'])}  "
            f"(supervisor CPU {_pct(f.get('supervisor_cpu_cores'))} of a core, "
            f"/metrics answered in up to {f.get('scrape_max_s', 0):.2f} s)"
        ),
    )


def _overhead(r: dict[str, Any]) -> list[str]:
    f = r.get("figures")
    if not f:
        return []
    seq, par = f["sequential"], f["parallel"]
    return [
        f"overhead   one at a time: supervised {_ms(seq['supervised_ms'])}",
        f"{INDENT}bare spawn+wait:        {_ms(seq['bare_ms'])}",
        f"{INDENT}added by the supervisor: median {seq['added_median_ms']:.2f} ms  "
        f"p99 {seq['added_p99_ms']:.2f} ms per job ({f['worker']})",
        f"{INDENT}{par['parallel']} in parallel: supervised {par['jobs_per_s']:,.0f} jobs/s  "
        f"bare {par['bare_spawns_per_s']:,.0f} spawns/s  ratio {_pct(par['ratio'])}",
    ]


def _store(r: dict[str, Any]) -> list[str]:
    lines = _per_size(
        "store",
        r,
        lambda f: (
            f"{f['transactions_per_s']:.2f} tx/s  heartbeats absorbed "
            f"{_rate(f['messages_per_s'])}/s  written to disk {f['write_bytes_per_s'] / 1e3:,.1f} "
            f"kB/s  db+wal growth {f['db_growth_bytes'] / 1e3:,.1f} kB"
        ),
    )
    ratio = r.get("tx_ratio")
    if ratio is not None:
        lines.append(
            f"{INDENT}transactions/s ratio N={r['params']['sizes'][0]} / "
            f"N={r['params']['sizes'][1]}: {ratio:.2f}"
        )
    return lines


def _rss(r: dict[str, Any]) -> list[str]:
    parts = []
    for f in r.get("figures", []):
        if f.get("error"):
            parts.append(f"{f['jobs']} jobs ERROR {f['error']}")
            continue
        per = f.get("bytes_per_job")
        extra = f" ({per / 1e3:.1f} kB/job)" if per is not None else ""
        parts.append(f"{f['jobs']:,} jobs {_mb(f['rss_bytes'])}{extra}")
    return ["rss        " + " ; ".join(parts)] if parts else []


def _met(ok: bool) -> str:
    return "met" if ok else "NOT met"


def _workflow(r: dict[str, Any]) -> list[str]:
    f = r.get("figures")
    if not f:
        return []
    chain, orders = f["chain"], f["orders"]
    target = r["params"]["target_ms_per_step"]
    return [
        f"workflow   chain of {r['params']['chain_steps']} no-op steps, "
        f"{chain['completed']}/{chain['instances']} completed, pool {chain['pool_size']}: "
        f"per step p50 {chain['per_step_ms_p50']:.1f} ms  p99 {chain['per_step_ms_p99']:.1f} ms "
        f"(target {target:g} ms {_met(chain['met_target_p50'])})",
        f"{INDENT}warm (first {chain['pool_size']} steps): per step "
        f"p50 {chain['warm_per_step_ms_p50']:.1f} ms  p99 {chain['warm_per_step_ms_p99']:.1f} ms "
        f"(target {_met(chain['warm_met_target_p50'])}); {chain['warm_steps']}/{chain['steps']} "
        f"steps took a waiting worker",
        f"{INDENT}first step alone: median {chain['first_step_ms']['median']:.1f} ms; "
        f"20 handler calls in-process: median {chain['inprocess_chain_us']['median']:.1f} µs",
        f"{INDENT}CPU per step: supervisor loop {chain['loop_cpu_ms_per_step']:.2f} ms, "
        f"step workers {chain['workers_cpu_ms_per_step']:.2f} ms",
        f"{INDENT}{orders['completed']}/{orders['instances']} orders at once: "
        f"{orders['instances_per_s']:,.2f} instances/s over {orders['span_s']:.1f} s; "
        f"loop lag {_ms(orders['loop_lag_ms'])}",
        f"{INDENT}loop lag idle: {_ms(orders['idle_loop_lag_ms'])}",
    ]


def _startup(r: dict[str, Any]) -> list[str]:
    f = r.get("figures")
    if not f:
        return []
    params = r["params"]

    def row(name: str) -> str:
        x = f[name]
        return (
            f"wall median {_one(x['wall_ms']['median'])} ms  p90 {_one(x['wall_ms']['p90'])} ms"
            f"  CPU median {_one(x['cpu_ms']['median'])} ms  p90 {_one(x['cpu_ms']['p90'])} ms"
            f"  RSS median {_mb(x['rss_bytes']['median'])}"
        )

    return [
        f"startup    serve to listening, no jobs ({params['runs']} runs): {row('serve')}",
        f"{INDENT}floor python -c pass:          {row('bare')}",
        f"{INDENT}floor + dependency imports:    {row('deps')}",
        f"{INDENT}over the bare interpreter: wall {_one(f['over_bare_ms'])} ms  "
        f"CPU {_one(f['cpu_over_bare_ms'])} ms (target {params['target_over_bare_ms']:g} ms "
        f"{_met(f['met_time_target'])}); over the dependency floor: wall "
        f"{_one(f['over_deps_ms'])} ms  CPU {_one(f['cpu_over_deps_ms'])} ms",
        f"{INDENT}idle RSS {_mb(f['serve']['rss_bytes']['median'])} "
        f"(target {_mb(params['target_rss_bytes'])} {_met(f['met_rss_target'])})",
    ]


def _worker_import(r: dict[str, Any]) -> list[str]:
    f = r.get("figures")
    if not f:
        return []
    p = r["params"]
    ms = f["ms"]

    def one(name: str) -> str:
        return f"median {ms[name]['median']:.1f} ms  p90 {ms[name]['p90']:.1f} ms"

    return [
        f"worker-import  {p['runs']} fresh interpreters each: python -c pass {one('pass')}",
        f"{INDENT}import msgpack {one('msgpack')}; import jobvisor_worker {one('jobvisor_worker')}",
        f"{INDENT}jobvisor_worker - msgpack: median {f['over_msgpack_ms']['median']:.1f} ms  "
        f"p90 {f['over_msgpack_ms']['p90']:.1f} ms (target <= {p['target_over_msgpack_ms']:g} ms "
        f"{_met(f['met_target'])}); with the wire layer a job loads at connect: "
        f"{one('with_wire_layer')}",
    ]


def _busy_worker(r: dict[str, Any]) -> list[str]:
    f = r.get("figures")
    if not f:
        return []
    target = r["params"]["target_staleness_p99_ms"]
    lines = []
    for mode in ("idle", "busy"):
        m = f[mode]
        lines.append(
            f"busy-worker {mode:<4} progress staleness {_ms(m['staleness_ms'])}; lag "
            f"p99 {m['lag_ms'].get('p99', float('nan')):.1f} ms; {m['calls_per_s']:,} calls/s, "
            f"{m['messages_per_s']:,} msg/s through, {m['arrived_per_s']:,} applied/s; "
            f"longest silence {m['max_silence_ms']:.0f} ms "
            f"(heartbeat late by {max(m['heartbeat_late_ms'], 0):.0f} ms), "
            f"stale {m['stale_events']}x"
        )
    lines.append(
        f"{INDENT}busy staleness p99 over idle: {f['staleness_p99_over_idle_ms']:.1f} ms "
        f"(target p99 <= {target:g} ms, heartbeats on time: {_met(f['met_target'])})"
    )
    return lines


FORMATTERS = {
    "reconnect": _reconnect,
    "throughput": _throughput,
    "overhead": _overhead,
    "store": _store,
    "rss": _rss,
    "workflow": _workflow,
    "startup": _startup,
    "worker-import": _worker_import,
    "busy-worker": _busy_worker,
}


def table(results: dict[str, Any], mode: str) -> str:
    lines = [f"jobvisor bench ({mode}) — {describe(machine())}"]
    for name, fmt in FORMATTERS.items():
        section = results.get(name)
        if section is None:
            continue
        try:
            lines += fmt(section)
        except (KeyError, TypeError, ValueError) as exc:
            lines.append(f"{name:<10} (cannot format: {exc!r})")
        if section.get("error"):
            lines.append(f"{name:<10} ERROR: {section['error']}")
    lines.append(
        "notes: N=1000 reconnect, throughput, store and rss use a load generator speaking the "
        "real protocol through jobvisor_worker.Session (one process, one selectors loop); its "
        "jobs are seeded into the store as running and adopted as orphans. Ratios compare with "
        "baselines measured in this run. See docs/bench.md."
    )
    return "\n".join(lines)
