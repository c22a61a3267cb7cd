package jobvisor

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime/debug"
)

// Exit codes of Run after the outcome is acked.
const (
	ExitCompleted = 0
	ExitFailed    = 1
)

// Func is a job's work: its result completes the job, an error (or a panic) fails it.
// ctx is job.Context(): it is cancelled when the supervisor cancels the job.
type Func func(ctx context.Context, job *Job) (any, error)

// Run is the usual main of a worker: connect, call fn, report its outcome, wait for the
// supervisor's ack and exit: 0 after completed, 1 after failed (and 1 when the program
// was not started by jobvisor: the error says so on stderr).
func Run(fn Func) {
	os.Exit(RunOnce(fn, Options{}))
}

// RunOnce is Run without the exit: it returns the exit code Run would use.
func RunOnce(fn Func, opts Options) int {
	job, err := Connect(context.Background(), opts)
	if err != nil {
		say(err.Error())
		return ExitFailed
	}
	defer job.Close()
	result, stack, err := call(fn, job)
	if job.Outcome() == "" { // fn may have called Complete or Fail itself
		err = report(job, result, err, stack)
		if err != nil {
			say("reporting the outcome: " + err.Error())
		}
	}
	if job.Outcome() == outcomeCompleted {
		return ExitCompleted
	}
	return ExitFailed
}

const outcomeCompleted = "completed"

func call(fn Func, job *Job) (result any, stack string, err error) {
	defer func() {
		if p := recover(); p != nil {
			result, stack, err = nil, string(debug.Stack()), fmt.Errorf("panic: %v", p)
			say(fmt.Sprintf("the job panicked; reporting it as failed\n%s", stack))
		}
	}()
	result, err = fn(job.Context(), job)
	return result, "", err
}

func report(job *Job, result any, err error, stack string) error {
	if err == nil {
		err = job.Complete(result)
		if err == nil || errors.Is(err, ErrOutcomeReported) || !isEncodingError(err) {
			return err
		}
		// A result that cannot be sent fails the job, saying why.
		return job.FailWithStack("the job's result cannot be sent: "+err.Error(), "")
	}
	var cancelled *CancelledError
	if errors.As(context.Cause(job.Context()), &cancelled) && errors.Is(err, context.Canceled) {
		err = cancelled
	}
	return job.FailWithStack(err.Error(), stack)
}

func isEncodingError(err error) bool {
	return !errors.Is(err, ErrClosed) && !errors.As(err, new(*RefusedError)) && !errors.As(err, new(*UnreachableError))
}
