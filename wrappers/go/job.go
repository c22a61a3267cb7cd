package jobvisor

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/jobvisor/jobvisor/wrappers/go/protocol"
)

// Level is the level of a log line.
type Level string

// The log levels of the protocol.
const (
	Debug Level = "debug"
	Info  Level = "info"
	Warn  Level = "warn"
	Error Level = "error"
)

// Job is one running job attempt, connected to its supervisor. Its methods are safe for
// concurrent use. Progress and Log only queue (they never block on the network); Complete
// and Fail return once the supervisor has committed the outcome (its ack).
type Job struct {
	s      settings
	policy retryPolicy // the I/O goroutine's alone

	mu           sync.Mutex // guards what follows
	box          outbox
	welcome      *protocol.Message // the latest welcome
	heartbeat    time.Duration
	stopErr      error
	cancelled    bool
	cancelReason string
	ackClosed    bool

	ctx          context.Context
	cancel       context.CancelCauseFunc
	welcomedOnce chan struct{} // closed at the first welcome
	acked        chan struct{} // closed when the outcome is acked
	wake         chan struct{} // a poke for the I/O goroutine: something was queued
	closing      chan struct{} // closed by Close
	closeOnce    sync.Once
	done         chan struct{} // closed when the I/O goroutine has ended
}

// Connect reads the job's settings (opts, else the environment), connects to the
// supervisor and returns once it has welcomed the job, so that Data is there. A
// supervisor that is not reachable yet is retried on the reconnect schedule; ctx bounds
// the wait. On a final refusal or when giving up, Options.Exit stops the process; if
// it returns, Connect returns a *RefusedError or an *UnreachableError.
func Connect(ctx context.Context, opts Options) (*Job, error) {
	s, err := resolve(opts, protocol.TokenKey)
	if err != nil {
		return nil, err
	}
	j := &Job{
		s:            s,
		policy:       retryPolicy{cap: s.reconnectInterval, giveUpAfter: s.giveUpAfter, fastWindow: s.fastWindow},
		box:          outbox{maxLogs: s.maxLogs},
		heartbeat:    s.heartbeat,
		welcomedOnce: make(chan struct{}),
		acked:        make(chan struct{}),
		wake:         make(chan struct{}, 1),
		closing:      make(chan struct{}),
		done:         make(chan struct{}),
	}
	j.ctx, j.cancel = context.WithCancelCause(context.Background())
	go j.run()
	select {
	case <-j.welcomedOnce:
		return j, nil
	case <-j.done:
		return nil, j.stoppedErr()
	case <-ctx.Done():
		j.Close()
		return nil, ctx.Err()
	}
}

// ID is the job's id.
func (j *Job) ID() string { return j.s.jobID }

// Name is the job's kind, as configured in jobvisor.toml.
func (j *Job) Name() string { return j.latest().String("name") }

// Attempt is the number of this attempt, from 1.
func (j *Job) Attempt() int { return int(j.latest().Number("attempt")) }

// Data is the job's payload as decoded from the wire: nil, bool, int64, uint64, float64,
// string, []byte, []any or protocol.Map. Decode into a struct is usually handier.
func (j *Job) Data() any { return j.latest().Get("data") }

// Decode decodes the job's payload into v (a pointer), as msgpack.Unmarshal does:
// struct fields match by their msgpack tag, else their json tag, else their name.
func (j *Job) Decode(v any) error {
	var buf bytes.Buffer
	if err := protocol.EncodeValue(&buf, j.Data()); err != nil {
		return err
	}
	d := msgpack.NewDecoder(&buf)
	d.SetCustomStructTag("json")
	if err := d.Decode(v); err != nil {
		return fmt.Errorf("jobvisor: decoding the job's data into %T: %w", v, err)
	}
	return nil
}

func (j *Job) latest() *protocol.Message {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.welcome
}

// Context is cancelled when the supervisor cancels the job (its cause is then a
// *CancelledError), when the library stops the job, or on Close. Pass it to the work.
func (j *Job) Context() context.Context { return j.ctx }

// Cancelled reports whether the supervisor cancelled the job, and its reason.
func (j *Job) Cancelled() (bool, string) {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.cancelled, j.cancelReason
}

// Progress reports how far the job is, from 0 to 100; the latest report wins, and it
// is sent again after a reconnect. message may be empty.
func (j *Job) Progress(percent float64, message string) error {
	return j.ProgressData(percent, message, nil)
}

// ProgressData is Progress with a payload (any msgpack-encodable value, or nil).
func (j *Job) ProgressData(percent float64, message string, data any) error {
	if math.IsNaN(percent) || percent < 0 || percent > 100 {
		return fmt.Errorf("jobvisor: percent must be from 0 to 100, got %v", percent)
	}
	fields := []protocol.KV{{Key: "percent", Value: percent}}
	if message != "" {
		fields = append(fields, protocol.KV{Key: "message", Value: message})
	}
	return j.report(protocol.TypeProgress, fields, data, "data", j.box.putProgress)
}

// Log writes a line to the job's log; data (or nil) travels with it. While the
// supervisor is unreachable, up to Options.MaxBufferedLogs lines wait (oldest dropped).
func (j *Job) Log(level Level, message string, data any) error {
	switch level {
	case Debug, Info, Warn, Error:
	default:
		return fmt.Errorf("jobvisor: log level must be one of debug, info, warn, error, got %q", level)
	}
	fields := []protocol.KV{{Key: "level", Value: string(level)}, {Key: "message", Value: message}}
	return j.report(protocol.TypeLog, fields, data, "data", j.box.putLog)
}

// Logf writes a formatted line to the job's log.
func (j *Job) Logf(level Level, format string, args ...any) error {
	return j.Log(level, fmt.Sprintf(format, args...), nil)
}

func (j *Job) report(typ string, fields []protocol.KV, payload any, name string, put func([]byte)) error {
	frame, err := encodeReport(typ, fields, payload, name)
	if err != nil {
		return err
	}
	j.mu.Lock()
	if j.box.outcomeKind != "" {
		j.mu.Unlock()
		return ErrOutcomeReported
	}
	put(frame)
	j.mu.Unlock()
	j.poke()
	return nil
}

// encodeReport builds and encodes a message in the caller's goroutine, so that a value
// that cannot be sent fails the call that passed it.
func encodeReport(typ string, fields []protocol.KV, payload any, name string) ([]byte, error) {
	if payload != nil {
		value, err := protocol.Normalize(payload)
		if err != nil {
			return nil, fmt.Errorf("jobvisor: %s.%s cannot be encoded as msgpack: %w", typ, name, err)
		}
		if m, ok := value.(protocol.Map); !ok || len(m) > 0 || typ == protocol.TypeCompleted {
			fields = append(fields, protocol.KV{Key: name, Value: value}) // an empty map is no data
		}
	}
	fields = append(fields, protocol.KV{Key: "ts", Value: nowMillis()})
	m, err := protocol.New(typ, fields...)
	if err != nil {
		return nil, fmt.Errorf("jobvisor: %w", err)
	}
	frame, err := protocol.Encode(m)
	if err != nil {
		return nil, fmt.Errorf("jobvisor: %w", err)
	}
	return frame, nil
}

// Complete reports success with result (any msgpack-encodable value, or nil) and
// returns once the supervisor has committed it. Until then the result is sent again
// after every reconnect.
func (j *Job) Complete(result any) error {
	frame, err := encodeReport(protocol.TypeCompleted, nil, result, "result")
	if err != nil {
		return err
	}
	return j.outcome(protocol.TypeCompleted, frame)
}

// Fail reports failure with err's text and returns once the supervisor has committed it.
func (j *Job) Fail(err error) error {
	return j.FailWithStack(err.Error(), "")
}

// FailWithStack reports failure with a message and a stack trace or similar detail
// (may be empty), and returns once the supervisor has committed it.
func (j *Job) FailWithStack(message, stack string) error {
	fields := []protocol.KV{{Key: "error", Value: message}}
	if stack != "" {
		fields = append(fields, protocol.KV{Key: "stack", Value: stack})
	}
	frame, err := encodeReport(protocol.TypeFailed, fields, nil, "")
	if err != nil {
		return err
	}
	return j.outcome(protocol.TypeFailed, frame)
}

func (j *Job) outcome(kind string, frame []byte) error {
	j.mu.Lock()
	if j.box.outcomeKind != "" {
		j.mu.Unlock()
		return ErrOutcomeReported
	}
	j.box.putOutcome(kind, frame)
	j.mu.Unlock()
	j.poke()
	select {
	case <-j.acked:
		return nil
	case <-j.done:
		select {
		case <-j.acked:
			return nil
		default:
			return j.stoppedErr()
		}
	}
}

// Outcome is "completed" or "failed" once the job reported one, else "".
func (j *Job) Outcome() string {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.box.outcomeKind
}

// Close hands what is queued to the supervisor (for up to a second), closes the
// connection and stops the I/O goroutine. The supervisor then expects the process to
// exit. Close is idempotent.
func (j *Job) Close() {
	j.closeOnce.Do(func() {
		close(j.closing)
		j.cancel(ErrClosed)
	})
	t := time.NewTimer(closeLinger + time.Second)
	defer t.Stop()
	select {
	case <-j.done:
	case <-t.C:
	}
}

func (j *Job) poke() {
	select {
	case j.wake <- struct{}{}:
	default: // a poke is already pending
	}
}

func (j *Job) stoppedErr() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.stopErr != nil {
		return j.stopErr
	}
	return ErrClosed
}
