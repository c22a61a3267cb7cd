"""The handshake's proofs: both sides show they know the attempt's token, never send it.

Theory of operation (docs/protocol.md, "Handshake", is the specification). A worker's
``hello`` carries a fresh random ``nonce``; the supervisor answers ``challenge`` with a
nonce of its own and a *supervisor proof*; only a worker that found that proof right
answers ``auth`` with a *worker proof*; only a supervisor that found that one right sends
``welcome``. Each proof is an HMAC-SHA256 keyed with the SHA-256 of the token (what the
supervisor's store keeps) over one byte string::

    label || 0x00 || len(job_id) as 4 bytes big-endian || job_id (UTF-8)
          || first nonce (32 bytes) || second nonce (32 bytes)

    supervisor proof: label "jobvisor/2 supervisor", nonces: worker's, then supervisor's
    worker proof:     label "jobvisor/2 worker",     nonces: supervisor's, then worker's

Why this shape: the nonces make every proof unique to one connection, so a captured proof
is worthless on the next one; the two labels (and the swapped nonce order) make a proof
of one side useless as a proof of the other, so nothing can be reflected; the lengths are
fixed or prefixed, so no two inputs share a byte string. Comparisons are constant-time.

Pure computation (hashlib and hmac only): nonces come from the caller, which draws them
from ``os.urandom`` (or a fixed source in tests and in the golden vectors).
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from typing import Final

NONCE_SIZE: Final = 32
PROOF_SIZE: Final = 32  # the size of an HMAC-SHA256
SUPERVISOR_LABEL: Final = b"jobvisor/2 supervisor"
WORKER_LABEL: Final = b"jobvisor/2 worker"


def token_key(token: str) -> bytes:
    """The HMAC key of a token: its SHA-256 (32 bytes), what the supervisor stores."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


def proof_input(label: bytes, job_id: str, first_nonce: bytes, second_nonce: bytes) -> bytes:
    """The exact bytes a proof is computed over (see the module docstring)."""
    job = job_id.encode("utf-8", "surrogatepass")
    _check_nonce(first_nonce)
    _check_nonce(second_nonce)
    return label + b"\x00" + struct.pack(">I", len(job)) + job + first_nonce + second_nonce


def supervisor_proof(
    key: bytes, job_id: str, worker_nonce: bytes, supervisor_nonce: bytes
) -> bytes:
    """What the supervisor sends in ``challenge.proof``."""
    data = proof_input(SUPERVISOR_LABEL, job_id, worker_nonce, supervisor_nonce)
    return hmac.new(key, data, hashlib.sha256).digest()


def worker_proof(key: bytes, job_id: str, supervisor_nonce: bytes, worker_nonce: bytes) -> bytes:
    """What the worker sends in ``auth.proof``."""
    data = proof_input(WORKER_LABEL, job_id, supervisor_nonce, worker_nonce)
    return hmac.new(key, data, hashlib.sha256).digest()


def proofs_match(expected: bytes, received: bytes) -> bool:
    """Constant-time comparison (the time taken does not tell how many bytes matched)."""
    return hmac.compare_digest(expected, received)


def _check_nonce(nonce: bytes) -> None:
    if len(nonce) != NONCE_SIZE:
        raise ValueError(f"a nonce is {NONCE_SIZE} bytes, got {len(nonce)}")
