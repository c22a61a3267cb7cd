package jobvisor

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"time"

	"github.com/jobvisor/jobvisor/wrappers/go/protocol"
)

// The I/O goroutine: the one place where the worker touches its socket.
//
// Theory of operation. The job's goroutines only queue into the outbox (under Job.mu)
// and poke the wake channel. The I/O goroutine (run) connects, runs the handshake
// (hello with a fresh nonce, the challenge's proof checked, auth, welcome), then serves
// the connection: it writes started and the outbox, and a heartbeat after
// heartbeat_interval of silence; a reader goroutine turns bytes into messages (ack,
// cancel, error) and hands them over on a channel, so that a long computation in the
// job never starves either (docs/protocol.md, section 6).
//
// Connection loss never stops the job: the outbox keeps filling, the retry policy
// schedules attempts, and after the give-up window without a welcome the job is
// stopped with ExitUnreachable. A connection that ends before its welcome (refused, no
// answer, a peer whose challenge proof is wrong) is one failed try. A refusal with a
// final code stops the job with ExitRefused. Messages handed to a connection that then
// breaks are not sent again, except the latest progress and the unacked outcome
// (docs/protocol.md, "Reconnect").

const (
	connectTimeout = time.Second
	// A supervisor that accepts but never answers is as good as absent.
	handshakeTimeout = 10 * time.Second
	// A welcomed connection lost sooner than this was dropped right away (retry.go).
	stableConnection = time.Second
	// How long Close keeps trying to hand queued messages to a connected supervisor.
	closeLinger = time.Second
	// A supervisor that does not read what we write for this long is broken.
	writeTimeout = 10 * time.Second
	readSize     = 64 << 10
)

// Codes in an error answering the handshake that mean "this job is not yours".
var finalCodes = map[string]bool{
	string(protocol.BadToken): true, string(protocol.UnknownJob): true,
	string(protocol.WrongJob): true, string(protocol.JobNotRunning): true,
	string(protocol.UnsupportedVersion): true,
}

var (
	startedFrame   = mustEncode(protocol.TypeStarted)
	heartbeatFrame = mustEncode(protocol.TypeHeartbeat)
)

func mustEncode(typ string) []byte {
	m, err := protocol.New(typ)
	if err == nil {
		var frame []byte
		if frame, err = protocol.Encode(m); err == nil {
			return frame
		}
	}
	panic(err)
}

// violation is a peer that broke the protocol: it gets nothing more from us.
type violation struct{ reason string }

func (v *violation) Error() string { return "protocol violation: " + v.reason }

// frameReader reads messages from one connection, keeping what it read past a message.
type frameReader struct {
	conn net.Conn
	dec  protocol.Decoder
	buf  []byte
}

func (r *frameReader) next() (*protocol.Message, error) {
	for {
		m, err := r.dec.Next()
		if err != nil {
			return nil, &violation{err.Error()}
		}
		if m != nil {
			return m, nil
		}
		n, err := r.conn.Read(r.buf)
		r.dec.Feed(r.buf[:n])
		if err != nil && n == 0 {
			return nil, err
		}
	}
}

func (j *Job) run() {
	defer close(j.done)
	j.policy.start(time.Now())
	shortDrops := 0
	first := true
	toldBackingOff, toldViolation := false, false
	for !j.isClosing() {
		conn, r, err := j.connect()
		if err != nil {
			var refused *RefusedError
			if errors.As(err, &refused) {
				j.stop(ExitRefused, refused)
				return
			}
			var v *violation
			if errors.As(err, &v) && !toldViolation {
				toldViolation = true // once per outage: it may be an impostor on our port
				say(fmt.Sprintf("the peer at %s broke the handshake (%s); it was sent nothing, and it counts as a failed try", j.s.addr, v.reason))
			}
			now := time.Now()
			delay, ok := j.policy.next(now)
			if !ok {
				j.stop(ExitUnreachable, &UnreachableError{j.s.addr.String(), j.policy.giveUpAfter.Seconds(), err})
				return
			}
			if !toldBackingOff && !j.policy.inFastWindow(now) {
				toldBackingOff = true
				say(fmt.Sprintf("supervisor at %s still unreachable (%v); retrying every %g s at most, giving up in %.1f s",
					j.s.addr, err, j.policy.cap.Seconds(), j.policy.deadline().Sub(now).Seconds()))
			}
			if !j.sleep(delay) {
				return
			}
			continue
		}
		welcomedAt := time.Now()
		if !first && shortDrops <= 1 {
			say(fmt.Sprintf("reconnected to the supervisor at %s after %.3f s", j.s.addr, welcomedAt.Sub(j.policy.outageStart).Seconds()))
		}
		first, toldBackingOff, toldViolation = false, false, false
		err = j.serve(conn, r)
		_ = conn.Close()
		j.mu.Lock()
		j.box.rewind()
		j.mu.Unlock()
		if j.isClosing() {
			return
		}
		now := time.Now()
		if now.Sub(welcomedAt) >= stableConnection {
			shortDrops = 0
			j.policy.start(now)
			say(fmt.Sprintf("connection to the supervisor lost (%v); reconnecting to %s", err, j.s.addr))
			continue // the first retry at once: most losses are brief
		}
		shortDrops++
		j.policy.resume(now)
		switch shortDrops {
		case 1:
			say(fmt.Sprintf("connection to the supervisor lost (%v); reconnecting to %s", err, j.s.addr))
		case 2:
			say(fmt.Sprintf("connections to the supervisor keep dropping right after their welcome (%v); backing off up to %g s between tries, and not logging them until one lasts %g s",
				err, j.policy.cap.Seconds(), stableConnection.Seconds()))
		}
		delay, _ := j.policy.next(now)
		if !j.sleep(delay) {
			return
		}
	}
}

// stop ends the job from inside the library: Options.Exit, which by default does not
// return. If it does, waiters get err.
func (j *Job) stop(code int, err error) {
	j.mu.Lock()
	j.stopErr = err
	j.mu.Unlock()
	j.cancel(err)
	j.s.exit(code, err)
}

// sleep waits d, or until Close; false when closing.
func (j *Job) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-j.closing:
		return false
	}
}

func (j *Job) isClosing() bool {
	select {
	case <-j.closing:
		return true
	default:
		return false
	}
}

// connect dials and runs the handshake (docs/protocol.md, section 5).
func (j *Job) connect() (net.Conn, *frameReader, error) {
	conn, err := j.s.addr.dial(connectTimeout)
	if err != nil {
		return nil, nil, err
	}
	r, err := j.handshake(conn)
	if err != nil {
		_ = conn.Close()
		return nil, nil, err
	}
	return conn, r, nil
}

func (j *Job) handshake(conn net.Conn) (*frameReader, error) {
	nonce := make([]byte, protocol.NonceSize) // fresh for every connection
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	hello, err := protocol.New(protocol.TypeHello,
		protocol.KV{Key: "v", Value: int64(protocol.Version)},
		protocol.KV{Key: "job_id", Value: j.s.jobID},
		protocol.KV{Key: "pid", Value: int64(os.Getpid())},
		protocol.KV{Key: "nonce", Value: nonce})
	if err != nil {
		return nil, err
	}
	if err := conn.SetDeadline(time.Now().Add(handshakeTimeout)); err != nil {
		return nil, err
	}
	if err := writeMessage(conn, hello); err != nil {
		return nil, err
	}
	r := &frameReader{conn: conn, buf: make([]byte, readSize)}
	m, err := r.next()
	if err != nil {
		return nil, noAnswer(err)
	}
	switch m.Type {
	case protocol.TypeError:
		return nil, refusal(m)
	case protocol.TypeChallenge:
	default:
		return nil, &violation{fmt.Sprintf("%q instead of a challenge", m.Type)}
	}
	peerNonce := m.Bytes("nonce")
	expected := protocol.SupervisorProof(j.s.key, j.s.jobID, nonce, peerNonce)
	if !protocol.ProofsMatch(expected, m.Bytes("proof")) {
		return nil, &violation{"the peer's challenge proof is wrong: it is not our supervisor"}
	}
	auth, err := protocol.New(protocol.TypeAuth,
		protocol.KV{Key: "proof", Value: protocol.WorkerProof(j.s.key, j.s.jobID, peerNonce, nonce)})
	if err != nil {
		return nil, err
	}
	if err := writeMessage(conn, auth); err != nil {
		return nil, err
	}
	if m, err = r.next(); err != nil {
		return nil, noAnswer(err)
	}
	switch {
	case m.Type == protocol.TypeError:
		return nil, refusal(m)
	case m.Type != protocol.TypeWelcome:
		return nil, &violation{fmt.Sprintf("%q instead of a welcome", m.Type)}
	case m.String("job_id") != j.s.jobID:
		return nil, &violation{fmt.Sprintf("the welcome is for job %q", m.String("job_id"))}
	}
	if err := conn.SetDeadline(time.Time{}); err != nil {
		return nil, err
	}
	j.welcomed(m)
	return r, nil
}

func noAnswer(err error) error {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return fmt.Errorf("no answer to the handshake within %g s", handshakeTimeout.Seconds())
	}
	return err
}

func refusal(m *protocol.Message) error {
	code, text := m.String("code"), m.String("message")
	if finalCodes[code] {
		return &RefusedError{code, text}
	}
	return fmt.Errorf("the supervisor answered %s: %s", code, text)
}

func (j *Job) welcomed(m *protocol.Message) {
	j.policy.adopt(seconds2duration(m.Number("reconnect_interval")), seconds2duration(m.Number("give_up_after")))
	j.mu.Lock()
	defer j.mu.Unlock()
	firstTime := j.welcome == nil
	j.welcome = m
	if !j.s.heartbeatFixed {
		j.heartbeat = seconds2duration(m.Number("heartbeat_interval"))
	}
	if firstTime {
		close(j.welcomedOnce)
	}
}

func writeMessage(conn net.Conn, m protocol.Message) error {
	frame, err := protocol.Encode(m)
	if err != nil {
		return err
	}
	_, err = conn.Write(frame)
	return err
}

// serve runs one welcomed connection until it is lost or the job is closed.
func (j *Job) serve(conn net.Conn, r *frameReader) error {
	msgs := make(chan *protocol.Message)
	lost := make(chan error, 1)
	over := make(chan struct{})
	defer close(over)
	go func() {
		for {
			m, err := r.next()
			if err != nil {
				lost <- err
				return
			}
			select {
			case msgs <- m:
			case <-over:
				return
			}
		}
	}()
	started := true
	var lastSent time.Time
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		frames, heartbeat := j.takeFrames(started)
		started = false
		now := time.Now()
		if len(frames) == 0 && !now.Before(lastSent.Add(heartbeat)) {
			frames = append(frames, heartbeatFrame)
		}
		if len(frames) > 0 {
			if err := write(conn, frames, writeTimeout); err != nil {
				return err
			}
			lastSent = now
		}
		timer.Reset(time.Until(lastSent.Add(heartbeat)))
		select {
		case <-j.wake:
		case <-timer.C:
		case err := <-lost:
			if errors.Is(err, io.EOF) {
				return errors.New("closed by the supervisor")
			}
			return err
		case m := <-msgs:
			if err := j.handle(m); err != nil {
				return err
			}
		case <-j.closing:
			if frames, _ := j.takeFrames(false); len(frames) > 0 {
				_ = write(conn, frames, closeLinger)
			}
			return ErrClosed
		}
	}
}

func write(conn net.Conn, frames [][]byte, timeout time.Duration) error {
	if err := conn.SetWriteDeadline(time.Now().Add(timeout)); err != nil {
		return err
	}
	_, err := conn.Write(bytes.Join(frames, nil))
	return err
}

// takeFrames hands out started (after a welcome), a warning about dropped logs, and the
// outbox; and the heartbeat interval in force.
func (j *Job) takeFrames(started bool) ([][]byte, time.Duration) {
	j.mu.Lock()
	defer j.mu.Unlock()
	var frames [][]byte
	if started {
		frames = append(frames, startedFrame)
	}
	if j.box.pending() {
		if dropped := j.box.takeDropped(); dropped > 0 {
			if warning, err := droppedWarning(dropped, j.box.maxLogs); err == nil {
				frames = append(frames, warning)
			}
		}
		frames = j.box.take(frames)
	}
	return frames, j.heartbeat
}

func droppedWarning(dropped, max int) ([]byte, error) {
	m, err := protocol.New(protocol.TypeLog,
		protocol.KV{Key: "level", Value: string(Warn)},
		protocol.KV{Key: "message", Value: fmt.Sprintf("jobvisor-go: dropped the %d oldest log message(s): more than %d were waiting to be sent", dropped, max)},
		protocol.KV{Key: "data", Value: protocol.Map{{Key: "dropped", Value: int64(dropped)}}},
		protocol.KV{Key: "ts", Value: nowMillis()})
	if err != nil {
		return nil, err
	}
	return protocol.Encode(m)
}

// handle is what a welcomed connection receives: ack, cancel, or an error before the
// supervisor closes it. Anything else is a protocol violation.
func (j *Job) handle(m *protocol.Message) error {
	switch m.Type {
	case protocol.TypeAck:
		j.mu.Lock()
		if j.box.ack(m.String("of")) && !j.ackClosed {
			j.ackClosed = true
			close(j.acked)
		}
		j.mu.Unlock() // an ack for an outcome we did not report is a stale duplicate
	case protocol.TypeCancel:
		j.mu.Lock()
		j.cancelReason = m.String("reason")
		j.cancelled = true
		j.mu.Unlock()
		j.cancel(&CancelledError{Reason: m.String("reason")})
	case protocol.TypeError:
		return fmt.Errorf("the supervisor answered %s: %s", m.String("code"), m.String("message"))
	default:
		return &violation{fmt.Sprintf("unexpected %q after the welcome", m.Type)}
	}
	return nil
}

func nowMillis() int64 { return time.Now().UnixMilli() }
