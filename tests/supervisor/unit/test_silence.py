"""How long a worker has been silent across a restart, and how long it may take to return."""

from __future__ import annotations

from supervisor.attempts import RECONNECT_MARGIN, reconnect_window
from supervisor.clock import ManualClock
from supervisor.recovery import silence
from supervisor.states import JobStatus
from tests.supervisor.unit.factories import make_job


def _heard_now(clock: ManualClock):
    return make_job(
        status=JobStatus.RUNNING,
        last_heartbeat=clock.wall(),
        heartbeat_boottime=clock.boottime(),
        boot_id=clock.boot_id,
    )


def test_a_wall_clock_step_does_not_age_a_worker_on_the_same_boot():
    """Five minutes of wall-clock step while down: the silence is what really passed."""
    clock = ManualClock()
    job = _heard_now(clock)
    clock.advance(3.0)
    clock.step_wall(300.0)
    assert silence(clock, job) == 3.0


def test_across_a_reboot_or_for_old_rows_silence_is_wall_time():
    """Another boot id, or no boot reading at all: the wall clock is all there is."""
    clock = ManualClock()
    job = _heard_now(clock)
    clock.advance(3.0)
    clock.step_wall(300.0)
    clock.boot_id = "another-boot"
    assert silence(clock, job) == 303.0
    clock.boot_id = "manual-boot"
    job.heartbeat_boottime = job.boot_id = None
    assert silence(clock, job) == 303.0


def test_the_reconnect_window_covers_two_reconnect_intervals_or_two_heartbeat_timeouts():
    """A worker backing off 2 s between tries is waited for, whatever its heartbeat."""
    assert reconnect_window(0.5, 2.0) == 4.0 + RECONNECT_MARGIN
    assert reconnect_window(30.0, 2.0) == 60.0
