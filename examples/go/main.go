// Command example is a jobvisor worker in Go: it reports progress and logs while it
// works through a number of steps, and completes with a result.
//
// Its data (all optional) also lets tests drive it:
//
//	{"steps": 3, "step_ms": 50}    how many steps, and how long each takes
//	{"fail": "disk full"}          fail the job with this error after the steps
//	{"ready_file": "/tmp/r"}       append a line to this file when the work starts
//	{"wait_file": "/tmp/w"}        after the steps, wait until this file exists
//	{"done_file": "/tmp/d"}        create this file when the work is done, before reporting
//	{"echo": anything}             returned in the result
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	jobvisor "github.com/jobvisor/jobvisor/wrappers/go"
)

type input struct {
	Steps     int    `json:"steps"`
	StepMS    int    `json:"step_ms"`
	Fail      string `json:"fail"`
	ReadyFile string `json:"ready_file"`
	WaitFile  string `json:"wait_file"`
	DoneFile  string `json:"done_file"`
	Echo      any    `json:"echo"`
}

type result struct {
	Steps int `json:"steps"`
	PID   int `json:"pid"`
	Echo  any `json:"echo,omitempty"`
}

func main() {
	jobvisor.Run(work)
}

func work(ctx context.Context, job *jobvisor.Job) (any, error) {
	in := input{Steps: 3}
	if err := job.Decode(&in); err != nil {
		return nil, err
	}
	if err := job.Logf(jobvisor.Info, "attempt %d: %d steps of %d ms", job.Attempt(), in.Steps, in.StepMS); err != nil {
		return nil, err
	}
	if in.ReadyFile != "" {
		if err := appendLine(in.ReadyFile, fmt.Sprint(os.Getpid())); err != nil {
			return nil, err
		}
	}
	for step := 1; step <= in.Steps; step++ {
		if err := pause(ctx, time.Duration(in.StepMS)*time.Millisecond); err != nil {
			return nil, err // cancelled: Run reports it and exits
		}
		percent := float64(100*step) / float64(in.Steps)
		if err := job.Progress(percent, fmt.Sprintf("step %d of %d", step, in.Steps)); err != nil {
			return nil, err
		}
		_ = job.Log(jobvisor.Debug, "step done", map[string]int{"step": step})
	}
	if in.WaitFile != "" {
		if err := waitFile(ctx, in.WaitFile); err != nil {
			return nil, err
		}
		_ = job.Logf(jobvisor.Info, "found %s", in.WaitFile)
	}
	if in.DoneFile != "" {
		if err := appendLine(in.DoneFile, "done"); err != nil {
			return nil, err
		}
	}
	if in.Fail != "" {
		return nil, errors.New(in.Fail)
	}
	return result{Steps: in.Steps, PID: os.Getpid(), Echo: in.Echo}, nil
}

// pause waits d, or until the job is cancelled.
func pause(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func waitFile(ctx context.Context, path string) error {
	for {
		if _, err := os.Stat(path); err == nil {
			return nil
		}
		if err := pause(ctx, 20*time.Millisecond); err != nil {
			return err
		}
	}
}

func appendLine(path, line string) error {
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	_, err = f.WriteString(line + "\n")
	if closeErr := f.Close(); err == nil {
		err = closeErr
	}
	return err
}
