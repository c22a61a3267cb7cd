package jobvisor

import (
	"math"
	"os"
	"strconv"
	"time"
)

// The environment the supervisor starts a worker with (docs/protocol.md, section 1).
const (
	envSocket            = "JOBVISOR_SOCKET"
	envJobID             = "JOBVISOR_JOB_ID"
	envToken             = "JOBVISOR_TOKEN" // #nosec: the variable's name, not a secret
	envHeartbeatInterval = "JOBVISOR_HEARTBEAT_INTERVAL"
)

// Defaults, the Python library's: they apply until the first welcome, whose
// reconnect_interval and give_up_after replace them.
const (
	DefaultHeartbeatInterval   = 5 * time.Second
	DefaultReconnectInterval   = 2 * time.Second
	DefaultGiveUpAfter         = 60 * time.Second
	DefaultFastReconnectWindow = 5 * time.Second
	DefaultMaxBufferedLogs     = 1000
)

// Options are the library's knobs; the zero value reads everything from the
// environment and uses the defaults. Socket, JobID and Token are for tests and
// embedding: a worker started by jobvisor leaves them empty.
type Options struct {
	Socket string // JOBVISOR_SOCKET: a Unix socket path or tcp://127.0.0.1:PORT
	JobID  string // JOBVISOR_JOB_ID
	Token  string // JOBVISOR_TOKEN; never logged, never sent

	// HeartbeatInterval, when set, is used instead of JOBVISOR_HEARTBEAT_INTERVAL and
	// of the welcome's heartbeat_interval.
	HeartbeatInterval time.Duration
	// ReconnectInterval and GiveUpAfter are the reconnect schedule before the first
	// welcome; each welcome replaces them with the supervisor's.
	ReconnectInterval time.Duration
	GiveUpAfter       time.Duration
	// FastReconnectWindow is how long an outage is retried every ~20 ms before backing off.
	FastReconnectWindow time.Duration
	// MaxBufferedLogs bounds the logs kept while disconnected (oldest dropped first).
	MaxBufferedLogs int

	// Exit stops the job when the library must (refused: ExitRefused; unreachable:
	// ExitUnreachable). Nil means Terminate, which kills the rest of the process group
	// and exits. A function that returns lets Connect/Complete/Fail return the error.
	Exit func(code int, err error)
}

type settings struct {
	addr              address
	jobID             string
	key               []byte
	heartbeat         time.Duration
	heartbeatFixed    bool
	reconnectInterval time.Duration
	giveUpAfter       time.Duration
	fastWindow        time.Duration
	maxLogs           int
	exit              func(code int, err error)
}

func resolve(o Options, key func(string) []byte) (settings, error) {
	s := settings{exit: o.Exit}
	if s.exit == nil {
		s.exit = Terminate
	}
	socket, err := setting(o.Socket, envSocket)
	if err != nil {
		return s, err
	}
	if s.addr, err = parseAddress(socket); err != nil {
		return s, err
	}
	if s.jobID, err = setting(o.JobID, envJobID); err != nil {
		return s, err
	}
	token := o.Token
	if token == "" {
		if token, err = setting("", envToken); err != nil {
			return s, err
		}
	}
	s.key = key(token) // the token itself is not kept
	switch {
	case o.HeartbeatInterval != 0:
		s.heartbeat, s.heartbeatFixed = o.HeartbeatInterval, true
	case os.Getenv(envHeartbeatInterval) != "":
		text := os.Getenv(envHeartbeatInterval)
		seconds, err := strconv.ParseFloat(text, 64)
		if err != nil || math.IsNaN(seconds) || math.IsInf(seconds, 0) || seconds <= 0 {
			return s, &ConfigError{envHeartbeatInterval, "=" + strconv.Quote(text) + " is not a number of seconds > 0"}
		}
		s.heartbeat = seconds2duration(seconds)
	default:
		s.heartbeat = DefaultHeartbeatInterval
	}
	s.reconnectInterval = orDefault(o.ReconnectInterval, DefaultReconnectInterval)
	s.giveUpAfter = orDefault(o.GiveUpAfter, DefaultGiveUpAfter)
	s.fastWindow = orDefault(o.FastReconnectWindow, DefaultFastReconnectWindow)
	s.maxLogs = o.MaxBufferedLogs
	if s.maxLogs == 0 {
		s.maxLogs = DefaultMaxBufferedLogs
	}
	for name, d := range map[string]time.Duration{
		"HeartbeatInterval": s.heartbeat, "ReconnectInterval": s.reconnectInterval,
		"GiveUpAfter": s.giveUpAfter,
	} {
		if d <= 0 {
			return s, &ConfigError{"Options." + name, "must be > 0, got " + d.String()}
		}
	}
	if s.fastWindow < 0 {
		return s, &ConfigError{"Options.FastReconnectWindow", "must be >= 0, got " + s.fastWindow.String()}
	}
	if s.maxLogs < 1 {
		return s, &ConfigError{"Options.MaxBufferedLogs", "must be >= 1, got " + strconv.Itoa(s.maxLogs)}
	}
	return s, nil
}

func setting(value, env string) (string, error) {
	if value != "" {
		return value, nil
	}
	if v := os.Getenv(env); v != "" {
		return v, nil
	}
	return "", &ConfigError{env, "is not set: this program is a jobvisor worker and must be started by the jobvisor supervisor (or given the option explicitly)"}
}

func orDefault(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

func seconds2duration(s float64) time.Duration {
	if s >= math.MaxInt64/float64(time.Second) {
		return time.Duration(math.MaxInt64)
	}
	return time.Duration(s * float64(time.Second))
}
