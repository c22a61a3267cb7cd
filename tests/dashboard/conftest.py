"""Fixtures for the dashboard's tests: the supervisor tests' worker tables."""

from __future__ import annotations

from tests.supervisor.conftest import worker

__all__ = ["worker"]
