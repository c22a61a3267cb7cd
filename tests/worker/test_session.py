"""The sans-IO Session: bytes and events only, no sockets, threads or sleeping."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import protocol
from jobvisor_worker import (
    FATAL_CODES,
    Acked,
    CancelRequested,
    OutcomeAlreadyReported,
    ProtocolViolation,
    Refused,
    Session,
    SessionState,
    SessionStateError,
    Welcomed,
)
from jobvisor_worker._session import TRANSITIONS, Input
from protocol import (
    Ack,
    Auth,
    Cancel,
    Challenge,
    Completed,
    Error,
    Failed,
    Heartbeat,
    Hello,
    Log,
    Message,
    Progress,
    Started,
    Welcome,
    handshake,
)
from tests.protocol.wirejson import load_vectors


def welcome(**fields: Any) -> Welcome:
    base: dict[str, Any] = {
        "job_id": "j1",
        "name": "job",
        "data": {"a": 1},
        "attempt": 1,
        "heartbeat_interval": 0.5,
        "reconnect_interval": 2.0,
        "give_up_after": 60.0,
    }
    return Welcome(**(base | fields))


WELCOME = welcome()
WORKER_NONCE = bytes(range(32))
SUPERVISOR_NONCE = bytes(range(32, 64))
KEY = handshake.token_key("tok")


def make(**kwargs: Any) -> Session:
    kwargs.setdefault("pid", 4242)
    kwargs.setdefault("wall_clock", lambda: 1000.0)
    kwargs.setdefault("urandom", lambda n: WORKER_NONCE[:n])
    return Session("j1", "tok", **kwargs)


def decode(data: bytes) -> list[Message]:
    return protocol.Decoder().feed(data)


def challenge(key: bytes = KEY, worker_nonce: bytes = WORKER_NONCE) -> Challenge:
    """The challenge a supervisor knowing ``key`` sends to a hello with ``worker_nonce``."""
    proof = handshake.supervisor_proof(key, "j1", worker_nonce, SUPERVISOR_NONCE)
    return Challenge(nonce=SUPERVISOR_NONCE, proof=proof)


def connect(session: Session, now: float = 0.0) -> Message:
    """Connect ``session`` and answer its hello with a valid challenge; returns its auth."""
    session.connection_made()
    assert session.receive_data(protocol.encode(challenge())) == []
    assert session.wants_to_send
    (auth,) = decode(session.data_to_send(now))
    return auth


def ready(session: Session, now: float = 0.0) -> list[Message]:
    """Connect, authenticate and welcome ``session``; returns what it sent after the welcome."""
    connect(session, now)
    events = session.receive_data(protocol.encode(WELCOME))
    assert [type(e) for e in events] == [Welcomed]
    return decode(session.data_to_send(now))


def test_connection_made_returns_hello():
    """A new connection starts with a hello carrying version, job id, pid and a nonce."""
    session = make()
    assert decode(session.connection_made()) == [
        Hello(v=2, job_id="j1", pid=4242, nonce=WORKER_NONCE)
    ]
    assert session.state is SessionState.HANDSHAKING


def test_hello_never_carries_the_token_and_each_connection_has_a_fresh_nonce():
    """The token is not on the wire; the nonce of every connection is new random bytes."""
    session = Session("j1", "tok-7c1f9a", pid=1)
    first = session.connection_made()
    session.connection_lost()
    second = session.connection_made()
    assert b"tok-7c1f9a" not in first + second
    (hello1,), (hello2,) = decode(first), decode(second)
    assert isinstance(hello1, Hello) and isinstance(hello2, Hello)
    assert hello1.nonce is not None and len(hello1.nonce) == 32
    assert hello1.nonce != hello2.nonce


def test_valid_challenge_is_answered_with_the_worker_proof():
    """After a right challenge the session hands out exactly one auth with the worker proof."""
    session = make()
    auth = connect(session)
    expected = handshake.worker_proof(KEY, "j1", SUPERVISOR_NONCE, WORKER_NONCE)
    assert auth == Auth(proof=expected)
    assert session.state is SessionState.AUTHENTICATING
    assert session.data_to_send(1.0) == b""  # nothing more until the welcome


def test_golden_handshake_vector_gives_the_same_auth_frame():
    """Fed the golden challenge frame, the session answers with the golden auth frame."""
    vectors = {case["name"]: case for case in load_vectors()["valid"]}
    first = load_vectors()["handshake"][0]
    session = Session(
        first["job_id"],
        first["token"],
        pid=4242,
        urandom=lambda n: bytes.fromhex(first["worker_nonce_hex"]),
    )
    assert session.connection_made().hex() == vectors["hello"]["hex"]
    assert session.receive_data(bytes.fromhex(vectors["challenge"]["hex"])) == []
    assert session.data_to_send(0.0).hex() == vectors["auth"]["hex"]


@pytest.mark.parametrize(
    "bad",
    [
        challenge(key=handshake.token_key("not-tok")),  # an impostor without the token
        challenge(worker_nonce=bytes(32)),  # a proof made for another connection
        Challenge(  # our own proof reflected back
            nonce=SUPERVISOR_NONCE,
            proof=handshake.worker_proof(KEY, "j1", SUPERVISOR_NONCE, WORKER_NONCE),
        ),
    ],
    ids=["wrong_token", "other_nonce", "reflected"],
)
def test_a_peer_that_does_not_prove_itself_gets_nothing(bad: Challenge):
    """A wrong challenge proof is a violation, and not even the auth or the outbox leave."""
    session = make()
    session.progress(50)
    session.log("info", "secret-ish")
    session.complete({"r": 1})
    session.connection_made()
    (event,) = session.receive_data(protocol.encode(bad))
    assert isinstance(event, ProtocolViolation)
    assert "not our supervisor" in event.reason
    assert session.state is SessionState.CLOSING
    assert not session.wants_to_send
    assert session.data_to_send(100.0) == b""
    # and the next (real) supervisor still gets everything
    session.connection_lost()
    assert [m.TYPE for m in ready(session)] == ["started", "progress", "log", "completed"]


def test_welcome_before_a_challenge_is_a_violation():
    """A peer that skips the challenge (proves nothing) cannot welcome the worker."""
    session = make()
    session.complete(1)
    session.connection_made()
    (event,) = session.receive_data(protocol.encode(WELCOME))
    assert isinstance(event, ProtocolViolation)
    assert session.data_to_send(1.0) == b""


def test_nothing_is_sent_before_welcome():
    """Queued messages wait until the supervisor welcomed the connection."""
    session = make()
    session.progress(5)
    assert session.data_to_send(0.0) == b""
    session.connection_made()
    assert session.data_to_send(100.0) == b""
    session.connection_lost()
    connect(session)  # the auth is all that leaves before the welcome
    assert session.data_to_send(200.0) == b""


def test_welcome_then_started_then_outbox():
    """After a welcome the first bytes are started, then what was queued before it."""
    session = make()
    session.log("info", "early")
    session.progress(5, "five")
    sent = ready(session)
    assert [m.TYPE for m in sent] == ["started", "progress", "log"]
    assert sent[0] == Started()
    assert session.welcome == WELCOME
    assert session.state is SessionState.READY


def test_welcome_event_says_whether_it_is_the_first():
    """The first welcome is marked first; the welcome of a reconnect is not."""
    session = make()
    connect(session)
    (first,) = session.receive_data(protocol.encode(WELCOME))
    session.connection_lost()
    connect(session)
    (second,) = session.receive_data(protocol.encode(WELCOME))
    assert isinstance(first, Welcomed)
    assert isinstance(second, Welcomed)
    assert (first.first, second.first) == (True, False)


def test_newer_progress_replaces_unsent_one():
    """Only the latest unsent progress is kept."""
    session = make()
    for pct in (10, 20, 30):
        session.progress(pct, f"p{pct}")
    sent = ready(session)
    progress = [m for m in sent if isinstance(m, Progress)]
    assert [(p.percent, p.message) for p in progress] == [(30.0, "p30")]


def test_latest_progress_and_unacked_outcome_are_replayed_after_reconnect():
    """A new connection gets the latest progress again and the outcome until acked."""
    session = make()
    ready(session)
    session.progress(50, "half")
    session.log("info", "sent once")
    session.complete({"r": 1})
    first = decode(session.data_to_send(1.0))
    assert [m.TYPE for m in first] == ["progress", "log", "completed"]
    session.connection_lost()
    again = ready(session, 2.0)
    assert [m.TYPE for m in again] == ["started", "progress", "completed"]
    assert isinstance(again[2], Completed)
    assert again[2].result == {"r": 1}


def test_ack_stops_replay_of_the_outcome():
    """Once acked, the outcome is not resent after a reconnect."""
    session = make()
    ready(session)
    session.fail("bad", stack="tb")
    sent = decode(session.data_to_send(1.0))
    assert sent == [Failed(error="bad", stack="tb", ts=1_000_000)]
    assert session.receive_data(protocol.encode(Ack(of="failed"))) == [Acked("failed")]
    assert session.outcome_acked
    session.connection_lost()
    assert [m.TYPE for m in ready(session, 2.0)] == ["started"]


def test_ack_for_another_outcome_is_ignored():
    """An ack naming an outcome we did not report changes nothing."""
    session = make()
    ready(session)
    assert session.receive_data(protocol.encode(Ack(of="completed"))) == []
    session.fail("x")
    assert session.receive_data(protocol.encode(Ack(of="completed"))) == []
    assert not session.outcome_acked


def test_logs_are_bounded_and_drops_reported_first():
    """Beyond max_buffered_logs the oldest go; a warn log with the count leads the rest."""
    session = make(max_buffered_logs=3)
    for i in range(5):
        session.log("info", f"m{i}")
    sent = ready(session)
    logs = [m for m in sent if isinstance(m, Log)]
    assert logs[0].level == "warn"
    assert logs[0].data == {"dropped": 2}
    assert "dropped the 2 oldest" in logs[0].message
    assert [m.message for m in logs[1:]] == ["m2", "m3", "m4"]
    assert session.dropped_logs == 2
    session.log("info", "later")
    assert [m.TYPE for m in decode(session.data_to_send(1.0))] == ["log"]  # reported once


def test_logs_already_handed_out_are_not_replayed():
    """Logs are at most once: a reconnect does not send them again."""
    session = make()
    ready(session)
    session.log("info", "once")
    assert [m.TYPE for m in decode(session.data_to_send(1.0))] == ["log"]
    session.connection_lost()
    assert [m.TYPE for m in ready(session, 2.0)] == ["started"]


def test_heartbeat_when_nothing_was_sent_for_an_interval():
    """data_to_send yields a heartbeat once heartbeat_interval passed without sending."""
    session = make()
    ready(session, now=10.0)  # the welcome's interval (0.5) replaces the default
    assert session.heartbeat_interval == 0.5
    assert session.next_deadline() == 10.5
    assert session.data_to_send(10.4) == b""
    assert decode(session.data_to_send(10.5)) == [Heartbeat()]
    session.log("info", "x")
    session.data_to_send(10.7)  # a log counts as a sign of life too
    assert session.data_to_send(11.1) == b""
    assert decode(session.data_to_send(11.2)) == [Heartbeat()]


def test_fixed_heartbeat_interval_ignores_the_welcome():
    """A heartbeat_interval fixed by the caller is not replaced by the welcome's."""
    session = make(heartbeat_interval=2.0, heartbeat_interval_fixed=True)
    ready(session)
    assert session.heartbeat_interval == 2.0


def test_no_deadline_unless_ready():
    """Heartbeats are only due on a welcomed connection."""
    session = make()
    assert session.next_deadline() is None
    session.connection_made()
    assert session.next_deadline() is None
    session.connection_lost()
    connect(session)
    assert session.next_deadline() is None


@pytest.mark.parametrize("authenticated", [False, True], ids=["to_hello", "to_auth"])
@pytest.mark.parametrize("code", sorted(FATAL_CODES))
def test_fatal_refusal(code: str, authenticated: bool):
    """An error answering hello or auth with a disowning code is fatal and terminal."""
    session = make()
    if authenticated:
        connect(session)
    else:
        session.connection_made()
    events = session.receive_data(protocol.encode(Error(code=code, message="no")))
    assert events == [Refused(code, "no", fatal=True)]
    assert session.state is SessionState.REFUSED
    session.connection_lost()
    with pytest.raises(SessionStateError):
        session.connection_made()


def test_other_refusals_are_not_fatal():
    """An error with another code, or after the welcome, only closes this connection."""
    session = make()
    session.connection_made()
    events = session.receive_data(protocol.encode(Error(code="overloaded", message="busy")))
    assert events == [Refused("overloaded", "busy", fatal=False)]
    assert session.state is SessionState.CLOSING
    session.connection_lost()
    ready(session)
    events = session.receive_data(protocol.encode(Error(code="bad_token", message="late")))
    assert events == [Refused("bad_token", "late", fatal=False)]


def test_cancel_is_reported():
    """A cancel becomes an event and is remembered with its reason."""
    session = make()
    ready(session)
    assert session.receive_data(protocol.encode(Cancel(reason="stop"))) == [CancelRequested("stop")]
    assert session.cancel_requested
    assert session.cancel_reason == "stop"


@pytest.mark.parametrize(
    ("before_welcome", "message"),
    [
        (True, Ack(of="completed")),
        (True, Cancel()),
        (True, challenge()),
        (False, WELCOME),
        (False, challenge()),
        (False, Progress(percent=1)),
        (True, welcome(job_id="other")),
    ],
)
def test_out_of_turn_messages_are_violations(before_welcome: bool, message: Message):
    """A message that makes no sense in the current state is a protocol violation."""
    session = make()
    if before_welcome:
        connect(session)
    else:
        ready(session)
    (event,) = session.receive_data(protocol.encode(message))
    assert isinstance(event, ProtocolViolation)
    assert session.state is SessionState.CLOSING
    assert session.receive_data(protocol.encode(Cancel())) == []  # the rest is ignored


def test_garbage_is_a_violation_after_the_good_messages():
    """Messages before a bad frame are reported, then the violation."""
    session = make()
    connect(session)
    data = protocol.encode(WELCOME) + b"\x00\x00\x00\x01\xc1"
    events = session.receive_data(data)
    assert [type(e) for e in events] == [Welcomed, ProtocolViolation]


def test_receive_data_while_disconnected_is_a_driver_bug():
    """Feeding bytes without a connection raises an error naming the state."""
    with pytest.raises(SessionStateError, match="disconnected"):
        make().receive_data(b"x")


def test_transition_table_is_enforced():
    """Every (state, input) pair missing from the table is refused."""
    for state, event in itertools.product(SessionState, Input):
        session = make()
        session._state = state  # white box: drive the table directly
        if (state, event) in TRANSITIONS:
            assert session._fire(event) is TRANSITIONS[state, event]
        else:
            with pytest.raises(SessionStateError, match=state.value):
                session._fire(event)


def test_reports_after_the_outcome_are_discarded():
    """Once complete/fail was called, progress and logs are not queued any more."""
    session = make()
    session.complete(None)
    assert session.progress(10) is False
    assert session.log("info", "late") is False
    with pytest.raises(TypeError):  # a bad value is still the caller's error
        session.log("info", "late", {"x": object()})
    assert [m.TYPE for m in ready(session)] == ["started", "completed"]


def test_outcome_can_be_reported_once():
    """A second complete or fail raises OutcomeAlreadyReported."""
    session = make()
    session.complete(1)
    with pytest.raises(OutcomeAlreadyReported):
        session.fail("x")


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda s: s.progress(101), ValueError),
        (lambda s: s.progress(-1), ValueError),
        (lambda s: s.progress(float("nan")), ValueError),
        (lambda s: s.progress("50"), TypeError),
        (lambda s: s.progress(True), TypeError),
        (lambda s: s.progress(5, 7), TypeError),
        (lambda s: s.progress(5, None, {"x": object()}), TypeError),
        (lambda s: s.log("trace", "m"), ValueError),
        (lambda s: s.log("info", b"bytes"), TypeError),
        (lambda s: s.complete(object()), TypeError),
        (lambda s: s.fail(ValueError("x")), TypeError),
        (lambda s: s.log("info", "x" * 2_000_000), ValueError),
    ],
)
def test_bad_reports_raise_in_the_caller(call: Any, error: type[Exception]):
    """Values that cannot go on the wire raise at the call, and nothing is queued."""
    session = make()
    with pytest.raises(error):
        call(session)
    assert session.outcome is None
    assert [m.TYPE for m in ready(session)] == ["started"]


def test_frame_limit_counts_the_body_only():
    """A report whose msgpack body is exactly max_frame bytes is queued; one byte more is not."""
    limit = len(protocol.encode_body(Log(level="info", message="x" * 40, ts=1_000_000)))
    session = make(max_frame=limit)
    assert session.log("info", "x" * 40) is True
    with pytest.raises(ValueError, match=f"{limit + 1} bytes encoded"):
        session.log("info", "x" * 41)


def test_pid_defaults_to_the_current_process():
    """Without an explicit pid, hello carries os.getpid() of the caller."""
    import os

    session = Session("j1", "tok")
    (hello,) = decode(session.connection_made())
    assert isinstance(hello, Hello)
    assert hello.pid == os.getpid()


def test_messages_carry_a_wall_clock_timestamp():
    """Reports carry ts in milliseconds from the injected wall clock."""
    session = make(wall_clock=lambda: 1234.5678)
    session.progress(1)
    (_started, progress) = ready(session)
    assert isinstance(progress, Progress)
    assert progress.ts == 1_234_567


@given(st.lists(st.integers(min_value=1, max_value=16), min_size=1, max_size=50))
def test_any_split_of_the_stream_gives_the_same_events(cuts: list[int]):
    """Welcome, cancel and ack arrive the same whatever the byte boundaries."""
    stream = (
        protocol.encode(WELCOME)
        + protocol.encode(Cancel(reason="r"))
        + protocol.encode(Ack(of="completed"))
    )
    session = make()
    session.complete(True)
    connect(session)
    events = []
    pos = 0
    for size in itertools.cycle(cuts):
        if pos >= len(stream):
            break
        events += session.receive_data(stream[pos : pos + size])
        pos += size
    assert [type(e) for e in events] == [Welcomed, CancelRequested, Acked]


def test_progress_accepts_any_real_number():
    """A Real that is not a float (Fraction, numpy scalars) is sent as a float."""
    from fractions import Fraction

    session = make()
    session.progress(Fraction(1, 2))  # type: ignore[arg-type]
    (_started, progress) = ready(session)
    assert isinstance(progress, Progress)
    assert progress.percent == 0.5


def test_a_log_queued_while_disconnected_keeps_the_time_it_was_made():
    """ts is stamped when the log is made, not when it finally leaves after an outage."""
    clock = [1000.0]
    session = make(wall_clock=lambda: clock[0])
    ready(session)
    session.connection_lost()
    session.log("info", "during the outage")
    clock[0] = 1042.0  # the supervisor is back 42 s later
    (_started, log) = ready(session, 42.0)
    assert isinstance(log, Log)
    assert log.ts == 1_000_000
