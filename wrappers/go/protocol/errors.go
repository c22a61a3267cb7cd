package protocol

import "fmt"

// ErrorCode is the code of a protocol error, as sent in error.code (docs/protocol.md, section 7).
type ErrorCode string

// The error codes of docs/protocol.md, section 7.
const (
	FrameTooLarge      ErrorCode = "frame_too_large"
	InvalidMsgpack     ErrorCode = "invalid_msgpack"
	InvalidMessage     ErrorCode = "invalid_message"
	UnknownType        ErrorCode = "unknown_type"
	UnsupportedVersion ErrorCode = "unsupported_version"
	HandshakeRequired  ErrorCode = "handshake_required"
	UnknownJob         ErrorCode = "unknown_job"
	WrongJob           ErrorCode = "wrong_job"
	BadToken           ErrorCode = "bad_token"
	JobNotRunning      ErrorCode = "job_not_running"
	UnexpectedMessage  ErrorCode = "unexpected_message"
)

// Error is a frame or message the peer sent that this protocol version rejects.
// Every failure of Decoder and Validate is an *Error; anything else escaping them is a bug.
type Error struct {
	Code    ErrorCode
	Message string
}

func (e *Error) Error() string { return string(e.Code) + ": " + e.Message }

func errorf(code ErrorCode, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}
