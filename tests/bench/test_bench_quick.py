"""The benchmark suite's CI smoke run: ``python -m bench --quick`` works end to end.

It checks that every section ran and produced numbers, never how good they are: the
bench reports measurements, it does not assert performance targets.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
SECTIONS = (
    "reconnect",
    "throughput",
    "overhead",
    "store",
    "rss",
    "workflow",
    "worker-import",
    "busy-worker",
    "startup",
)


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


@pytest.fixture(scope="module")
def quick_run(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    out = tmp_path_factory.mktemp("bench") / "bench.json"
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--quiet", "--json", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=200,
        check=False,
    )
    data = json.loads(out.read_text()) if out.exists() else {}
    return proc, data


@pytest.mark.timeout(260)
@pytest.mark.slow
def test_quick_run_exits_zero_and_prints_a_table(quick_run):
    """The quick run succeeds and prints one table line per section."""
    proc, _ = quick_run
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "jobvisor bench (quick)" in proc.stdout
    for name in SECTIONS:
        assert name in proc.stdout


@pytest.mark.timeout(260)
@pytest.mark.slow
def test_quick_json_has_every_section_without_errors(quick_run):
    """Every section is present with its params, machine note and no error."""
    _, data = quick_run
    for name in SECTIONS:
        section = data[name]
        assert section["error"] is None, f"{name}: {section['error']}"
        assert section["params"]
        assert _number(section["machine"]["cores"])
        assert section["machine"]["python"]


@pytest.mark.timeout(260)
@pytest.mark.slow
def test_quick_json_figures_are_numbers_and_no_job_is_lost(quick_run):
    """Each section's headline figures are finite numbers; reconnection lost no job."""
    _, data = quick_run
    reconnect = data["reconnect"]
    assert reconnect["lost"] == 0
    for entry in reconnect["figures"]:
        assert entry["lost"] == 0
        for key in ("after_listening_ms", "after_process_start_ms"):
            stats = entry["pooled"][key]
            assert stats["count"] == entry["n"] * len(entry["restarts"])
            assert all(_number(stats[k]) for k in ("min", "median", "p99", "max"))
    for entry in data["throughput"]["figures"]:
        assert _number(entry["supervisor_msgs_per_s"]) and entry["supervisor_msgs_per_s"] > 0
        assert _number(entry["ceiling_msgs_per_s"]) and entry["ceiling_msgs_per_s"] > 0
        assert _number(entry["ratio"])
    overhead = data["overhead"]["figures"]
    assert _number(overhead["sequential"]["added_median_ms"])
    assert _number(overhead["sequential"]["added_p99_ms"])
    assert _number(overhead["parallel"]["jobs_per_s"])
    assert _number(overhead["parallel"]["bare_spawns_per_s"])
    for entry in data["store"]["figures"]:
        assert _number(entry["transactions_per_s"])
        assert _number(entry["write_bytes_per_s"])
    assert _number(data["store"]["tx_ratio"])
    levels = data["rss"]["figures"]
    assert all(_number(level["rss_bytes"]) for level in levels)
    assert all(_number(level["bytes_per_job"]) for level in levels[1:])


@pytest.mark.timeout(260)
@pytest.mark.slow
def test_quick_workflow_figures_are_numbers_and_every_instance_completed(quick_run):
    """The workflow section's figures are finite numbers and every instance it ran completed."""
    _, data = quick_run
    section = data["workflow"]
    chain, orders = section["figures"]["chain"], section["figures"]["orders"]
    assert chain["completed"] == chain["instances"] == section["params"]["chain_instances"]
    assert orders["completed"] == orders["instances"] == section["params"]["order_instances"]
    for key in ("per_step_ms_p50", "per_step_ms_p99", "warm_per_step_ms_p50"):
        assert _number(chain[key]), key
    assert isinstance(chain["met_target_p50"], bool)
    assert chain["steps"] == chain["instances"] * section["params"]["chain_steps"]
    assert _number(orders["instances_per_s"]) and orders["instances_per_s"] > 0
    for stats in (chain["instance_ms"], orders["loop_lag_ms"], orders["idle_loop_lag_ms"]):
        assert stats["count"] > 0
        assert all(_number(stats[k]) for k in ("min", "median", "p99", "max"))


@pytest.mark.timeout(260)
@pytest.mark.slow
def test_quick_startup_figures_are_numbers_beside_their_floors(quick_run):
    """The startup section times serve and both floors over every run, with RSS and ratios;
    reconnect carries the dependency floor beside its start-up figures."""
    _, data = quick_run
    section = data["startup"]
    figures, runs = section["figures"], section["params"]["runs"]
    assert "pydantic" in section["params"]["dependencies"]
    for name in ("bare", "deps", "serve"):
        for key in ("wall_ms", "cpu_ms", "rss_bytes"):
            stats = figures[name][key]
            assert stats["count"] == runs, (name, key)
            assert all(_number(stats[k]) and stats[k] > 0 for k in ("median", "p90", "max"))
    for key in ("over_bare_ms", "over_deps_ms", "cpu_over_bare_ms", "cpu_over_deps_ms"):
        assert _number(figures[key]), key
    assert isinstance(figures["met_time_target"], bool)
    assert isinstance(figures["met_rss_target"], bool)
    floor = data["reconnect"]["floor_ms"]  # printed beside reconnect's "after process start"
    assert all(_number(floor[k]) and floor[k] > 0 for k in ("wall_ms", "cpu_ms"))


def test_quick_worker_import_and_busy_worker_figures_are_numbers(quick_run):
    """The worker-import section has a median and p90 for each command and their
    difference; the busy-worker section's idle and busy workers both completed, had
    progress arrive and a silence measured."""
    _, data = quick_run
    imports = data["worker-import"]["figures"]
    for name in ("pass", "msgpack", "jobvisor_worker", "with_wire_layer"):
        assert _number(imports["ms"][name]["median"]) and _number(imports["ms"][name]["p90"])
    assert _number(imports["over_msgpack_ms"]["median"])
    assert isinstance(imports["met_target"], bool)
    busy = data["busy-worker"]["figures"]
    for mode in ("idle", "busy"):
        assert busy[mode]["calls"] > 0 and busy[mode]["arrived"] > 0
        assert all(_number(busy[mode]["staleness_ms"][k]) for k in ("median", "p99", "max"))
        assert _number(busy[mode]["max_silence_ms"])
    assert isinstance(busy["met_target"], bool)
