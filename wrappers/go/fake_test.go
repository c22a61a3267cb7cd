package jobvisor

import (
	"bytes"
	"context"
	"crypto/rand"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jobvisor/jobvisor/wrappers/go/protocol"
)

// An in-process fake supervisor: a real listener (Unix or TCP) whose side of the
// protocol each test drives step by step from the test goroutine.

const (
	testJobID = "01HZX3J5Q8K2V7N4M6P9R0T1WA"
	testToken = "k3Yw9_rT2fQ8xLm0pZs4vB7nC1dE6hJa"
	patience  = 10 * time.Second // how long the fake waits for the worker before failing
)

var transports = []string{"unix", "tcp"}

type fake struct {
	t      *testing.T
	ln     net.Listener
	socket string
	key    []byte
}

func newFake(t *testing.T, transport string) *fake {
	t.Helper()
	f := &fake{t: t, key: protocol.TokenKey(testToken)}
	var err error
	if transport == "tcp" {
		f.ln, err = net.Listen("tcp", "127.0.0.1:0")
		if err == nil {
			f.socket = "tcp://" + f.ln.Addr().String()
		}
	} else {
		dir, derr := os.MkdirTemp("", "jvgo") // short: a socket path has 107 bytes at most
		if derr != nil {
			t.Fatal(derr)
		}
		t.Cleanup(func() { _ = os.RemoveAll(dir) })
		f.socket = filepath.Join(dir, "job.sock")
		f.ln, err = net.Listen("unix", f.socket)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.ln.Close() })
	return f
}

// options are a worker's settings for this fake; exits receives the code of a stop.
func (f *fake) options(exits chan<- int) Options {
	return Options{
		Socket: f.socket, JobID: testJobID, Token: testToken,
		Exit: func(code int, _ error) { exits <- code },
	}
}

type fakeConn struct {
	t    *testing.T
	conn net.Conn
	dec  protocol.Decoder
}

func (f *fake) accept() *fakeConn {
	f.t.Helper()
	type deadliner interface{ SetDeadline(time.Time) error }
	_ = f.ln.(deadliner).SetDeadline(time.Now().Add(patience))
	conn, err := f.ln.Accept()
	if err != nil {
		f.t.Fatalf("the worker did not connect: %v", err)
	}
	f.t.Cleanup(func() { _ = conn.Close() })
	return &fakeConn{t: f.t, conn: conn}
}

// read returns the next message from the worker; nil at EOF.
func (c *fakeConn) read() *protocol.Message {
	c.t.Helper()
	_ = c.conn.SetReadDeadline(time.Now().Add(patience))
	buf := make([]byte, 4096)
	for {
		m, err := c.dec.Next()
		if err != nil {
			c.t.Fatalf("the worker sent an invalid frame: %v", err)
		}
		if m != nil {
			return m
		}
		n, err := c.conn.Read(buf)
		if n == 0 && err != nil {
			return nil
		}
		c.dec.Feed(buf[:n])
	}
}

// expect reads the next message other than a heartbeat and checks its type.
func (c *fakeConn) expect(typ string) protocol.Message {
	c.t.Helper()
	for {
		m := c.read()
		if m == nil {
			c.t.Fatalf("the connection ended; expected %s", typ)
		}
		if m.Type == protocol.TypeHeartbeat && typ != protocol.TypeHeartbeat {
			continue
		}
		if m.Type != typ {
			c.t.Fatalf("got %s %v, expected %s", m.Type, m.Fields, typ)
		}
		return *m
	}
}

func (c *fakeConn) send(typ string, fields ...protocol.KV) {
	c.t.Helper()
	m, err := protocol.New(typ, fields...)
	if err != nil {
		c.t.Fatal(err)
	}
	frame, err := protocol.Encode(m)
	if err != nil {
		c.t.Fatal(err)
	}
	if _, err := c.conn.Write(frame); err != nil {
		c.t.Fatalf("writing %s: %v", typ, err)
	}
}

func kv(key string, value any) protocol.KV { return protocol.KV{Key: key, Value: value} }

// challenge reads the hello and answers it with a challenge whose proof is right
// (or, with a wrong key, wrong); it returns the hello.
func (c *fakeConn) challenge(key []byte) protocol.Message {
	c.t.Helper()
	hello := c.expect(protocol.TypeHello)
	if hello.Number("v") != protocol.Version || hello.String("job_id") != testJobID ||
		hello.Number("pid") != float64(os.Getpid()) || len(hello.Bytes("nonce")) != protocol.NonceSize {
		c.t.Fatalf("a bad hello: %v", hello.Fields)
	}
	nonce := make([]byte, protocol.NonceSize)
	_, _ = rand.Read(nonce)
	proof := protocol.SupervisorProof(key, testJobID, hello.Bytes("nonce"), nonce)
	c.send(protocol.TypeChallenge, kv("nonce", nonce), kv("proof", proof))
	auth := c.expect(protocol.TypeAuth)
	want := protocol.WorkerProof(protocol.TokenKey(testToken), testJobID, nonce, hello.Bytes("nonce"))
	if !bytes.Equal(auth.Bytes("proof"), want) {
		c.t.Fatal("the worker's proof is wrong")
	}
	return hello
}

// handshake runs the supervisor's side up to the welcome; it returns the hello.
func (f *fake) handshake(c *fakeConn, data any, heartbeat float64) protocol.Message {
	f.t.Helper()
	hello := c.challenge(f.key)
	c.send(protocol.TypeWelcome, kv("job_id", testJobID), kv("name", "demo"), kv("data", data),
		kv("attempt", int64(1)), kv("heartbeat_interval", heartbeat),
		kv("reconnect_interval", 0.05), kv("give_up_after", 5.0))
	c.expect(protocol.TypeStarted)
	return hello
}

// connect starts Connect and plays the supervisor until the job is welcomed.
func (f *fake) connect(opts Options, data any) (*Job, *fakeConn) {
	f.t.Helper()
	type result struct {
		job *Job
		err error
	}
	done := make(chan result, 1)
	go func() {
		job, err := Connect(context.Background(), opts)
		done <- result{job, err}
	}()
	c := f.accept()
	f.handshake(c, data, 60)
	r := <-done
	if r.err != nil {
		f.t.Fatalf("Connect: %v", r.err)
	}
	f.t.Cleanup(r.job.Close)
	return r.job, c
}

// async runs fn in a goroutine; its error arrives on the channel.
func async(fn func() error) <-chan error {
	ch := make(chan error, 1)
	go func() { ch <- fn() }()
	return ch
}

func pending(ch <-chan error) bool {
	select {
	case <-ch:
		return false
	default:
		return true
	}
}

func await(t *testing.T, ch <-chan error, what string) error {
	t.Helper()
	select {
	case err := <-ch:
		return err
	case <-time.After(patience):
		t.Fatalf("%s did not return", what)
		return nil
	}
}
