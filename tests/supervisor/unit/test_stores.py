"""Stores (supervisor/stores/): the same contract for memory and SQLite, then SQLite's own."""

from __future__ import annotations

import dataclasses
import os
import shutil
import signal
import sqlite3
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from supervisor.config import settings_from_mapping
from supervisor.core import Supervisor
from supervisor.errors import BadRequest, ConfigError, StoreError
from supervisor.records import JobRecord
from supervisor.states import JobStatus, ProcessState
from supervisor.stores import STORE_METHODS, MemoryStore, SqliteStore, Store, make_store
from supervisor.stores.base import (
    InstanceStore,
    InstancesUnsupported,
    instance_store,
    instance_support_missing,
    require_instance_store,
)
from supervisor.stores.sqlite import MIGRATIONS, SCHEMA_VERSION
from supervisor.testing import make_settings
from supervisor.workflows.records import StepState
from tests.supervisor.unit.factories import make_job
from tests.workflows.store_factories import make_instance

BINARY = bytes(range(256))


def full_record() -> JobRecord:
    """A job with every field set to something a lossy store would mangle."""
    return make_job(
        id="f" * 20,
        name="résumé-kind",
        data={
            "bytes": BINARY,
            "text": "naïve ☃ 日本語 \x00 nul",
            "big": 2**63 - 1,
            "small": -(2**63),
            "unsigned": 2**64 - 1,
            "float": 0.1,
            "nested": [1, 2.5, None, True, False, {"k": b"\xff"}, []],
            "": "empty key",
        },
        status=JobStatus.RUNNING,
        seq=2**62,
        created_at=1_700_000_000.123456,
        node="nœud-1",
        max_attempts=1000,
        attempts=999,
        process_state=ProcessState.RECONNECTING,
        pid=2**31 - 1,
        pid_start_time=1_699_999_999.75,
        socket_path="/tmp/jv-x/0123abcd/ffffffffffffffffffff.sock",
        tcp_port=65535,
        token_hash="ab" * 32,
        last_heartbeat=1_700_000_100.5,
        heartbeat_boottime=12_345.678901,
        boot_id="3f1c9d2e-8a4b-4c6d-9e0f-123456789abc",
        progress=99.5,
        progress_message="almost ✓",
        progress_data={"frames": 10**12, "blob": b"\x00\x01"},
        result=b"\x89PNG\r\n\x1a\n",
        error={"message": "boom ☠", "stack": "Traceback...\n", "reason": "exit", "attempt": 3},
        run_at=1_700_000_200.0,
        started_at=1_700_000_050.25,
        finished_at=1_700_000_300.0,
    )


def as_dict(job: JobRecord) -> dict[str, object]:
    return dataclasses.asdict(job)


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """An open store of each kind, closed at teardown."""
    opened: Store = (
        MemoryStore() if request.param == "memory" else SqliteStore(path=tmp_path / "s" / "j.db")
    )
    opened.open()
    yield opened
    opened.close()


@pytest.fixture
def sqlite_path(tmp_path: Path) -> Path:
    return tmp_path / "jobs.db"


def open_sqlite(path: Path) -> SqliteStore:
    store = SqliteStore(path=path)
    store.open()
    return store


# --- the shared contract -----------------------------------------------------------------


def test_every_field_round_trips(store):
    """A job written whole reads back equal in every field, payload types included."""
    job = full_record()
    store.write([job])
    got = store.get(job.id)
    assert got is not None and got is not job
    assert as_dict(got) == as_dict(job)
    assert type(got.status) is JobStatus and type(got.process_state) is ProcessState
    assert type(got.data["bytes"]) is bytes and type(got.result) is bytes
    assert type(got.data["nested"][5]["k"]) is bytes


def test_a_record_with_only_required_fields_round_trips(store):
    """None in every optional field stays None (not 0, not an empty string)."""
    job = make_job(data=None)
    store.write([job])
    got = store.get(job.id)
    assert got is not None
    assert as_dict(got) == as_dict(job)
    assert got.process_state is None and got.result is None and got.error is None


def test_get_of_an_unknown_id_is_none(store):
    """Asking for a job that was never written gives None."""
    assert store.get("nope") is None


def test_a_written_record_is_a_snapshot(store):
    """Changing the in-memory record after write() does not change what is stored."""
    job = make_job()
    store.write([job])
    job.status = JobStatus.RUNNING
    job.attempts = 1
    got = store.get(job.id)
    assert got is not None
    assert got.status is JobStatus.PENDING and got.attempts == 0


def test_rewriting_a_job_replaces_its_row(store):
    """Writing the same id again stores the newest state of every field."""
    job = make_job()
    store.write([job])
    job.status = JobStatus.COMPLETED
    job.result = {"ok": True}
    job.finished_at = 1_700_000_500.0
    store.write([job])
    got = store.get(job.id)
    assert got is not None and as_dict(got) == as_dict(job)
    assert store.query() and len(store.query()) == 1


def test_soft_writes_touch_only_heartbeat_and_progress(store):
    """A soft write stores heartbeat and progress, and none of the job's other changes."""
    job = make_job(status=JobStatus.RUNNING, attempts=1)
    store.write([job])
    job.last_heartbeat = 1_700_000_999.0
    job.heartbeat_boottime = 4321.5
    job.boot_id = "this-boot"
    job.progress = 42.0
    job.progress_message = "half-ish ½"
    job.progress_data = {"raw": b"\x00"}
    job.status = JobStatus.COMPLETED  # a hard change that is not committed
    job.result = "not yet"
    job.attempts = 2
    store.write([], soft=[job])
    got = store.get(job.id)
    assert got is not None
    assert (got.last_heartbeat, got.progress, got.progress_message, got.progress_data) == (
        1_700_000_999.0,
        42.0,
        "half-ish ½",
        {"raw": b"\x00"},
    )
    assert (got.heartbeat_boottime, got.boot_id) == (4321.5, "this-boot")
    assert got.status is JobStatus.RUNNING and got.result is None and got.attempts == 1


def test_a_soft_write_for_an_unwritten_job_creates_nothing(store):
    """Heartbeats of a job whose row does not exist yet are dropped, not inserted."""
    store.write([], soft=[make_job()])
    assert store.query() == []
    assert store.max_seq() == 0


def test_hard_and_soft_in_one_write(store):
    """One write() can carry whole rows and soft columns of other jobs together."""
    a, b = make_job(), make_job(status=JobStatus.RUNNING)
    store.write([b])
    b.progress = 10.0
    store.write([a], soft=[b])
    got_a, got_b = store.get(a.id), store.get(b.id)
    assert got_a is not None and got_b is not None and got_b.progress == 10.0


def test_load_active_returns_unfinished_jobs_in_seq_order(store):
    """load_active gives pending, scheduled and running jobs, by seq, whatever the write order."""
    statuses = [
        (5, JobStatus.RUNNING),
        (2, JobStatus.COMPLETED),
        (9, JobStatus.PENDING),
        (1, JobStatus.SCHEDULED),
        (7, JobStatus.FAILED),
        (3, JobStatus.PENDING),
        (4, JobStatus.CANCELLED),
    ]
    store.write([make_job(seq=seq, status=status) for seq, status in statuses])
    active = store.load_active()
    assert [(j.seq, j.status) for j in active] == [
        (1, JobStatus.SCHEDULED),
        (3, JobStatus.PENDING),
        (5, JobStatus.RUNNING),
        (9, JobStatus.PENDING),
    ]


def test_query_filters_pages_and_lists_newest_first(store):
    """query() filters by name and status, pages with limit/offset, newest first."""
    jobs = [
        make_job(
            name="even" if i % 2 == 0 else "odd",
            status=JobStatus.COMPLETED if i % 3 == 0 else JobStatus.PENDING,
            created_at=1_700_000_000.0 + i,
            seq=100 + i,
        )
        for i in range(10)
    ]
    store.write(list(reversed(jobs)))
    newest_first = list(reversed(jobs))

    def ids(rows: list[JobRecord]) -> list[str]:
        return [r.id for r in rows]

    assert ids(store.query()) == ids(newest_first)
    assert ids(store.query(name="even")) == ids([j for j in newest_first if j.name == "even"])
    assert ids(store.query(status=JobStatus.COMPLETED)) == ids(
        [j for j in newest_first if j.status is JobStatus.COMPLETED]
    )
    assert ids(store.query(name="odd", status=JobStatus.COMPLETED)) == ids(
        [j for j in newest_first if j.name == "odd" and j.status is JobStatus.COMPLETED]
    )
    assert ids(store.query(limit=3)) == ids(newest_first[:3])
    assert ids(store.query(limit=3, offset=3)) == ids(newest_first[3:6])
    assert store.query(offset=10) == []
    assert store.query(name="nobody") == []


def test_query_breaks_created_at_ties_by_seq(store):
    """Jobs created in the same instant list the later-enqueued one first."""
    a, b = make_job(created_at=5.0, seq=1), make_job(created_at=5.0, seq=2)
    store.write([a, b])
    assert [r.id for r in store.query()] == [b.id, a.id]


def test_load_finished_since_returns_recently_finished_jobs_with_a_process(store):
    """Finished jobs from ``since`` on that had a worker PID come back; others do not."""
    since = 1_700_000_000.0
    recent = make_job(status=JobStatus.COMPLETED, finished_at=since + 1, pid=100)
    exactly = make_job(status=JobStatus.CANCELLED, finished_at=since, pid=101)
    old = make_job(status=JobStatus.FAILED, finished_at=since - 1, pid=102)
    never_ran = make_job(status=JobStatus.CANCELLED, finished_at=since + 2, pid=None)
    running = make_job(status=JobStatus.RUNNING, pid=103)
    store.write([recent, exactly, old, never_ran, running])
    got = sorted(j.id for j in store.load_finished_since(since))
    assert got == sorted([recent.id, exactly.id])


def test_max_seq_is_the_largest_seq_ever_written(store):
    """max_seq is 0 for an empty store and the largest seq afterwards, finished jobs too."""
    assert store.max_seq() == 0
    store.write([make_job(seq=3), make_job(seq=12, status=JobStatus.COMPLETED), make_job(seq=7)])
    assert store.max_seq() == 12


# --- SQLite ------------------------------------------------------------------------------


def test_sqlite_uses_wal_and_records_its_schema_version(sqlite_path):
    """The database file is in WAL mode and PRAGMA user_version is the schema version."""
    open_sqlite(sqlite_path).close()  # while open, the store keeps other connections out
    raw = sqlite3.connect(sqlite_path)
    assert raw.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert raw.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
    raw.close()


def test_sqlite_write_is_committed_when_it_returns(sqlite_path):
    """A write is in the file as soon as write() returns: a process killed then keeps it."""
    job = make_job(data={"x": 1})
    child = os.fork()
    if child == 0:  # pragma: no cover - the child ends by SIGKILL, never returns
        try:
            open_sqlite(sqlite_path).write([job])
        finally:
            os.kill(os.getpid(), signal.SIGKILL)  # no close(), no checkpoint
    _, status = os.waitpid(child, 0)
    assert os.WTERMSIG(status) == signal.SIGKILL
    raw = sqlite3.connect(sqlite_path)
    assert raw.execute("SELECT status FROM jobs WHERE id = ?", (job.id,)).fetchone() == ("pending",)
    raw.close()


def test_sqlite_data_survives_reopening_the_file(sqlite_path):
    """Rows written by one store are read back whole by a new store on the same file."""
    first = open_sqlite(sqlite_path)
    job = full_record()
    first.write([job, make_job(seq=5)])
    first.close()
    second = open_sqlite(sqlite_path)
    try:
        got = second.get(job.id)
        assert got is not None and as_dict(got) == as_dict(job)
        assert second.max_seq() == job.seq
        assert [j.id for j in second.load_active()][-1] == job.id
    finally:
        second.close()


def test_sqlite_migrates_an_empty_version_zero_database(sqlite_path):
    """A database with user_version 0 and no tables gets the current schema."""
    raw = sqlite3.connect(sqlite_path)
    raw.execute("VACUUM")  # a valid, empty database file
    assert raw.execute("PRAGMA user_version").fetchone() == (0,)
    raw.close()
    store = open_sqlite(sqlite_path)
    try:
        store.write([make_job()])
        assert len(store.query()) == 1
    finally:
        store.close()
    raw = sqlite3.connect(sqlite_path)
    assert raw.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
    raw.close()


def test_sqlite_upgrades_a_version_one_database_and_keeps_its_jobs(sqlite_path):
    """A file from before boot-time heartbeats opens, migrates, and keeps every row."""
    raw = sqlite3.connect(sqlite_path)
    raw.executescript(MIGRATIONS[0])
    raw.execute(
        "INSERT INTO jobs (id, name, status, seq, created_at, node, max_attempts, attempts,"
        " last_heartbeat) VALUES ('old', 'demo', 'running', 1, 1.0, 'n', 3, 1, 2.0)"
    )
    raw.execute("PRAGMA user_version = 1")
    raw.commit()
    raw.close()
    store = open_sqlite(sqlite_path)
    try:
        old = store.get("old")
        assert old is not None and old.last_heartbeat == 2.0
        assert (old.heartbeat_boottime, old.boot_id) == (None, None)
        old.heartbeat_boottime, old.boot_id = 10.5, "boot"
        store.write([], soft=[old])
        again = store.get("old")
        assert again is not None and (again.heartbeat_boottime, again.boot_id) == (10.5, "boot")
    finally:
        store.close()
    raw = sqlite3.connect(sqlite_path)
    assert raw.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,) == (4,)
    raw.close()


def make_v2_database(path: Path) -> None:
    """A file as jobvisor left it before workflow instances (schema version 2), one job in it."""
    raw = sqlite3.connect(path)
    raw.executescript(MIGRATIONS[0])
    raw.executescript(MIGRATIONS[1])
    raw.execute(
        "INSERT INTO jobs (id, name, status, seq, created_at, node, max_attempts, attempts,"
        " last_heartbeat, heartbeat_boottime, boot_id)"
        " VALUES ('v2job', 'demo', 'running', 7, 1.0, 'n', 3, 1, 2.0, 3.5, 'boot-2')"
    )
    raw.execute("PRAGMA user_version = 2")
    raw.commit()
    raw.close()


def test_sqlite_upgrades_a_version_two_database_keeping_jobs_and_adding_instances(sqlite_path):
    """A file from before workflow instances keeps every job and then stores instances too."""
    make_v2_database(sqlite_path)
    store = open_sqlite(sqlite_path)
    try:
        job = store.get("v2job")
        assert job is not None and (job.seq, job.heartbeat_boottime, job.boot_id) == (
            7,
            3.5,
            "boot-2",
        )
        assert store.load_active_instances() == [] and store.query_instances() == []
        instance = make_instance(steps={"a": StepState(job_id="v2job")})
        store.write([job], (), [instance])
        got = store.get_instance(instance.id)
        assert got is not None and got.steps["a"].job_id == "v2job"
    finally:
        store.close()
    raw = sqlite3.connect(sqlite_path)
    assert raw.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
    raw.close()


def test_sqlite_upgrades_a_version_one_database_to_instances_in_one_open(sqlite_path):
    """A version-1 file passes through both migrations and can then hold instances."""
    raw = sqlite3.connect(sqlite_path)
    raw.executescript(MIGRATIONS[0])
    raw.execute("PRAGMA user_version = 1")
    raw.commit()
    raw.close()
    store = open_sqlite(sqlite_path)
    try:
        instance = make_instance()
        store.write([], (), [instance])
        assert [i.id for i in store.query_instances()] == [instance.id]
    finally:
        store.close()


def test_sqlite_instance_listings_and_start_up_read_use_indexes(sqlite_path):
    """Start-up reads and listings search an index; pages of a listing need no sort."""
    open_sqlite(sqlite_path).close()
    raw = sqlite3.connect(sqlite_path)
    queries = [
        ("SELECT id FROM workflow_instances WHERE status IN (?, ?) ORDER BY seq", ("a", "b")),
        (
            "SELECT id FROM workflow_instances WHERE parent_id IS NULL"
            " ORDER BY created_at DESC, seq DESC LIMIT 10",
            (),
        ),
        (
            "SELECT id FROM workflow_instances WHERE parent_id IS NULL AND workflow = ?"
            " ORDER BY created_at DESC, seq DESC LIMIT 10",
            ("w",),
        ),
        (
            "SELECT id FROM workflow_instances WHERE parent_id = ?"
            " ORDER BY created_at DESC, seq DESC LIMIT 10",
            ("p",),
        ),
    ]
    for sql, params in queries:
        plan = " ".join(row[-1] for row in raw.execute(f"EXPLAIN QUERY PLAN {sql}", params))
        assert "USING INDEX" in plan or "USING COVERING INDEX" in plan, (sql, plan)
        if "LIMIT" in sql:  # a page of a long listing: read in index order, not sorted
            assert "TEMP B-TREE" not in plan, (sql, plan)
    raw.close()


def test_sqlite_refuses_a_database_from_a_newer_version(sqlite_path):
    """A file whose schema is newer than ours is refused, naming both versions, untouched."""
    newer = SCHEMA_VERSION + 3
    raw = sqlite3.connect(sqlite_path)
    raw.execute(f"PRAGMA user_version = {newer}")
    raw.close()
    store = SqliteStore(path=sqlite_path)
    with pytest.raises(StoreError) as info:
        store.open()
    store.close()
    message = str(info.value)
    assert str(sqlite_path) in message
    assert f"schema version {newer}" in message and f"({SCHEMA_VERSION})" in message
    raw = sqlite3.connect(sqlite_path)
    assert raw.execute("PRAGMA user_version").fetchone() == (newer,)
    assert raw.execute("SELECT name FROM sqlite_master").fetchall() == []
    raw.close()


def test_sqlite_refuses_a_file_that_is_not_a_database(sqlite_path):
    """A garbage file gives a StoreError naming the file, not a raw sqlite3 error."""
    sqlite_path.write_bytes(b"this is not an SQLite database, just text\n" * 100)
    store = SqliteStore(path=sqlite_path)
    with pytest.raises(StoreError, match=r"cannot open SQLite store .*not a database") as info:
        store.open()
    store.close()
    assert str(sqlite_path) in str(info.value)


def test_sqlite_creates_missing_parent_folders(tmp_path):
    """db_path may point into folders that do not exist yet."""
    path = tmp_path / "a" / "b" / "jobs.db"
    store = open_sqlite(path)
    store.close()
    assert path.exists()


def test_sqlite_payload_it_cannot_encode_fails_as_store_error_and_writes_nothing(sqlite_path):
    """An unencodable payload (an int over 64 bits) is a StoreError; the batch rolls back."""
    store = open_sqlite(sqlite_path)
    try:
        good, bad = make_job(), make_job(data={"n": 2**64})
        with pytest.raises(StoreError, match="commit failed"):
            store.write([good, bad])
        assert store.query() == []
        store.write([good])  # the connection is still usable
        assert store.get(good.id) is not None
    finally:
        store.close()


def test_sqlite_using_a_closed_store_is_a_store_error(sqlite_path):
    """Calls on a store that is not open raise StoreError, not AttributeError."""
    store = SqliteStore(path=sqlite_path)
    with pytest.raises(StoreError, match="not open"):
        store.write([make_job()])


# --- make_store ---------------------------------------------------------------------------


@pytest.fixture
def plugin_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Path, str]]:
    """A folder for a store module with a unique name; sys.path and modules restored."""
    folder = tmp_path / "plugins"
    folder.mkdir()
    name = f"jv_store_{uuid.uuid4().hex[:12]}"
    monkeypatch.setattr(sys, "path", list(sys.path))
    yield folder, name
    sys.modules.pop(name, None)


def settings_for(tmp_path: Path, store: str, **extra: object):
    return settings_from_mapping(
        {"store": store, "python_path": ["plugins"], "socket_dir": "/tmp/jv-x", **extra},
        base_dir=tmp_path,
        source=str(tmp_path / "jobvisor.toml"),
    )


STORE_MODULE = '''
from supervisor.stores.memory import MemoryStore


class RecordingStore(MemoryStore):
    """A custom store: the memory store, remembering the settings it was made with."""

    def __init__(self, settings):
        super().__init__(settings)
        self.settings = settings


class NotAStore:
    def __init__(self, settings):
        pass

    def open(self):
        pass


class AlmostAStore:
    """Everything but max_seq and load_finished_since."""

    def __init__(self, settings):
        pass

    def open(self): ...
    def close(self): ...
    def write(self, jobs, soft=()): ...
    def load_active(self): ...
    def get(self, job_id): ...
    def query(self, **kw): ...


class JobsOnlyStore:
    """A custom store written before workflow instances existed: jobs only."""

    def __init__(self, settings):
        self.inner = MemoryStore(settings)
        self.writes = 0

    def open(self):
        self.inner.open()

    def close(self):
        self.inner.close()

    def write(self, jobs, soft=()):
        self.writes += 1
        self.inner.write(jobs, soft)

    def load_active(self):
        return self.inner.load_active()

    def load_finished_since(self, since):
        return self.inner.load_finished_since(since)

    def get(self, job_id):
        return self.inner.get(job_id)

    def query(self, **kw):
        return self.inner.query(**kw)

    def max_seq(self):
        return self.inner.max_seq()


class OldWriteStore(MemoryStore):
    """Has the instance readers (inherited) but overrides write without instances."""

    def write(self, jobs, soft=()):
        super().write(jobs, soft)
'''


def test_make_store_builds_the_named_stores(tmp_path):
    """ "memory" and "sqlite" (and persist = false) pick the shipped stores."""
    assert isinstance(make_store(settings_for(tmp_path, "memory")), MemoryStore)
    sqlite = make_store(settings_for(tmp_path, "sqlite", db_path="x/j.db"))
    assert isinstance(sqlite, SqliteStore) and sqlite.path == tmp_path / "x" / "j.db"
    assert isinstance(make_store(settings_for(tmp_path, "sqlite", persist=False)), MemoryStore)


def test_make_store_loads_a_custom_class_from_python_path(tmp_path, plugin_dir):
    """store = "module:Class" imports the module from python_path and passes the settings."""
    folder, name = plugin_dir
    (folder / f"{name}.py").write_text(STORE_MODULE)
    settings = settings_for(tmp_path, f"{name}:RecordingStore")
    store = make_store(settings)
    assert type(store).__name__ == "RecordingStore"
    assert store.settings is settings  # type: ignore[attr-defined]
    store.open()
    store.write([make_job(seq=4)])
    assert store.max_seq() == 4


def test_make_store_names_a_missing_module(tmp_path, plugin_dir):
    """An unimportable module is a ConfigError naming the file, the key and the module."""
    _folder, name = plugin_dir
    with pytest.raises(ConfigError) as info:
        make_store(settings_for(tmp_path, f"{name}:Store"))
    message = str(info.value)
    assert "jobvisor.toml: store:" in message and name in message


def test_make_store_names_a_missing_class(tmp_path, plugin_dir):
    """A module without the named class is a ConfigError naming the class."""
    folder, name = plugin_dir
    (folder / f"{name}.py").write_text(STORE_MODULE)
    with pytest.raises(ConfigError, match=f"store: cannot load '{name}:Nope'.*Nope"):
        make_store(settings_for(tmp_path, f"{name}:Nope"))


@pytest.mark.parametrize(
    ("cls", "missing"),
    [
        (
            "NotAStore",
            ["close", "write", "load_active", "load_finished_since", "get", "query", "max_seq"],
        ),
        ("AlmostAStore", ["load_finished_since", "max_seq"]),
    ],
)
def test_make_store_names_the_methods_an_object_lacks(tmp_path, plugin_dir, cls, missing):
    """A class that is not a store is refused, listing exactly the methods it lacks."""
    folder, name = plugin_dir
    (folder / f"{name}.py").write_text(STORE_MODULE)
    with pytest.raises(ConfigError) as info:
        make_store(settings_for(tmp_path, f"{name}:{cls}"))
    message = str(info.value)
    assert f"'{name}:{cls}' is not a store (missing: {', '.join(missing)})" in message


def test_make_store_checks_every_method_of_the_store_protocol():
    """The methods make_store names as missing are exactly those of the Store protocol."""
    protocol_methods = {
        name for name, value in vars(Store).items() if callable(value) and not name.startswith("_")
    }
    assert set(STORE_METHODS) == protocol_methods


@pytest.mark.parametrize("value", ["nocolon", "mod:", ":Class"])
def test_make_store_refuses_a_malformed_name(tmp_path, value):
    """A store name that is neither known nor module:Class says what is expected."""
    with pytest.raises(ConfigError, match='store: expected "memory", "sqlite"'):
        make_store(settings_for(tmp_path, value))


def test_postgres_store_is_refused_clearly_for_now(tmp_path):
    """store = "postgres" needs a dsn, and then says the adapter is not available yet."""
    with pytest.raises(ConfigError, match='dsn: store = "postgres" needs a dsn'):
        settings_for(tmp_path, "postgres")
    settings = settings_for(tmp_path, "postgres", dsn="postgresql://localhost/jobs")
    with pytest.raises(ConfigError, match="store: the postgres store is not available yet"):
        make_store(settings)


# --- what reaches a store -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        ({"n": 2**64}, "cannot be stored as msgpack"),
        ({"when": object()}, "cannot be stored as msgpack"),
        ("x" * (1 << 20), "the limit is"),
    ],
)
def test_enqueue_refuses_data_no_store_can_hold(start, data, problem):
    """A payload msgpack cannot encode (or too big) is a BadRequest; nothing is stored."""
    sv = start({"demo": {"command": sys.executable, "args": ["-c", "pass"]}})
    with pytest.raises(BadRequest, match=problem):
        sv.enqueue("demo", data)
    assert sv.call(sv.sup.store.query) == []
    later = time.time() + 3600  # scheduled, so no worker is started
    job_id = sv.enqueue("demo", {"n": 2**64 - 1}, run_at=later)  # the supervisor carries on
    assert sv.call(sv.sup.store.get, job_id) is not None


def test_a_supervisor_on_a_database_from_a_newer_version_refuses_to_start(tmp_path):
    """Supervisor.open fails with the StoreError and releases what it had opened."""
    settings = make_settings(tmp_path / "state", db_path=str(tmp_path / "new.db"))
    raw = sqlite3.connect(settings.db_path)
    raw.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    raw.close()
    sup = Supervisor(settings)
    with pytest.raises(StoreError, match="newer than this jobvisor"):
        sup.open()
    assert sup.loop.selector.get_map() is None  # the loop was closed with the store
    shutil.rmtree(str(settings.socket_dir), ignore_errors=True)


# --- a custom store from before workflow instances ----------------------------------------


def test_shipped_stores_persist_instances():
    """Memory and SQLite stores are instance stores: nothing is missing."""
    for store in (MemoryStore(), SqliteStore(path="/nonexistent/never-opened.db")):
        assert instance_support_missing(store) == []
        assert instance_store(store) is store
        assert isinstance(store, InstanceStore)


@pytest.mark.parametrize(
    ("cls", "missing"),
    [
        (
            "JobsOnlyStore",
            "write(jobs, soft, instances), load_active_instances, get_instance, "
            "query_instances, max_instance_seq",
        ),
        ("OldWriteStore", "write(jobs, soft, instances)"),
    ],
)
def test_a_store_without_instances_is_still_a_store_and_says_what_it_lacks(
    tmp_path, plugin_dir, cls, missing
):
    """make_store accepts it for jobs; asking it for instances names the store, the workflow and the gap."""
    folder, name = plugin_dir
    (folder / f"{name}.py").write_text(STORE_MODULE)
    store = make_store(settings_for(tmp_path, f"{name}:{cls}"))
    assert instance_store(store) is None
    with pytest.raises(InstancesUnsupported) as info:
        require_instance_store(store, "orders")
    message = str(info.value)
    assert message.startswith("workflow 'orders' cannot run: ")
    assert f"the store {name}:{cls} does not persist workflow instances" in message
    assert f"(missing: {missing})" in message and "docs/persistence.md" in message
    assert isinstance(info.value, StoreError)


def test_a_supervisor_on_a_store_without_instances_runs_jobs(tmp_path, plugin_dir, start):
    """Jobs run end to end on a pre-instance store: it is only ever called with two arguments."""
    folder, name = plugin_dir
    (folder / f"{name}.py").write_text(STORE_MODULE)
    sv = start(
        {"demo": {"command": sys.executable, "args": ["-c", "pass"]}},
        store=f"{name}:JobsOnlyStore",
        python_path=[str(folder)],
    )
    job_id = sv.enqueue("demo", {"x": 1}, run_at=time.time() + 3600)
    stored = sv.call(sv.sup.store.get, job_id)
    assert stored is not None and stored.status is JobStatus.SCHEDULED
    assert sv.call(lambda: sv.sup.store.writes) >= 1


def test_an_instance_commit_on_a_store_without_instances_fails_and_keeps_the_changes(
    tmp_path, plugin_dir
):
    """The commit carrying an instance is refused with InstancesUnsupported; nothing is lost."""
    folder, name = plugin_dir
    (folder / f"{name}.py").write_text(STORE_MODULE)
    settings = make_settings(
        tmp_path / "state", store=f"{name}:JobsOnlyStore", python_path=[str(folder)]
    )
    sup = Supervisor(settings)
    sup.open()
    try:
        instance = make_instance()
        sup.instances.insert(instance)
        with pytest.raises(InstancesUnsupported, match="does not persist workflow instances"):
            sup.commit()
        assert sup.instances.take_changes() == [instance]  # kept for a retry, then dropped
    finally:
        sup.close()
        shutil.rmtree(str(settings.socket_dir), ignore_errors=True)
