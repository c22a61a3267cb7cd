package jobvisor

import (
	"context"
	"errors"
	"fmt"
)

// Exit codes of a worker that the library stops itself (see Terminate).
const (
	// ExitUnreachable (75, EX_TEMPFAIL): no supervisor accepted the job for the whole
	// give-up window; a restarted supervisor has declared it lost and may retry it.
	ExitUnreachable = 75
	// ExitRefused (77, EX_NOPERM): the supervisor said the job is not ours (bad token,
	// unknown job, wrong job, job not running, unsupported version).
	ExitRefused = 77
)

// ErrOutcomeReported is returned by Progress, Log, Complete and Fail once the job has
// reported its outcome: the supervisor is done with this attempt.
var ErrOutcomeReported = errors.New("jobvisor: the job already reported its outcome")

// ErrClosed is returned when the job's connection was closed (Close, or the library
// stopped the job) before what was asked could happen.
var ErrClosed = errors.New("jobvisor: the job's connection is closed")

// ConfigError is a missing or malformed setting (an environment variable or an Options
// field). A program that gets it was most likely not started by jobvisor.
type ConfigError struct {
	Setting string // the environment variable or option
	Problem string
}

func (e *ConfigError) Error() string {
	return fmt.Sprintf("jobvisor: %s %s", e.Setting, e.Problem)
}

// RefusedError is why a supervisor refused the job (an error frame answering the
// handshake with a final code). Reconnecting cannot help: the process exits ExitRefused,
// unless Options.Exit returns, in which case Connect or Complete return this error.
type RefusedError struct {
	Code    string
	Message string
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("jobvisor: the supervisor refused this job: %s: %s", e.Code, e.Message)
}

// UnreachableError means no supervisor accepted the job for the give-up window.
type UnreachableError struct {
	Address string
	After   float64 // seconds
	Last    error   // the last connection error
}

func (e *UnreachableError) Error() string {
	return fmt.Sprintf("jobvisor: no supervisor accepted this job at %s for %g s (last error: %v)", e.Address, e.After, e.Last)
}

func (e *UnreachableError) Unwrap() error { return e.Last }

// CancelledError is the cause of the job's context once the supervisor cancelled the
// job: context.Cause(job.Context()) returns it.
type CancelledError struct {
	Reason string // "" when the supervisor gave none
}

func (e *CancelledError) Error() string {
	if e.Reason == "" {
		return "jobvisor: the job was cancelled"
	}
	return "jobvisor: the job was cancelled: " + e.Reason
}

// Is makes errors.Is(err, context.Canceled) hold for a cancellation.
func (e *CancelledError) Is(target error) bool { return target == context.Canceled }
