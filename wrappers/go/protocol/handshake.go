package protocol

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
)

// The labels that start each proof's input (docs/protocol.md, section 5).
const (
	supervisorLabel = "jobvisor/2 supervisor"
	workerLabel     = "jobvisor/2 worker"
)

// TokenKey is the HMAC key of a token: SHA-256 of its UTF-8 bytes. A worker keeps the
// key, not the token.
func TokenKey(token string) []byte {
	sum := sha256.Sum256([]byte(token))
	return sum[:]
}

// ProofInput is the exact byte string an HMAC of the handshake is computed over:
// label, 0x00, the job id's length (4 bytes, big-endian), the job id, then the nonces.
func ProofInput(label, jobID string, first, second []byte) []byte {
	b := make([]byte, 0, len(label)+1+4+len(jobID)+len(first)+len(second))
	b = append(b, label...)
	b = append(b, 0)
	b = binary.BigEndian.AppendUint32(b, uint32(len(jobID)))
	b = append(b, jobID...)
	b = append(b, first...)
	return append(b, second...)
}

// SupervisorInput and WorkerInput are the inputs of the two proofs.
func SupervisorInput(jobID string, workerNonce, supervisorNonce []byte) []byte {
	return ProofInput(supervisorLabel, jobID, workerNonce, supervisorNonce)
}

// WorkerInput is the input of the worker's proof: the nonces in the other order.
func WorkerInput(jobID string, supervisorNonce, workerNonce []byte) []byte {
	return ProofInput(workerLabel, jobID, supervisorNonce, workerNonce)
}

// SupervisorProof is what challenge.proof must be.
func SupervisorProof(key []byte, jobID string, workerNonce, supervisorNonce []byte) []byte {
	return mac(key, SupervisorInput(jobID, workerNonce, supervisorNonce))
}

// WorkerProof is what the worker sends in auth.proof.
func WorkerProof(key []byte, jobID string, supervisorNonce, workerNonce []byte) []byte {
	return mac(key, WorkerInput(jobID, supervisorNonce, workerNonce))
}

// ProofsMatch compares two proofs in constant time.
func ProofsMatch(expected, received []byte) bool {
	return hmac.Equal(expected, received)
}

func mac(key, input []byte) []byte {
	h := hmac.New(sha256.New, key)
	h.Write(input)
	return h.Sum(nil)
}
