package jobvisor

import (
	"os"
	"time"
)

// say writes one timestamped line of the library's own on stderr, which is the job's
// log file, in one write so that lines from several goroutines never interleave. A
// failed write is ignored: a full disk must never kill the worker.
func say(message string) {
	line := time.Now().UTC().Format("2006-01-02T15:04:05.000Z") + " jobvisor-go: " + message + "\n"
	_, _ = os.Stderr.WriteString(line)
}
