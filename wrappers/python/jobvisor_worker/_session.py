"""The worker's side of the protocol, sans-IO: one ``Session`` per job.

Theory of operation. A session holds what outlives a connection (the job's identity, the
outbox of unsent progress/logs/outcome, whether the outcome was acked) and what one
connection needs (a ``protocol.Decoder``, the handshake state). It owns no socket, thread
or clock; a driver does the I/O and passes monotonic ``now`` in:

    hello = session.connection_made()           # a socket just connected: send these bytes
    events = session.receive_data(data)         # bytes read from the socket -> events
    out = session.data_to_send(now)             # bytes to write now (may be b""): the
                                                # auth answering a challenge, later the outbox
    session.next_deadline()                     # when data_to_send has a heartbeat due
    session.connection_lost()                   # EOF / error / the driver closed it

The handshake (docs/protocol.md, section 5): ``hello`` carries a fresh nonce and no
token; the peer must answer ``challenge`` with a proof that it knows the token
(``protocol.handshake``). A wrong proof means the peer is not our supervisor: the session
reports a ``ProtocolViolation`` and gives that connection nothing, not even the ``auth``.
Only after a right proof is ``auth`` handed out, and only after the ``welcome`` that
follows does anything else leave: ``started`` first, then the outbox (latest progress,
logs oldest first, the outcome until acked), or a ``heartbeat`` when nothing was handed
out for ``heartbeat_interval``. After ``connection_lost`` the next connection replays the
same way (docs/protocol.md, "Reconnect").

The job side queues with ``progress``, ``log``, ``complete`` and ``fail``; they never do
I/O. Each queued message is stamped with its ``ts`` when it is made, so that logs
buffered through an outage carry the time they happened.

A ``Session`` is not thread-safe: the threaded driver guards it with one lock. It is
small (slotted, one decoder, one deque) so that a benchmark can drive a thousand of
them from a single selectors loop.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from enum import Enum
from numbers import Real
from typing import Any, Final

import protocol
from jobvisor_worker._events import (
    Acked,
    CancelRequested,
    Event,
    ProtocolViolation,
    Refused,
    Welcomed,
)
from jobvisor_worker._outbox import Outbox
from jobvisor_worker.errors import OutcomeAlreadyReported, SessionStateError
from protocol import (
    DEFAULT_MAX_FRAME,
    LOG_LEVELS,
    PROTOCOL_VERSION,
    Ack,
    Auth,
    Cancel,
    Challenge,
    Completed,
    Error,
    ErrorCode,
    Failed,
    Heartbeat,
    Hello,
    Log,
    Message,
    Progress,
    ProtocolError,
    Started,
    Welcome,
    handshake,
)

# Codes in an error answering hello that mean "this job is not yours": stop, don't retry.
FATAL_CODES: Final = frozenset(
    {
        ErrorCode.BAD_TOKEN.value,
        ErrorCode.UNKNOWN_JOB.value,
        ErrorCode.WRONG_JOB.value,
        ErrorCode.JOB_NOT_RUNNING.value,
        ErrorCode.UNSUPPORTED_VERSION.value,
    }
)

_STARTED: Final = protocol.encode(Started())
_HEARTBEAT: Final = protocol.encode(Heartbeat())
# What msgpack raises for values it cannot pack (unsupported types, huge ints, deep nesting).
_ENCODE_ERRORS: Final = (TypeError, ValueError, OverflowError)


class SessionState(Enum):
    DISCONNECTED = "disconnected"  # no connection; the outbox fills up
    HANDSHAKING = "handshaking"  # hello sent, waiting for the peer's challenge (its proof)
    AUTHENTICATING = "authenticating"  # the peer proved itself; auth sent, awaiting welcome
    READY = "ready"  # welcomed: data_to_send hands out the outbox
    CLOSING = "closing"  # the peer refused or misbehaved; the driver should close
    REFUSED = "refused"  # a fatal refusal: this job is not ours any more (terminal)


class Input(Enum):
    CONNECT = "connection_made"
    CHALLENGE = "valid challenge"
    WELCOME = "welcome"
    ERROR = "error"
    FATAL_ERROR = "fatal error"
    VIOLATION = "protocol violation"
    LOST = "connection_lost"


S = SessionState
# The whole state machine. A (state, input) pair that is not here is a driver bug or a
# supervisor speaking out of turn; ``_fire`` raises SessionStateError naming both.
TRANSITIONS: Final[dict[tuple[SessionState, Input], SessionState]] = {
    (S.DISCONNECTED, Input.CONNECT): S.HANDSHAKING,
    (S.DISCONNECTED, Input.LOST): S.DISCONNECTED,
    (S.HANDSHAKING, Input.CHALLENGE): S.AUTHENTICATING,
    (S.HANDSHAKING, Input.ERROR): S.CLOSING,
    (S.HANDSHAKING, Input.FATAL_ERROR): S.REFUSED,
    (S.HANDSHAKING, Input.VIOLATION): S.CLOSING,
    (S.HANDSHAKING, Input.LOST): S.DISCONNECTED,
    (S.AUTHENTICATING, Input.WELCOME): S.READY,
    (S.AUTHENTICATING, Input.ERROR): S.CLOSING,
    (S.AUTHENTICATING, Input.FATAL_ERROR): S.REFUSED,
    (S.AUTHENTICATING, Input.VIOLATION): S.CLOSING,
    (S.AUTHENTICATING, Input.LOST): S.DISCONNECTED,
    (S.READY, Input.ERROR): S.CLOSING,
    (S.READY, Input.VIOLATION): S.CLOSING,
    (S.READY, Input.LOST): S.DISCONNECTED,
    (S.CLOSING, Input.LOST): S.DISCONNECTED,
    (S.REFUSED, Input.LOST): S.REFUSED,
}


def _no_empty_map(data: Any) -> Any:
    # job.info("x") passes {}: send no data field rather than an empty map.
    return None if isinstance(data, dict) and not data else data


class Session:
    """Sans-IO protocol state of one job's link to its supervisor (see module docstring)."""

    __slots__ = (
        "_auth_frame",
        "_decoder",
        "_key",
        "_last_sent",
        "_nonce",
        "_outbox",
        "_started_pending",
        "_state",
        "_urandom",
        "_wall_clock",
        "cancel_reason",
        "cancel_requested",
        "heartbeat_interval",
        "heartbeat_interval_fixed",
        "job_id",
        "max_frame",
        "pid",
        "welcome",
    )

    def __init__(
        self,
        job_id: str,
        token: str,
        *,
        pid: int | None = None,
        heartbeat_interval: float = 5.0,
        heartbeat_interval_fixed: bool = False,
        max_buffered_logs: int = 1000,
        max_frame: int = DEFAULT_MAX_FRAME,
        wall_clock: Callable[[], float] = time.time,
        urandom: Callable[[int], bytes] = os.urandom,
    ) -> None:
        if not job_id:
            raise ValueError("job_id must be a non-empty string")
        if max_buffered_logs < 1:
            raise ValueError(f"max_buffered_logs must be >= 1, got {max_buffered_logs}")
        self.job_id = job_id
        # The token itself is not kept: only the HMAC key the handshake needs.
        self._key = handshake.token_key(token)
        self._urandom = urandom
        self._nonce = b""  # this connection's hello nonce
        self._auth_frame = b""  # the auth to hand out after a valid challenge
        self.pid = pid  # None: os.getpid() at each hello (correct after a fork)
        # A welcome's heartbeat_interval replaces ours unless the caller fixed it.
        self.heartbeat_interval = heartbeat_interval
        self.heartbeat_interval_fixed = heartbeat_interval_fixed
        self.max_frame = max_frame
        self._wall_clock = wall_clock
        self._state = S.DISCONNECTED
        self._decoder: protocol.Decoder | None = None
        self._outbox = Outbox(max_buffered_logs)
        self._started_pending = False
        self._last_sent = -math.inf
        self.welcome: Welcome | None = None
        self.cancel_requested = False
        self.cancel_reason: str | None = None

    # --- state ------------------------------------------------------------------------

    @property
    def state(self) -> SessionState:
        return self._state

    @property
    def outcome(self) -> str | None:
        """``"completed"``, ``"failed"``, or ``None`` while the job has not finished."""
        return self._outbox.outcome_kind

    @property
    def outcome_acked(self) -> bool:
        return self._outbox.acked

    @property
    def dropped_logs(self) -> int:
        """Logs dropped so far because more than ``max_buffered_logs`` were waiting."""
        return self._outbox.total_dropped

    @property
    def buffered_logs(self) -> int:
        return self._outbox.buffered_logs

    @property
    def wants_to_send(self) -> bool:
        """True when ``data_to_send`` would return bytes other than a heartbeat."""
        if self._state is S.AUTHENTICATING:
            return bool(self._auth_frame)
        return self._state is S.READY and (self._started_pending or self._outbox.pending)

    def _fire(self, event: Input) -> SessionState:
        try:
            new = TRANSITIONS[self._state, event]
        except KeyError:
            raise SessionStateError(
                f"{event.value} is not allowed in session state {self._state.value}"
            ) from None
        self._state = new
        return new

    # --- driver side ------------------------------------------------------------------

    def connection_made(self) -> bytes:
        """A new connection to the supervisor: returns the ``hello`` frame to send first."""
        self._fire(Input.CONNECT)
        self._decoder = protocol.Decoder()
        pid = self.pid if self.pid is not None else os.getpid()
        self._nonce = self._urandom(handshake.NONCE_SIZE)  # fresh for every connection
        return protocol.encode(
            Hello(v=PROTOCOL_VERSION, job_id=self.job_id, pid=pid, nonce=self._nonce)
        )

    def connection_lost(self) -> None:
        """The connection is gone (or the driver closed it); what was unsent stays queued."""
        self._fire(Input.LOST)
        self._decoder = None
        self._auth_frame = b""
        self._started_pending = False
        self._outbox.rewind()

    def receive_data(self, data: bytes | bytearray | memoryview) -> list[Event]:
        """Consume bytes read from the supervisor; returns what happened, in order."""
        state = self._state
        if state is S.CLOSING or state is S.REFUSED:
            return []  # the peer already said goodbye or broke the stream: ignore the rest
        decoder = self._decoder
        if decoder is None or state is S.DISCONNECTED:
            raise SessionStateError(f"receive_data is not allowed in session state {state.value}")
        events: list[Event] = []
        try:
            decoder.receive_data(data)
            while self._state in (S.HANDSHAKING, S.AUTHENTICATING, S.READY):
                message = decoder.next_message()
                if message is None:
                    break
                self._handle(message, events)
        except ProtocolError as exc:
            self._fire(Input.VIOLATION)
            events.append(ProtocolViolation(f"{exc.code}: {exc.message}"))
        return events

    def _handle(self, message: Message, events: list[Event]) -> None:
        state = self._state
        if isinstance(message, Error):
            # A refusal before the peer proved itself is believed too: it can only stop
            # this job, which a peer holding our port can do anyway (by never answering
            # until the give-up window ends); it can never make us send anything.
            fatal = state is not S.READY and message.code in FATAL_CODES
            self._fire(Input.FATAL_ERROR if fatal else Input.ERROR)
            events.append(Refused(message.code, message.message, fatal))
        elif state is S.HANDSHAKING and isinstance(message, Challenge):
            self._on_challenge(message, events)
        elif state is S.AUTHENTICATING and isinstance(message, Welcome):
            if message.job_id != self.job_id:
                self._violation(f"welcome is for job {message.job_id!r}", events)
                return
            self._fire(Input.WELCOME)
            first = self.welcome is None
            self.welcome = message
            if not self.heartbeat_interval_fixed:
                self.heartbeat_interval = float(message.heartbeat_interval)
            self._started_pending = True
            events.append(Welcomed(message, first))
        elif state is S.READY and isinstance(message, Ack):
            if self._outbox.ack(message.of):
                events.append(Acked(message.of))
            # An ack for an outcome we did not report is a stale duplicate: ignore it.
        elif state is S.READY and isinstance(message, Cancel):
            self.cancel_requested = True
            self.cancel_reason = message.reason
            events.append(CancelRequested(message.reason))
        else:
            self._violation(f"unexpected {message.TYPE!r} in state {state.value}", events)

    def _on_challenge(self, challenge: Challenge, events: list[Event]) -> None:
        expected = handshake.supervisor_proof(self._key, self.job_id, self._nonce, challenge.nonce)
        if not handshake.proofs_match(expected, challenge.proof):
            # Not our supervisor (or not for this attempt): it gets nothing from us.
            self._violation("the peer's challenge proof is wrong: it is not our supervisor", events)
            return
        self._fire(Input.CHALLENGE)
        proof = handshake.worker_proof(self._key, self.job_id, challenge.nonce, self._nonce)
        self._auth_frame = protocol.encode(Auth(proof=proof))

    def _violation(self, reason: str, events: list[Event]) -> None:
        self._fire(Input.VIOLATION)
        events.append(ProtocolViolation(reason))

    def data_to_send(self, now: float) -> bytes:
        """Bytes to write now: the auth after a valid challenge; after a welcome, started +
        outbox, else a due heartbeat. Nothing at all to a peer that has not proven itself."""
        if self._state is not S.READY:
            if self._state is S.AUTHENTICATING:
                frame, self._auth_frame = self._auth_frame, b""
                return frame
            return b""
        frames: list[bytes] = []
        if self._started_pending:
            frames.append(_STARTED)
            self._started_pending = False
        outbox = self._outbox
        if outbox.pending:
            dropped = outbox.take_dropped()
            if dropped:
                frames.append(self._dropped_warning(dropped))
            outbox.take(frames)
        if not frames:
            if now < self._last_sent + self.heartbeat_interval:
                return b""
            frames.append(_HEARTBEAT)
        self._last_sent = now
        return b"".join(frames)

    def next_deadline(self) -> float | None:
        """Monotonic time at which ``data_to_send`` will produce a heartbeat (if READY)."""
        if self._state is not S.READY:
            return None
        return self._last_sent + self.heartbeat_interval

    def _dropped_warning(self, dropped: int) -> bytes:
        message = (
            f"jobvisor_worker: dropped the {dropped} oldest log message(s): more than "
            f"{self._outbox.max_logs} were waiting to be sent"
        )
        return protocol.encode(
            Log(
                level="warn",
                message=message,
                data={"dropped": dropped},
                ts=self._ts(),
            )
        )

    # --- job side ---------------------------------------------------------------------

    def progress(self, percent: float, message: str | None = None, data: Any = None) -> bool:
        """Queue a progress report; False (and nothing queued) once the job has an outcome."""
        value: object = percent  # checked at run time: callers pass anything
        if isinstance(value, bool) or not isinstance(value, Real):  # numpy numbers too
            raise TypeError(f"percent must be a number, got {percent!r}")
        number = float(value)
        if not 0 <= number <= 100:  # NaN fails too
            raise ValueError(f"percent must be from 0 to 100, got {percent!r}")
        if message is not None and not isinstance(message, str):
            raise TypeError(f"progress message must be a string, got {message!r}")
        report = Progress(percent=number, message=message, data=_no_empty_map(data), ts=self._ts())
        return self._queue(report, self._outbox.put_progress)

    def log(self, level: str, message: str, data: Any = None) -> bool:
        """Queue a log line; False (and nothing queued) once the job has an outcome."""
        if level not in LOG_LEVELS:
            raise ValueError(f"log level must be one of {sorted(LOG_LEVELS)}, got {level!r}")
        if not isinstance(message, str):
            raise TypeError(f"log message must be a string, got {message!r}")
        report = Log(level=level, message=message, data=_no_empty_map(data), ts=self._ts())
        return self._queue(report, self._outbox.put_log)

    def _queue(self, report: Progress | Log, put: Callable[[bytes], None]) -> bool:
        # Encoded first: a bad value raises even after the outcome, as it always does.
        frame = self._encode(report)
        if self._outbox.outcome_kind is not None:
            return False  # the supervisor is done with this attempt
        put(frame)
        return True

    def complete(self, result: Any = None) -> None:
        """Record success; it is sent (and resent after reconnects) until acked."""
        self._check_no_outcome()
        frame = self._encode(Completed(result=result, ts=self._ts()))
        self._outbox.put_outcome(Completed.TYPE, frame)

    def fail(self, error: str, stack: str | None = None) -> None:
        """Record failure; it is sent (and resent after reconnects) until acked."""
        self._check_no_outcome()
        if not isinstance(error, str):
            raise TypeError(f"error must be a string, got {error!r}")
        if stack is not None and not isinstance(stack, str):
            raise TypeError(f"stack must be a string, got {stack!r}")
        frame = self._encode(Failed(error=error, stack=stack, ts=self._ts()))
        self._outbox.put_outcome(Failed.TYPE, frame)

    def _check_no_outcome(self) -> None:
        if self._outbox.outcome_kind is not None:
            raise OutcomeAlreadyReported(f"the job already reported {self._outbox.outcome_kind}")

    def _ts(self) -> int:
        """The ``ts`` of a message made now: wall-clock milliseconds."""
        return int(self._wall_clock() * 1000)

    def _encode(self, message: Message) -> bytes:
        try:
            body = protocol.encode_body(message)
        except _ENCODE_ERRORS as exc:
            raise TypeError(f"{message.TYPE} cannot be encoded as msgpack: {exc}") from None
        if len(body) > self.max_frame:
            raise ValueError(
                f"{message.TYPE} is {len(body)} bytes encoded, more than "
                f"the {self.max_frame}-byte frame limit"
            )
        return protocol.encode_frame(body)
