package jobvisor

import (
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

const tcpScheme = "tcp://"

// maxUnixPath is sun_path's 108 bytes on Linux, less the final NUL (104 on the BSDs).
const maxUnixPath = 107

// address is where the supervisor listens for this job: a Unix socket path, or a
// loopback TCP address. Anything else is refused, so that a typo in the environment
// never sends a job's traffic across a network (docs/protocol.md, section 1).
type address struct {
	network string // "unix" or "tcp"
	addr    string
	text    string
}

func (a address) String() string { return a.text }

func parseAddress(text string) (address, error) {
	if text == "" {
		return address{}, &ConfigError{envSocket, "is empty"}
	}
	if !strings.HasPrefix(text, tcpScheme) {
		if len(text) > maxUnixPath {
			return address{}, &ConfigError{envSocket, "is longer than the " + strconv.Itoa(maxUnixPath) + "-byte limit of a Unix socket path"}
		}
		return address{"unix", text, text}, nil
	}
	hostport := strings.TrimPrefix(text, tcpScheme)
	ap, err := netip.ParseAddrPort(hostport)
	if err != nil {
		return address{}, &ConfigError{envSocket, "=" + strconv.Quote(text) + " is not tcp://IP:PORT with a loopback IP literal: " + err.Error()}
	}
	if !ap.Addr().IsLoopback() {
		return address{}, &ConfigError{envSocket, "=" + strconv.Quote(text) + " is not a loopback address: jobvisor only listens on loopback"}
	}
	if ap.Port() == 0 {
		return address{}, &ConfigError{envSocket, "=" + strconv.Quote(text) + " has port 0"}
	}
	return address{"tcp", ap.String(), text}, nil
}

func (a address) dial(timeout time.Duration) (net.Conn, error) {
	conn, err := net.DialTimeout(a.network, a.addr, timeout)
	if err != nil {
		return nil, err
	}
	if tcp, ok := conn.(*net.TCPConn); ok {
		_ = tcp.SetNoDelay(true) // Go's default, said out loud: frames are small
	}
	return conn, nil
}
