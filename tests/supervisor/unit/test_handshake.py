"""The supervisor's half of the handshake, without sockets: golden bytes in and out."""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import protocol
from protocol import Auth, Challenge, Hello
from supervisor.attempts import hash_token
from supervisor.handshake import Handshake, PendingAuth
from tests.protocol.wirejson import load_vectors

VECTORS = load_vectors()
FIRST = VECTORS["handshake"][0]
FRAMES = {case["name"]: bytes.fromhex(case["hex"]) for case in VECTORS["valid"] if "hex" in case}
JOB = FIRST["job_id"]


@dataclass
class FakeConn:
    """What ``Handshake`` uses of a ``WorkerConn``: its job, send, reject, a slot."""

    job_id: str = JOB
    handshake: PendingAuth | None = None
    sent: list[protocol.Message] = field(default_factory=list)
    rejected: list[tuple[str, str]] = field(default_factory=list)

    def send(self, message: protocol.Message) -> None:
        self.sent.append(message)

    def reject(self, code: str, message: str) -> None:
        self.rejected.append((str(code), message))


def setup(token: str = FIRST["token"]) -> tuple[Handshake, Any, FakeConn]:
    attempt = SimpleNamespace(token_hash=hash_token(token))
    runner = SimpleNamespace(attempts={JOB: attempt})
    supervisor_nonce = bytes.fromhex(FIRST["supervisor_nonce_hex"])
    return Handshake(runner, urandom=lambda n: supervisor_nonce[:n]), runner, FakeConn()  # type: ignore[arg-type]


def hello() -> Hello:
    (message,) = protocol.Decoder().feed(FRAMES["hello"])
    assert isinstance(message, Hello)
    return message


def test_a_hello_gets_the_golden_challenge():
    """With the vectors' token and nonces, the challenge is byte for byte the golden frame."""
    shake, _runner, conn = setup()
    shake.challenge(conn, hello())  # type: ignore[arg-type]
    assert conn.rejected == []
    assert [protocol.encode(m) for m in conn.sent] == [FRAMES["challenge"]]


def test_the_golden_auth_is_accepted_once():
    """The golden auth proves the token: verify returns the pending attempt and clears it."""
    shake, runner, conn = setup()
    shake.challenge(conn, hello())  # type: ignore[arg-type]
    (auth,) = protocol.Decoder().feed(FRAMES["auth"])
    assert isinstance(auth, Auth)
    accepted = shake.verify(conn, auth)  # type: ignore[arg-type]
    assert accepted is not None and accepted.attempt is runner.attempts[JOB]
    assert accepted.pid == 4242
    assert conn.handshake is None and conn.rejected == []


def test_a_reflected_or_wrong_proof_is_bad_token():
    """The supervisor's own proof sent back, or a proof under another token, is refused."""
    for proof in ("reflected", "other token"):
        shake, _runner, conn = setup()
        shake.challenge(conn, hello())  # type: ignore[arg-type]
        (challenge,) = conn.sent
        assert isinstance(challenge, Challenge)
        if proof == "reflected":
            auth = Auth(proof=challenge.proof)
        else:
            key = protocol.handshake.token_key("another token")
            nonce = bytes.fromhex(FIRST["worker_nonce_hex"])
            auth = Auth(proof=protocol.handshake.worker_proof(key, JOB, challenge.nonce, nonce))
        assert shake.verify(conn, auth) is None  # type: ignore[arg-type]
        assert [code for code, _ in conn.rejected] == ["bad_token"]


def test_an_attempt_that_ended_during_the_handshake_is_not_welcomed():
    """A right proof for an attempt that was replaced meanwhile gets job_not_running."""
    shake, runner, conn = setup()
    shake.challenge(conn, hello())  # type: ignore[arg-type]
    runner.attempts[JOB] = SimpleNamespace(token_hash=hash_token(FIRST["token"]))
    (auth,) = protocol.Decoder().feed(FRAMES["auth"])
    assert shake.verify(conn, auth) is None  # type: ignore[arg-type]
    assert [code for code, _ in conn.rejected] == ["job_not_running"]


def test_hellos_refused_before_any_secret_is_used():
    """Other version, no nonce, another job, no attempt: refused with their codes, no challenge."""
    cases = [
        (Hello(v=1, job_id=JOB, pid=1), "unsupported_version"),
        (Hello(v=2, job_id=JOB, pid=1), "invalid_message"),
        (Hello(v=2, job_id="another-job", pid=1, nonce=bytes(32)), "wrong_job"),
    ]
    for message, code in cases:
        shake, _runner, conn = setup()
        shake.challenge(conn, message)  # type: ignore[arg-type]
        assert (conn.sent, [c for c, _ in conn.rejected]) == ([], [code])
    shake, runner, conn = setup()
    runner.attempts.clear()
    shake.challenge(conn, hello())  # type: ignore[arg-type]
    assert (conn.sent, [c for c, _ in conn.rejected]) == ([], ["job_not_running"])
    ((_, text),) = conn.rejected
    assert JOB in text
