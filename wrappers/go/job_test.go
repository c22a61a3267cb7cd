package jobvisor

import (
	"bytes"
	"context"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/jobvisor/jobvisor/wrappers/go/protocol"
)

func TestCompleteReturnsOnlyOnceTheOutcomeIsAcked(t *testing.T) {
	for _, transport := range transports {
		t.Run(transport, func(t *testing.T) {
			f := newFake(t, transport)
			job, c := f.connect(f.options(make(chan int, 1)), protocol.Map{{Key: "n", Value: int64(3)}})
			done := async(func() error { return job.Complete(map[string]any{"ok": true, "n": 3}) })
			completed := c.expect(protocol.TypeCompleted)
			want := protocol.Map{{Key: "n", Value: int64(3)}, {Key: "ok", Value: true}}
			if got := completed.Get("result"); !equalValues(got, want) {
				t.Fatalf("result %#v, want %#v", got, want)
			}
			if !pending(done) {
				t.Fatal("Complete returned before the ack")
			}
			c.send(protocol.TypeAck, kv("of", "completed"))
			if err := await(t, done, "Complete"); err != nil {
				t.Fatalf("Complete: %v", err)
			}
			if err := job.Progress(50, "late"); !errors.Is(err, ErrOutcomeReported) {
				t.Fatalf("progress after the outcome: %v", err)
			}
		})
	}
}

func TestReconnectReplaysLatestProgressAndTheUnackedOutcome(t *testing.T) {
	for _, transport := range transports {
		t.Run(transport, func(t *testing.T) {
			f := newFake(t, transport)
			job, c := f.connect(f.options(make(chan int, 1)), nil)
			if err := job.Progress(10, "first"); err != nil {
				t.Fatal(err)
			}
			_ = job.Progress(20, "second")
			c.expect(protocol.TypeProgress)
			done := async(func() error { return job.FailWithStack("broken", "trace") })
			c.expect(protocol.TypeFailed)
			_ = c.conn.Close() // the supervisor dies before its ack
			c2 := f.accept()
			f.handshake(c2, nil, 60)
			if got := c2.expect(protocol.TypeProgress); got.Number("percent") != 20 {
				t.Fatalf("replayed progress %v, want the latest (20)", got.Fields)
			}
			failed := c2.expect(protocol.TypeFailed)
			if failed.String("error") != "broken" || failed.String("stack") != "trace" {
				t.Fatalf("replayed outcome %v", failed.Fields)
			}
			if !pending(done) {
				t.Fatal("Fail returned before the ack")
			}
			c2.send(protocol.TypeAck, kv("of", "failed"))
			if err := await(t, done, "Fail"); err != nil {
				t.Fatalf("Fail: %v", err)
			}
		})
	}
}

func TestLogsMadeWhileDisconnectedAreSentAfterTheNextWelcomeWithinTheirBound(t *testing.T) {
	f := newFake(t, "unix")
	opts := f.options(make(chan int, 1))
	opts.MaxBufferedLogs = 2
	job, c := f.connect(opts, nil)
	_ = c.conn.Close()
	c2 := f.accept()
	c2.challenge(f.key) // the worker is reconnecting: the old connection is gone
	for i := 1; i <= 5; i++ {
		if err := job.Logf(Info, "while away %d", i); err != nil {
			t.Fatal(err)
		}
	}
	c2.send(protocol.TypeWelcome, kv("job_id", testJobID), kv("name", "demo"), kv("data", nil),
		kv("attempt", int64(1)), kv("heartbeat_interval", 60.0),
		kv("reconnect_interval", 0.05), kv("give_up_after", 5.0))
	c2.expect(protocol.TypeStarted)
	warning := c2.expect(protocol.TypeLog)
	if warning.String("level") != "warn" || !strings.Contains(warning.String("message"), "dropped the 3 oldest") {
		t.Fatalf("expected a warning about 3 dropped logs, got %v", warning.Fields)
	}
	for _, want := range []string{"while away 4", "while away 5"} {
		if got := c2.expect(protocol.TypeLog); got.String("message") != want || got.String("level") != "info" {
			t.Fatalf("got %v, want %q", got.Fields, want)
		}
	}
}

func TestAWrongChallengeProofGetsNothingAndCountsAsAFailedTry(t *testing.T) {
	f := newFake(t, "unix")
	done := async(func() error {
		job, err := Connect(context.Background(), f.options(make(chan int, 1)))
		if err == nil {
			job.Close()
		}
		return err
	})
	impostor := f.accept()
	hello := impostor.expect(protocol.TypeHello)
	nonce := make([]byte, protocol.NonceSize)
	wrong := protocol.SupervisorProof(protocol.TokenKey("not the token"), testJobID, hello.Bytes("nonce"), nonce)
	impostor.send(protocol.TypeChallenge, kv("nonce", nonce), kv("proof", wrong))
	if m := impostor.read(); m != nil {
		t.Fatalf("the impostor got %s %v", m.Type, m.Fields)
	}
	c := f.accept() // the next try, to the real supervisor
	again := f.handshake(c, nil, 60)
	if bytes.Equal(again.Bytes("nonce"), hello.Bytes("nonce")) {
		t.Fatal("the worker reused its nonce on a new connection")
	}
	if err := await(t, done, "Connect"); err != nil {
		t.Fatalf("Connect: %v", err)
	}
}

func TestAFinalRefusalStopsTheJobWithExitRefused(t *testing.T) {
	f := newFake(t, "tcp")
	exits := make(chan int, 1)
	done := make(chan error, 1)
	go func() {
		_, err := Connect(context.Background(), f.options(exits))
		done <- err
	}()
	c := f.accept()
	c.expect(protocol.TypeHello)
	c.send(protocol.TypeError, kv("code", "job_not_running"), kv("message", "the job was cancelled"))
	if code := <-exits; code != ExitRefused {
		t.Fatalf("exit code %d, want %d", code, ExitRefused)
	}
	var refused *RefusedError
	if err := await(t, done, "Connect"); !errors.As(err, &refused) || refused.Code != "job_not_running" {
		t.Fatalf("Connect returned %v, want a *RefusedError", err)
	}
}

func TestNoSupervisorForTheGiveUpWindowStopsTheJobWithExitUnreachable(t *testing.T) {
	f := newFake(t, "unix")
	_ = f.ln.Close() // nobody listens
	exits := make(chan int, 1)
	opts := f.options(exits)
	opts.ReconnectInterval, opts.GiveUpAfter, opts.FastReconnectWindow = 20*time.Millisecond, 300*time.Millisecond, 50*time.Millisecond
	done := async(func() error {
		_, err := Connect(context.Background(), opts)
		return err
	})
	var unreachable *UnreachableError
	if err := await(t, done, "Connect"); !errors.As(err, &unreachable) {
		t.Fatalf("Connect returned %v, want an *UnreachableError", err)
	}
	if code := <-exits; code != ExitUnreachable {
		t.Fatalf("exit code %d, want %d", code, ExitUnreachable)
	}
}

func TestCancelCancelsTheJobsContextWithItsReason(t *testing.T) {
	f := newFake(t, "unix")
	job, c := f.connect(f.options(make(chan int, 1)), nil)
	if cancelled, _ := job.Cancelled(); cancelled || job.Context().Err() != nil {
		t.Fatal("cancelled before any cancel")
	}
	c.send(protocol.TypeCancel, kv("reason", "not needed"))
	select {
	case <-job.Context().Done():
	case <-time.After(patience):
		t.Fatal("the context was not cancelled")
	}
	var cancelled *CancelledError
	if cause := context.Cause(job.Context()); !errors.As(cause, &cancelled) || cancelled.Reason != "not needed" {
		t.Fatalf("cause %v", cause)
	}
	if !errors.Is(cancelled, context.Canceled) {
		t.Fatal("a *CancelledError is not context.Canceled")
	}
	if yes, reason := job.Cancelled(); !yes || reason != "not needed" {
		t.Fatalf("Cancelled() = %v, %q", yes, reason)
	}
}

func TestAHeartbeatGoesOutAfterHeartbeatIntervalOfSilence(t *testing.T) {
	f := newFake(t, "tcp")
	go func() { _, _ = Connect(context.Background(), f.options(make(chan int, 1))) }()
	c := f.accept()
	f.handshake(c, nil, 0.05)
	c.expect(protocol.TypeHeartbeat)
	c.expect(protocol.TypeHeartbeat)
}

func TestDecodeFillsAStructByJSONTags(t *testing.T) {
	f := newFake(t, "unix")
	data := protocol.Map{
		{Key: "images", Value: []any{"a.png", "b.png"}},
		{Key: "size", Value: protocol.Map{{Key: "w", Value: int64(640)}}},
	}
	job, _ := f.connect(f.options(make(chan int, 1)), data)
	var in struct {
		Images []string `json:"images"`
		Size   struct {
			W int `json:"w"`
		} `json:"size"`
	}
	if err := job.Decode(&in); err != nil {
		t.Fatal(err)
	}
	if len(in.Images) != 2 || in.Images[1] != "b.png" || in.Size.W != 640 {
		t.Fatalf("decoded %+v", in)
	}
	if job.Name() != "demo" || job.Attempt() != 1 || job.ID() != testJobID {
		t.Fatalf("name %q attempt %d id %q", job.Name(), job.Attempt(), job.ID())
	}
}

func TestBadValuesFailTheCallAndLeaveTheJobRunning(t *testing.T) {
	f := newFake(t, "unix")
	job, c := f.connect(f.options(make(chan int, 1)), nil)
	for name, err := range map[string]error{
		"percent 150":      job.Progress(150, ""),
		"percent NaN":      job.Progress(math.NaN(), ""),
		"level fatal":      job.Log("fatal", "x", nil),
		"a func as data":   job.Log(Info, "x", func() {}),
		"int map keys":     job.Log(Info, "x", map[int]string{1: "a"}),
		"a func as result": job.Complete(func() {}),
	} {
		if err == nil {
			t.Errorf("%s was accepted", name)
		}
	}
	if err := job.Progress(40, "fine"); err != nil {
		t.Fatal(err)
	}
	if got := c.expect(protocol.TypeProgress); got.Number("percent") != 40 {
		t.Fatalf("got %v", got.Fields)
	}
}

func TestMissingEnvironmentIsAClearConfigError(t *testing.T) {
	t.Setenv(envSocket, "")
	_, err := Connect(context.Background(), Options{})
	var config *ConfigError
	if !errors.As(err, &config) || config.Setting != envSocket || !strings.Contains(err.Error(), "must be started by the jobvisor supervisor") {
		t.Fatalf("got %v", err)
	}
	t.Setenv(envSocket, "tcp://10.0.0.1:80")
	if _, err := Connect(context.Background(), Options{JobID: "j", Token: "t"}); !errors.As(err, &config) || !strings.Contains(err.Error(), "loopback") {
		t.Fatalf("a non-loopback address: %v", err)
	}
}

// equalValues compares decoded values (Maps in order).
func equalValues(a, b any) bool { return reflect.DeepEqual(a, b) }

func TestTheWelcomesGiveUpAfterReplacesTheOptions(t *testing.T) {
	f := newFake(t, "unix")
	exits := make(chan int, 1)
	opts := f.options(exits)
	opts.GiveUpAfter = time.Hour // the welcome's 0.3 s must win
	go func() { _, _ = Connect(context.Background(), opts) }()
	c := f.accept()
	c.challenge(f.key)
	c.send(protocol.TypeWelcome, kv("job_id", testJobID), kv("name", "demo"), kv("data", nil),
		kv("attempt", int64(1)), kv("heartbeat_interval", 60.0),
		kv("reconnect_interval", 0.05), kv("give_up_after", 0.3))
	c.expect(protocol.TypeStarted)
	_ = f.ln.Close() // the supervisor is gone for good
	_ = c.conn.Close()
	select {
	case code := <-exits:
		if code != ExitUnreachable {
			t.Fatalf("exit code %d, want %d", code, ExitUnreachable)
		}
	case <-time.After(patience):
		t.Fatal("the worker did not give up on the welcome's schedule")
	}
}
