"""Property: any instance a store is given reads back equal, through memory and SQLite."""

from __future__ import annotations

import dataclasses
import itertools
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from supervisor.stores import MemoryStore, SqliteStore
from supervisor.workflows.records import InstanceRecord, InstanceStatus, StepState, StepStatus
from tests.protocol.strategies import wire_values

times = st.none() | st.floats(allow_nan=False, allow_infinity=False)
names = st.text(max_size=20)
ids = st.text(alphabet="0123456789abcdef", min_size=20, max_size=20)
errors = st.none() | st.dictionaries(st.text(max_size=10), wire_values, max_size=4)

step_states = st.builds(
    StepState,
    status=st.sampled_from(StepStatus),
    input=wire_values,
    output=wire_values,
    error=errors,
    attempts=st.integers(0, 2**31),
    job_id=st.none() | ids,
    started_at=times,
    finished_at=times,
    retry_at=times,
    children=st.lists(ids, max_size=4),
)


def instances(seq: int) -> st.SearchStrategy[InstanceRecord]:
    return st.builds(
        InstanceRecord,
        id=ids,
        seq=st.just(seq),
        workflow=names,
        status=st.sampled_from(InstanceStatus),
        input=wire_values,
        created_at=st.floats(allow_nan=False, allow_infinity=False),
        node=names,
        output=wire_values,
        error=errors,
        current_step=st.none() | names,
        steps=st.dictionaries(names, step_states, max_size=5),
        parent_id=st.none() | ids,
        branch=st.none() | names,
        started_at=times,
        finished_at=times,
        timeout_at=times,
    )


def as_plain(instance: InstanceRecord) -> dict[str, Any]:
    plain = dataclasses.asdict(instance)
    plain["step_order"] = list(instance.steps)
    return plain


def test_any_instance_round_trips_through_both_stores(tmp_path: Path):
    """Whatever the payloads, step states and optional fields, get_instance gives back the same."""
    sqlite = SqliteStore(path=tmp_path / "j.db")
    memory = MemoryStore()
    sqlite.open()
    memory.open()
    seqs = itertools.count(1)
    try:

        @settings(max_examples=100)  # each example is a real SQLite commit
        @given(st.data())
        def check(data: st.DataObject) -> None:
            instance = data.draw(instances(next(seqs)))
            for store in (sqlite, memory):
                store.write([], (), [instance])
                got = store.get_instance(instance.id)
                assert got is not None and as_plain(got) == as_plain(instance)

        check()
    finally:
        sqlite.close()
        memory.close()
