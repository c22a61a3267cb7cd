"""The ``retention`` setting, and what both shipped stores do to delete finished jobs and
keep counting them (supervisor/stores/base.py, ``ManagedStore``)."""

from __future__ import annotations

import sqlite3

import pytest

from supervisor.config import DEFAULT_RETENTION, load_config
from supervisor.errors import ConfigError
from supervisor.states import JobStatus
from supervisor.stores import MemoryStore, SqliteStore
from supervisor.stores.base import ManagedStore, managed_store
from supervisor.stores.sqlite import MIGRATIONS
from tests.supervisor.unit.factories import make_job


def retention_of(tmp_path, line: str) -> float | None:
    path = tmp_path / "jobvisor.toml"
    path.write_text(line)
    return load_config(path).retention


@pytest.mark.parametrize(
    ("line", "seconds"),
    [
        ("", DEFAULT_RETENTION),
        ('retention = "7d"\n', 7 * 86400.0),
        ('retention = "12h"\n', 12 * 3600.0),
        ('retention = "30m"\n', 1800.0),
        ('retention = "90s"\n', 90.0),
        ('retention = "2w"\n', 14 * 86400.0),
        ("retention = 3600\n", 3600.0),
        ("retention = 0.5\n", 0.5),
        ('retention = "off"\n', None),
        ("retention = 0\n", None),
    ],
)
def test_retention_accepts_ages_and_off(tmp_path, line, seconds):
    """``retention`` reads an age with a unit, a number of seconds, or 0/"off" (forever)."""
    assert retention_of(tmp_path, line) == seconds


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ('retention = "soon"\n', 'expected an age such as "7d"'),
        ('retention = "-1d"\n', "finite number of seconds >= 0"),
        ("retention = -5\n", "greater than or equal to 0"),
        ("retention = true\n", "retention"),
    ],
)
def test_a_bad_retention_names_the_file_and_the_key(tmp_path, line, problem):
    """A bad ``retention`` is a config error naming the file, the key and what is accepted."""
    path = tmp_path / "jobvisor.toml"
    path.write_text(line)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert message.startswith(f"{path}: retention"), message
    assert problem in message


@pytest.fixture(params=["memory", "sqlite"])
def store(request, tmp_path):
    made = MemoryStore() if request.param == "memory" else SqliteStore(path=tmp_path / "j.db")
    made.open()
    yield made
    made.close()


def test_shipped_stores_are_managed_stores(store):
    """Both shipped stores provide every method that deleting and retention need."""
    assert managed_store(store) is store and isinstance(store, ManagedStore)


def test_deleted_and_reopened_jobs_keep_counting_where_they_settled(store):
    """settled_totals counts finished rows plus those deleted or reopened since: it never
    goes down when a row leaves its final status."""
    done = make_job(name="a", status=JobStatus.COMPLETED, finished_at=10.0)
    failed = make_job(name="a", status=JobStatus.FAILED, finished_at=11.0)
    cancelled = make_job(name="b", status=JobStatus.CANCELLED, finished_at=12.0)
    store.write([done, failed, cancelled])
    expected = {("a", "completed"): 1, ("a", "failed"): 1, ("b", "cancelled"): 1}
    assert store.settled_totals() == expected

    assert store.delete_finished([done.id, "unknown"]) == [done.id]
    assert store.get(done.id) is None
    store.tally_reopened("a", JobStatus.FAILED)  # a retry takes it back ...
    failed.status, failed.finished_at = JobStatus.PENDING, None
    store.write([failed])  # ... and commits it as pending
    assert store.settled_totals() == expected
    assert store.finished_before(100.0, 10) == [(cancelled.id, "b")]


def test_sqlite_tally_survives_reopening_and_a_v3_file_is_upgraded(tmp_path):
    """A file from before the tally (schema 3) gains it; deletions are counted across reopening."""
    path = tmp_path / "old.db"
    raw = sqlite3.connect(path)
    for migration in MIGRATIONS[:3]:
        raw.executescript(migration)
    raw.execute(
        "INSERT INTO jobs (id, name, status, seq, created_at, node, max_attempts, attempts,"
        " finished_at) VALUES ('old', 'k', 'completed', 1, 1.0, 'n', 3, 1, 2.0)"
    )
    raw.execute("PRAGMA user_version = 3")
    raw.commit()
    raw.close()
    store = SqliteStore(path=path)
    store.open()
    try:
        assert store.delete_finished(["old"]) == ["old"]
    finally:
        store.close()
    again = SqliteStore(path=path)
    again.open()
    try:
        assert again.get("old") is None
        assert again.settled_totals() == {("k", "completed"): 1}
    finally:
        again.close()
