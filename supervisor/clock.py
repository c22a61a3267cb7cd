"""Time, injected: a monotonic clock for deadlines, wall time only for stored timestamps.

The loop and every timer read ``clock.monotonic()``; nothing compares wall-clock times
for liveness, so a clock step (NTP, a VM resume) never fires or starves a deadline.
Tests use ``ManualClock`` and jump hours in microseconds instead of sleeping.

Liveness across a restart needs a clock that outlives the supervisor process yet does
not step: ``boottime()`` (Linux ``CLOCK_BOOTTIME``: seconds since boot, suspend
included, never set by anyone) with ``boot_id`` (the kernel's random id of this boot).
Two boot-time readings compare only when their boot ids are equal; across a reboot
there is nothing but wall time (and no worker survived a reboot anyway).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Protocol

from supervisor import faults

_BOOT_ID_FILE = Path("/proc/sys/kernel/random/boot_id")


def _read_boot_id() -> str | None:
    try:
        return _BOOT_ID_FILE.read_text().strip() or None
    except OSError:
        return None


class Clock(Protocol):
    boot_id: str | None  # this boot's id; ``None`` where the platform has none

    def monotonic(self) -> float:
        """Seconds on a clock that never goes backwards; only differences mean anything."""
        ...

    def wall(self) -> float:
        """Seconds since the epoch (UTC), for timestamps that are stored or shown."""
        ...

    def boottime(self) -> float:
        """Seconds since this machine booted: comparable across processes of one boot."""
        ...


def _boottime() -> float:
    return time.clock_gettime(time.CLOCK_BOOTTIME)


def _stepped_wall() -> float:
    return time.time() + faults.WALL_OFFSET


class SystemClock:
    """The real clocks (wall time shifted by ``JOBVISOR_WALL_OFFSET``, see ``faults``)."""

    boot_id: str | None = _read_boot_id()
    monotonic = staticmethod(time.monotonic)
    wall = staticmethod(_stepped_wall if faults.WALL_OFFSET else time.time)
    boottime = staticmethod(_boottime)


class ManualClock:
    """A clock that moves only when told to; every reading advances together."""

    def __init__(
        self,
        monotonic: float = 1000.0,
        wall: float = 1_700_000_000.0,
        boottime: float = 5000.0,
        boot_id: str | None = "manual-boot",
    ) -> None:
        self._mono = monotonic
        self._wall = wall
        self._boot = boottime
        self.boot_id = boot_id

    def monotonic(self) -> float:
        return self._mono

    def wall(self) -> float:
        return self._wall

    def boottime(self) -> float:
        return self._boot

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError(f"a clock cannot go back ({seconds} s)")
        self._mono += seconds
        self._wall += seconds
        self._boot += seconds

    def step_wall(self, seconds: float) -> None:
        """Set the wall clock forward or back, as NTP or an operator would."""
        self._wall += seconds
