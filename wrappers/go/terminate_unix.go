//go:build unix

package jobvisor

import (
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

const (
	killPasses = 50
	passPause  = 10 * time.Millisecond
)

// Terminate stops the whole job and exits with code: the default Options.Exit.
//
// It is called when a retry of the job may run (or already runs) elsewhere: the
// supervisor refused the job, or could not be reached for the give-up window. So every
// process of the job must stop, not only this one. The supervisor starts a worker as the
// leader of its own process group, which the job's helper processes inherit. A leader
// SIGKILLs every other member (enumerated from /proc, repeated until a pass finds none
// alive, since a member may fork meanwhile) and then exits with code, so the code stays
// visible to whoever waits; if that does not converge, or /proc cannot be read,
// kill(-pgrp, SIGKILL) kills the group including us: no process of the job surviving
// matters more than the exit code. A process that does not lead its group (started by a
// shell or a test runner) only exits.
func Terminate(code int, err error) {
	say(err.Error() + "; stopping the job (exit " + strconv.Itoa(code) + ")")
	me, pgrp := os.Getpid(), syscall.Getpgrp()
	if pgrp == me && !killGroupMembers(pgrp, me) {
		_ = syscall.Kill(-pgrp, syscall.SIGKILL)
	}
	os.Exit(code)
}

func killGroupMembers(pgrp, me int) bool {
	for range killPasses {
		members, ok := livingGroupMembers(pgrp)
		if !ok {
			return false
		}
		alive := 0
		for _, pid := range members {
			if pid != me {
				alive++
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
		if alive == 0 {
			return true
		}
		reapChildren()
		time.Sleep(passPause)
	}
	return false
}

// reapChildren reaps our own dead children: a zombie is still in the group until then.
func reapChildren() {
	for {
		var status syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &status, syscall.WNOHANG, nil)
		if err != nil || pid <= 0 {
			return
		}
	}
}

func livingGroupMembers(pgrp int) ([]int, bool) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, false
	}
	var members []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue // exited meanwhile
		}
		// "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses.
		s := string(stat)
		fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(fields) >= 3 && fields[2] == strconv.Itoa(pgrp) && fields[0] != "Z" && fields[0] != "X" {
			members = append(members, pid)
		}
	}
	return members, true
}
