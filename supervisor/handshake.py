"""The supervisor's half of the handshake: ``hello`` -> ``challenge``, ``auth`` -> accepted.

Theory of operation (docs/protocol.md, section 5, is the specification). The token never
crosses the wire; the store keeps only its SHA-256, which is exactly the HMAC key both
proofs use (``protocol.handshake``). On a ``hello`` we check what can be checked without
a secret (version, nonce, that the socket is this job's, that the job has a running
attempt), then answer ``challenge`` with a fresh nonce and our proof, and remember on the
connection what the worker must prove (``PendingAuth``). On ``auth`` we compare its proof
in constant time with the one we expect. Only then does the conversation attach the
connection to the attempt and send ``welcome``; until then nothing the connection says is
believed. The handshake timeout armed at accept time covers the whole exchange.

A refusal is an ``error`` frame and a closed connection (``WorkerConn.reject``); the job,
its real worker and every other connection carry on.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from protocol import PROTOCOL_VERSION, Auth, Challenge, ErrorCode, Hello, handshake

if TYPE_CHECKING:
    from supervisor.attempts import Attempt
    from supervisor.channels import WorkerConn
    from supervisor.ports import AttemptControl


@dataclass(slots=True, frozen=True)
class PendingAuth:
    """A connection that was challenged: what its ``auth`` must prove, and for which attempt."""

    attempt: Attempt
    pid: int
    expected_proof: bytes


class Handshake:
    """Challenges hellos and checks auths for the job sockets of one supervisor."""

    def __init__(
        self, runner: AttemptControl, urandom: Callable[[int], bytes] = os.urandom
    ) -> None:
        self.runner = runner
        self._urandom = urandom

    def challenge(self, conn: WorkerConn[Attempt], hello: Hello) -> None:
        """Answer a first ``hello`` with a ``challenge`` (or refuse it and close)."""
        if hello.v != PROTOCOL_VERSION:
            conn.reject(
                ErrorCode.UNSUPPORTED_VERSION,
                f"protocol version {hello.v} is not supported "
                f"(this supervisor speaks {PROTOCOL_VERSION})",
            )
            return
        if hello.nonce is None:
            conn.reject(
                ErrorCode.INVALID_MESSAGE,
                f"hello of version {PROTOCOL_VERSION} must carry a "
                f"{handshake.NONCE_SIZE}-byte nonce",
            )
            return
        if hello.job_id != conn.job_id:
            conn.reject(
                ErrorCode.WRONG_JOB,
                f"this socket belongs to job {conn.job_id}, not to job {hello.job_id}",
            )
            return
        attempt = self.runner.attempts.get(conn.job_id)
        if attempt is None:
            conn.reject(ErrorCode.JOB_NOT_RUNNING, f"job {conn.job_id} has no running attempt")
            return
        key = bytes.fromhex(attempt.token_hash)
        nonce = self._urandom(handshake.NONCE_SIZE)
        conn.handshake = PendingAuth(
            attempt=attempt,
            pid=hello.pid,
            expected_proof=handshake.worker_proof(key, conn.job_id, nonce, hello.nonce),
        )
        proof = handshake.supervisor_proof(key, conn.job_id, hello.nonce, nonce)
        conn.send(Challenge(nonce=nonce, proof=proof))

    def verify(self, conn: WorkerConn[Attempt], auth: Auth) -> PendingAuth | None:
        """Check the ``auth`` of a challenged connection; ``None``: refused and closed."""
        pending = conn.handshake
        assert isinstance(pending, PendingAuth)
        conn.handshake = None
        if not handshake.proofs_match(pending.expected_proof, auth.proof):
            conn.reject(
                ErrorCode.BAD_TOKEN,
                f"invalid proof for job {conn.job_id} (wrong token, or an attempt that was "
                "superseded)",
            )
            return None
        if self.runner.attempts.get(conn.job_id) is not pending.attempt:
            # The attempt ended (or a new one began) while the worker computed its proof.
            conn.reject(
                ErrorCode.JOB_NOT_RUNNING,
                f"the attempt of job {conn.job_id} this connection was challenged for ended",
            )
            return None
        return pending
