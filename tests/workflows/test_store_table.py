"""InstanceTable: the in-memory active instances and the changes the next commit writes."""

from __future__ import annotations

import pytest

from supervisor.workflows.errors import IllegalInstanceTransition
from supervisor.workflows.instances import InstanceTable
from supervisor.workflows.records import InstanceStatus, StepState
from tests.workflows.store_factories import make_instance


def test_an_inserted_instance_is_a_change_until_taken():
    """insert() makes the instance readable at once and hands it to the next take_changes()."""
    table = InstanceTable()
    instance = make_instance()
    table.insert(instance)
    assert table.get(instance.id) is instance and instance.id in table
    assert table.has_changes and table.has_pending_changes(instance.id)
    assert table.take_changes() == [instance]
    assert not table.has_changes and table.take_changes() == []
    assert table.get(instance.id) is instance


def test_a_new_instance_must_enter_pending():
    """insert() refuses an instance in any other status, naming it."""
    table = InstanceTable()
    instance = make_instance(status=InstanceStatus.RUNNING, workflow="orders")
    with pytest.raises(IllegalInstanceTransition, match=f"'orders' instance {instance.id}"):
        table.insert(instance)
    assert len(table) == 0


def test_inserting_an_id_twice_is_refused():
    """The same id cannot enter the table twice."""
    table = InstanceTable()
    instance = make_instance()
    table.insert(instance)
    with pytest.raises(IllegalInstanceTransition, match="already in the table"):
        table.load(make_instance(id=instance.id))


def test_loaded_instances_are_not_changes():
    """load() (from the store at start) puts an instance in memory without writing it again."""
    table = InstanceTable()
    table.load(make_instance(status=InstanceStatus.RUNNING, seq=40))
    assert not table.has_changes
    assert table.next_seq() == 41


def test_mark_records_each_changed_instance_once_in_first_change_order():
    """Several changes to one instance in an iteration are one row in the commit."""
    table = InstanceTable()
    a, b = make_instance(), make_instance()
    table.load(a)
    table.load(b)
    table.mark(b)
    a.current_step = "one"
    table.mark(a)
    a.steps["one"] = StepState()
    table.mark(a)
    assert table.take_changes() == [b, a]


def test_mark_of_an_instance_not_in_the_table_is_refused():
    """Marking a stranger (or a stale copy) is a bug, reported as such."""
    table = InstanceTable()
    instance = make_instance()
    table.load(instance)
    with pytest.raises(IllegalInstanceTransition, match="not in the table"):
        table.mark(instance.copy())


def test_set_status_checks_the_table_applies_changes_and_marks():
    """A legal status change applies the given fields and is committed next; an illegal one changes nothing."""
    table = InstanceTable()
    instance = make_instance()
    table.insert(instance)
    table.take_changes()
    table.set_status(instance, InstanceStatus.RUNNING, started_at=5.0, current_step="a")
    assert (instance.status, instance.started_at, instance.current_step) == (
        InstanceStatus.RUNNING,
        5.0,
        "a",
    )
    assert table.take_changes() == [instance]
    table.set_status(instance, InstanceStatus.COMPLETED, output={"ok": True})
    table.take_changes()
    with pytest.raises(IllegalInstanceTransition, match="completed -> running"):
        table.set_status(instance, InstanceStatus.RUNNING, output="changed")
    assert instance.output == {"ok": True} and not table.has_changes


def test_restore_puts_failed_changes_back_without_duplicates():
    """After a failed commit the same instances are taken again, once each."""
    table = InstanceTable()
    a, b = make_instance(), make_instance()
    table.insert(a)
    table.insert(b)
    taken = table.take_changes()
    table.mark(b)  # changed again while the commit was failing
    table.restore(taken)
    assert sorted(i.id for i in table.take_changes()) == sorted([a.id, b.id])


def test_forget_drops_only_finished_and_committed_instances():
    """An active instance, or one with uncommitted changes, stays; a committed finished one leaves."""
    table = InstanceTable()
    instance = make_instance()
    table.insert(instance)
    with pytest.raises(IllegalInstanceTransition, match="only finished instances leave"):
        table.forget(instance.id)
    table.set_status(instance, InstanceStatus.CANCELLED)
    with pytest.raises(IllegalInstanceTransition, match="uncommitted changes"):
        table.forget(instance.id)
    table.take_changes()
    table.forget(instance.id)
    assert table.get(instance.id) is None and len(table) == 0
    table.forget(instance.id)  # forgetting twice is harmless


def test_iteration_and_active_list_what_is_in_memory():
    """Iterating gives every instance in memory; active() only the pending and running, by seq."""
    table = InstanceTable()
    late = make_instance(seq=9, status=InstanceStatus.RUNNING)
    done = make_instance(seq=1, status=InstanceStatus.COMPLETED)
    early = make_instance(seq=3)
    for instance in (late, done, early):
        table.load(instance)
    assert {i.id for i in table} == {late.id, done.id, early.id} and len(table) == 3
    assert table.active() == [early, late]


def test_children_lists_a_parents_branches_until_they_are_forgotten():
    """children(parent) gives the parent's child instances by seq, and forgets the forgotten."""
    table = InstanceTable()
    parent = make_instance(status=InstanceStatus.RUNNING)
    second = make_instance(seq=20, parent_id=parent.id, branch="notify")
    first = make_instance(seq=10, parent_id=parent.id, branch="ship")
    other = make_instance(parent_id="someone-else", branch="x")
    for instance in (parent, second, first, other):
        table.load(instance)
    assert table.children(parent.id) == [first, second]
    assert table.children("nobody") == [] and table.children(other.id) == []
    first.status = InstanceStatus.COMPLETED
    table.forget(first.id)
    assert table.children(parent.id) == [second]
    second.status = InstanceStatus.FAILED
    table.forget(second.id)
    assert table.children(parent.id) == []


def test_advance_seq_keeps_new_seqs_above_the_stores_largest():
    """After advance_seq(n), new instances get seqs above n; it never moves the seq back."""
    table = InstanceTable()
    table.advance_seq(41)
    assert table.next_seq() == 42
    table.advance_seq(5)
    assert table.next_seq() == 43
