"""The default store: one SQLite file (stdlib ``sqlite3``), WAL, versioned schema.

Durability: every ``write`` is one ``BEGIN IMMEDIATE ... COMMIT``. In WAL mode with
``synchronous=NORMAL`` (the default) a committed transaction survives the supervisor
being killed at any instant; ``sqlite_synchronous = "full"`` also makes it survive
power loss, at the price of an fsync per commit (docs/persistence.md).

One process at a time. The connection uses ``locking_mode = EXCLUSIVE``: it holds the
database file's lock from open to close, so no other process can read or write the
store while a supervisor runs (read it through the API, or after stopping). With WAL,
exclusive mode also keeps the WAL index in the process's heap instead of a memory-mapped
``-shm`` file: a ``-shm`` file truncated, made immutable or on a full disk would
otherwise kill the supervisor with SIGBUS on its next access; now any failure of the
store's files is an I/O error, a ``StoreError``, and a clean exit. ``mmap_size = 0``
keeps the database file itself out of memory-mapped I/O for the same reason. The files
are created 0600 inside the 0700 state folder.

Payloads (``data``, ``result``, ``progress_data``, ``error``) are stored as msgpack, the
wire format they arrive in, so binary values round-trip exactly.

Workflow instances (schema version 3) are rows of ``workflow_instances``, written by
the same ``write`` transaction as the jobs: their payloads (``input``, ``output``,
``error``) and their map of step states (``steps``, as ``records.encode_steps`` plain
data) are msgpack too.

Schema versions live in ``PRAGMA user_version``; ``MIGRATIONS[n]`` takes a database
from version n to n+1, so a file made by any older jobvisor opens and is upgraded in
place, and a file from a newer one is refused with a clear error.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

from protocol import DecodeError, pack, unpack
from supervisor.errors import StoreError
from supervisor.records import RECORD_FIELDS, JobRecord
from supervisor.states import JobStatus, ProcessState
from supervisor.workflows.records import (
    INSTANCE_FIELDS,
    InstanceRecord,
    InstanceStatus,
    decode_steps,
    encode_steps,
)

MIGRATIONS: Final[tuple[str, ...]] = (
    # 0 -> 1: the jobs table.
    """
    CREATE TABLE jobs (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        data BLOB,
        status TEXT NOT NULL,
        seq INTEGER NOT NULL,
        created_at REAL NOT NULL,
        node TEXT NOT NULL,
        max_attempts INTEGER NOT NULL,
        attempts INTEGER NOT NULL,
        process_state TEXT,
        pid INTEGER,
        pid_start_time REAL,
        socket_path TEXT,
        tcp_port INTEGER,
        token_hash TEXT,
        last_heartbeat REAL,
        progress REAL,
        progress_message TEXT,
        progress_data BLOB,
        result BLOB,
        error BLOB,
        run_at REAL,
        started_at REAL,
        finished_at REAL
    );
    CREATE INDEX jobs_status_seq ON jobs (status, seq);
    CREATE INDEX jobs_name_status ON jobs (name, status);
    CREATE INDEX jobs_created ON jobs (created_at);
    CREATE INDEX jobs_finished ON jobs (finished_at);
    """,
    # 1 -> 2: each heartbeat's instant on the boot clock, and the boot's id, so that a
    # restarted supervisor judges a worker's silence without trusting the wall clock.
    """
    ALTER TABLE jobs ADD COLUMN heartbeat_boottime REAL;
    ALTER TABLE jobs ADD COLUMN boot_id TEXT;
    """,
    # 2 -> 3: workflow instances (docs/workflows.md, "Persistence"). Indexes: the active
    # ones at start, in seq order; listings of top-level instances (parent_id IS NULL)
    # or of one parent's children, newest first, optionally for one workflow.
    """
    CREATE TABLE workflow_instances (
        id TEXT PRIMARY KEY,
        seq INTEGER NOT NULL,
        workflow TEXT NOT NULL,
        status TEXT NOT NULL,
        input BLOB,
        created_at REAL NOT NULL,
        node TEXT NOT NULL,
        output BLOB,
        error BLOB,
        current_step TEXT,
        steps BLOB NOT NULL,
        parent_id TEXT,
        branch TEXT,
        started_at REAL,
        finished_at REAL,
        timeout_at REAL
    );
    CREATE INDEX workflow_instances_status_seq ON workflow_instances (status, seq);
    CREATE INDEX workflow_instances_listing
        ON workflow_instances (parent_id, created_at, seq);
    CREATE INDEX workflow_instances_workflow
        ON workflow_instances (parent_id, workflow, created_at, seq);
    """,
    # 3 -> 4: finished jobs that left their final status (deleted, purged by retention,
    # reopened by a manual retry), counted per kind and status, so that the settled
    # totals of GET /metrics never go down (docs/persistence.md).
    """
    CREATE TABLE settled_tally (
        name TEXT NOT NULL,
        status TEXT NOT NULL,
        left_count INTEGER NOT NULL,
        PRIMARY KEY (name, status)
    );
    """,
)
SCHEMA_VERSION: Final = len(MIGRATIONS)

_PACKED: Final = frozenset({"data", "progress_data", "result", "error"})
_COLUMNS: Final = ", ".join(RECORD_FIELDS)
# Built from the fixed column list; every value is a bound parameter.
_PLACEHOLDERS: Final = ", ".join("?" for _ in RECORD_FIELDS)
_UPDATES: Final = ", ".join(f"{c} = excluded.{c}" for c in RECORD_FIELDS if c != "id")
_UPSERT: Final = (
    f"INSERT INTO jobs ({_COLUMNS}) VALUES ({_PLACEHOLDERS}) "  # noqa: S608
    f"ON CONFLICT (id) DO UPDATE SET {_UPDATES}"
)
_SOFT: Final = (
    "UPDATE jobs SET last_heartbeat = ?, heartbeat_boottime = ?, boot_id = ?, progress = ?, "
    "progress_message = ?, progress_data = ? WHERE id = ?"
)
_ACTIVE = tuple(s.value for s in (JobStatus.PENDING, JobStatus.SCHEDULED, JobStatus.RUNNING))
_FINAL = tuple(s.value for s in (JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED))
_TALLY: Final = (
    "INSERT INTO settled_tally (name, status, left_count) VALUES (?, ?, ?) "
    "ON CONFLICT (name, status) DO UPDATE SET left_count = left_count + excluded.left_count"
)
# Uses the jobs_finished index: a retention batch reads only the rows it deletes.
_FINISHED_BEFORE: Final = (
    "SELECT id, name FROM jobs WHERE finished_at < ? AND status IN (?, ?, ?) "
    "ORDER BY finished_at LIMIT ?"
)

_INSTANCE_PACKED: Final = frozenset({"input", "output", "error", "steps"})
_INSTANCE_COLUMNS: Final = ", ".join(INSTANCE_FIELDS)
_INSTANCE_UPSERT: Final = (
    f"INSERT INTO workflow_instances ({_INSTANCE_COLUMNS}) "  # noqa: S608 - fixed columns
    f"VALUES ({', '.join('?' for _ in INSTANCE_FIELDS)}) ON CONFLICT (id) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in INSTANCE_FIELDS if c != "id")
)
_ACTIVE_INSTANCE = tuple(s.value for s in (InstanceStatus.PENDING, InstanceStatus.RUNNING))


def _make_private(path: Path) -> None:
    """Create the database file 0600 (or make an existing one and its -wal/-shm 0600).

    SQLite creates a new database file 0644 and chmods it so past the umask; it gives
    the -wal file the mode of the database file. Creating the file ourselves first,
    0600, is what keeps the store (job data, results) to its owner.
    """
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        os.fchmod(fd, 0o600)
    finally:
        os.close(fd)
    for suffix in ("-wal", "-shm"):
        with contextlib.suppress(FileNotFoundError):
            os.chmod(f"{path}{suffix}", 0o600)


def _to_row(job: JobRecord) -> tuple[Any, ...]:
    row = []
    for name in RECORD_FIELDS:
        value = getattr(job, name)
        if name in _PACKED and value is not None:
            value = pack(value)
        row.append(value)
    return tuple(row)


def _from_row(row: Sequence[Any]) -> JobRecord:
    values = dict(zip(RECORD_FIELDS, row, strict=True))
    for name in _PACKED:
        if values[name] is not None:
            values[name] = unpack(values[name])
    values["status"] = JobStatus(values["status"])
    if values["process_state"] is not None:
        values["process_state"] = ProcessState(values["process_state"])
    return JobRecord(**values)


def _instance_to_row(instance: InstanceRecord) -> tuple[Any, ...]:
    row = []
    for name in INSTANCE_FIELDS:
        value = getattr(instance, name)
        if name == "steps":
            value = pack(encode_steps(value))
        elif name in _INSTANCE_PACKED and value is not None:
            value = pack(value)
        row.append(value)
    return tuple(row)


def _instance_from_row(row: Sequence[Any]) -> InstanceRecord:
    values = dict(zip(INSTANCE_FIELDS, row, strict=True))
    for name in _INSTANCE_PACKED:
        if values[name] is not None:
            values[name] = unpack(values[name])
    values["status"] = InstanceStatus(values["status"])
    values["steps"] = decode_steps(values["steps"])
    return InstanceRecord(**values)


class SqliteStore:
    def __init__(self, settings: Any = None, *, path: str | Path | None = None) -> None:
        if path is None:
            path = settings.db_path
        self.path = Path(path)
        self.synchronous = getattr(settings, "sqlite_synchronous", "normal")
        self._db: sqlite3.Connection | None = None
        self.write_transactions = 0

    @property
    def db(self) -> sqlite3.Connection:
        if self._db is None:
            raise StoreError(f"SQLite store {self.path} is not open")
        return self._db

    def open(self) -> None:
        try:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            _make_private(self.path)
        except OSError as exc:
            raise StoreError(f"cannot open SQLite store {self.path}: {exc.strerror}") from None
        try:
            db = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False, timeout=5.0
            )
            # Before the first access, so that SQLite never maps the -shm file (see the
            # module docstring); and no memory-mapped I/O on the database file either.
            db.execute("PRAGMA locking_mode = EXCLUSIVE")
            db.execute("PRAGMA mmap_size = 0")
            db.execute("PRAGMA journal_mode = WAL")
            db.execute(f"PRAGMA synchronous = {self.synchronous.upper()}")
            db.execute("PRAGMA foreign_keys = ON")
            self._db = db
            self._migrate()
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open SQLite store {self.path}: {exc}") from None

    def _migrate(self) -> None:
        db = self.db
        (version,) = db.execute("PRAGMA user_version").fetchone()
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{self.path} has schema version {version}, newer than this jobvisor "
                f"understands ({SCHEMA_VERSION}); upgrade jobvisor"
            )
        for target in range(version, SCHEMA_VERSION):
            db.execute("BEGIN IMMEDIATE")
            try:
                for statement in MIGRATIONS[target].split(";"):
                    if statement.strip():
                        db.execute(statement)
                db.execute(f"PRAGMA user_version = {target + 1}")
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    def write(
        self,
        jobs: Sequence[JobRecord],
        soft: Sequence[JobRecord] = (),
        instances: Sequence[InstanceRecord] = (),
    ) -> None:
        if not jobs and not soft and not instances:
            return
        db = self.db
        try:
            db.execute("BEGIN IMMEDIATE")
            try:
                if jobs:
                    db.executemany(_UPSERT, [_to_row(job) for job in jobs])
                if soft:
                    db.executemany(
                        _SOFT,
                        [
                            (
                                j.last_heartbeat,
                                j.heartbeat_boottime,
                                j.boot_id,
                                j.progress,
                                j.progress_message,
                                None if j.progress_data is None else pack(j.progress_data),
                                j.id,
                            )
                            for j in soft
                        ],
                    )
                if instances:
                    db.executemany(
                        _INSTANCE_UPSERT, [_instance_to_row(instance) for instance in instances]
                    )
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise
        except (sqlite3.Error, TypeError, ValueError, OverflowError) as exc:
            # Encoding errors too (msgpack refuses an int over 64 bits, say): the
            # interface promises StoreError, the one failure the supervisor stops on.
            raise StoreError(f"SQLite store {self.path}: commit failed: {exc}") from None
        self.write_transactions += 1

    def _select(self, where: str, params: Sequence[Any]) -> list[JobRecord]:
        try:
            rows = self.db.execute(f"SELECT {_COLUMNS} FROM jobs {where}", params).fetchall()  # noqa: S608 - fixed column list
            return [_from_row(row) for row in rows]
        except (sqlite3.Error, DecodeError, ValueError) as exc:
            raise StoreError(f"SQLite store {self.path}: read failed: {exc}") from None

    def load_active(self) -> list[JobRecord]:
        return self._select("WHERE status IN (?, ?, ?) ORDER BY seq", _ACTIVE)

    def load_finished_since(self, since: float) -> list[JobRecord]:
        return self._select("WHERE finished_at >= ? AND pid IS NOT NULL", (since,))

    def get(self, job_id: str) -> JobRecord | None:
        rows = self._select("WHERE id = ?", (job_id,))
        return rows[0] if rows else None

    def query(
        self,
        *,
        name: str | None = None,
        status: JobStatus | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[JobRecord]:
        clauses, params = [], []
        if name is not None:
            clauses.append("name = ?")
            params.append(name)
        if status is not None:
            clauses.append("status = ?")
            params.append(status.value)
        where = ("WHERE " + " AND ".join(clauses)) if clauses else ""
        return self._select(
            f"{where} ORDER BY created_at DESC, seq DESC LIMIT ? OFFSET ?",
            [*params, limit, offset],
        )

    def max_seq(self) -> int:
        (value,) = self.db.execute("SELECT COALESCE(MAX(seq), 0) FROM jobs").fetchone()
        return int(value)

    # --- deleting and totals (base.ManagedStore) ---------------------------------------------

    def _transaction(self, what: str, work: Any) -> Any:
        """Run ``work(db)`` in one ``BEGIN IMMEDIATE ... COMMIT``; ``StoreError`` on failure."""
        db = self.db
        try:
            db.execute("BEGIN IMMEDIATE")
            try:
                result = work(db)
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise StoreError(f"SQLite store {self.path}: {what} failed: {exc}") from None
        self.write_transactions += 1
        return result

    def finished_before(self, before: float, limit: int) -> list[tuple[str, str]]:
        try:
            rows = self.db.execute(_FINISHED_BEFORE, (before, *_FINAL, limit)).fetchall()
        except sqlite3.Error as exc:
            raise StoreError(f"SQLite store {self.path}: read failed: {exc}") from None
        return [(str(job_id), str(name)) for job_id, name in rows]

    def delete_finished(self, job_ids: Sequence[str]) -> list[str]:
        if not job_ids:
            return []
        marks = ", ".join("?" for _ in job_ids)
        # Only finished rows: an id that became active again (a retry) is left alone.
        # Built from "?" marks only; every value is a bound parameter.
        select = f"SELECT id, name, status FROM jobs WHERE id IN ({marks}) AND status IN (?, ?, ?)"  # noqa: S608

        def work(db: sqlite3.Connection) -> list[str]:
            rows = db.execute(select, (*job_ids, *_FINAL)).fetchall()
            if not rows:
                return []
            ids = [row[0] for row in rows]
            db.execute(f"DELETE FROM jobs WHERE id IN ({', '.join('?' for _ in ids)})", ids)  # noqa: S608
            tally: dict[tuple[str, str], int] = {}
            for _id, name, status in rows:
                tally[name, status] = tally.get((name, status), 0) + 1
            db.executemany(_TALLY, [(name, status, n) for (name, status), n in tally.items()])
            return ids

        return list(self._transaction("delete", work))

    def tally_reopened(self, name: str, status: JobStatus) -> None:
        self._transaction("tally", lambda db: db.execute(_TALLY, (name, status.value, 1)))

    def settled_totals(self) -> dict[tuple[str, str], int]:
        totals: dict[tuple[str, str], int] = {}
        try:
            rows = self.db.execute(
                "SELECT name, status, COUNT(*) FROM jobs WHERE status IN (?, ?, ?) "
                "GROUP BY name, status",
                _FINAL,
            ).fetchall()
            rows += self.db.execute("SELECT name, status, left_count FROM settled_tally").fetchall()
        except sqlite3.Error as exc:
            raise StoreError(f"SQLite store {self.path}: read failed: {exc}") from None
        for name, status, count in rows:
            totals[name, status] = totals.get((name, status), 0) + int(count)
        return totals

    # --- workflow instances ---------------------------------------------------------------

    def _select_instances(self, where: str, params: Sequence[Any]) -> list[InstanceRecord]:
        sql = f"SELECT {_INSTANCE_COLUMNS} FROM workflow_instances {where}"  # noqa: S608 - fixed columns
        try:
            rows = self.db.execute(sql, params).fetchall()
            return [_instance_from_row(row) for row in rows]
        except (sqlite3.Error, DecodeError, ValueError, TypeError) as exc:
            raise StoreError(f"SQLite store {self.path}: read of instances failed: {exc}") from None

    def load_active_instances(self) -> list[InstanceRecord]:
        return self._select_instances("WHERE status IN (?, ?) ORDER BY seq", _ACTIVE_INSTANCE)

    def get_instance(self, instance_id: str) -> InstanceRecord | None:
        rows = self._select_instances("WHERE id = ?", (instance_id,))
        return rows[0] if rows else None

    def query_instances(
        self,
        *,
        workflow: str | None = None,
        status: InstanceStatus | None = None,
        parent_id: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[InstanceRecord]:
        clauses: list[str] = []
        params: list[Any] = []
        if parent_id is None:
            clauses.append("parent_id IS NULL")
        else:
            clauses.append("parent_id = ?")
            params.append(parent_id)
        if workflow is not None:
            clauses.append("workflow = ?")
            params.append(workflow)
        if status is not None:
            clauses.append("status = ?")
            params.append(status.value)
        return self._select_instances(
            f"WHERE {' AND '.join(clauses)} ORDER BY created_at DESC, seq DESC LIMIT ? OFFSET ?",
            [*params, limit, offset],
        )

    def max_instance_seq(self) -> int:
        try:
            (value,) = self.db.execute(
                "SELECT COALESCE(MAX(seq), 0) FROM workflow_instances"
            ).fetchone()
        except sqlite3.Error as exc:
            raise StoreError(f"SQLite store {self.path}: read of instances failed: {exc}") from None
        return int(value)
