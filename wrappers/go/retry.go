package jobvisor

import (
	"math/rand/v2"
	"time"
)

// The reconnect schedule, the Python library's (wrappers/python/jobvisor_worker/_retry.py).
const (
	fastInterval  = 20 * time.Millisecond
	fastJitter    = 0.5 // +-50%, so that a thousand workers do not knock in lockstep
	backoffStart  = 50 * time.Millisecond
	backoffFactor = 2
)

// retryPolicy says how long to wait after a failed connection attempt during one
// outage, and when to give up. Time is passed in.
//
// An outage starts when a welcomed connection is lost (or when the worker starts) and
// ends with the next welcome. For fastWindow it retries every ~20 ms (a supervisor
// restart takes well under a second); then it backs off from 50 ms, doubling, capped
// at cap (the welcome's reconnect_interval). After giveUpAfter of continuous failure
// next returns ok=false. A connection welcomed and then dropped at once does not start
// a new outage (resume): only the give-up deadline moves, so a supervisor that drops us
// on every replay costs one try per cap, not fifty a second.
type retryPolicy struct {
	cap, giveUpAfter, fastWindow time.Duration
	outageStart, fastUntil       time.Time
	backoffAttempts              int
}

func (p *retryPolicy) start(now time.Time) {
	p.outageStart = now
	p.fastUntil = now.Add(p.fastWindow)
	p.backoffAttempts = 0
}

func (p *retryPolicy) resume(now time.Time) { p.outageStart = now }

func (p *retryPolicy) adopt(cap, giveUpAfter time.Duration) {
	p.cap, p.giveUpAfter = cap, giveUpAfter
}

func (p *retryPolicy) deadline() time.Time { return p.outageStart.Add(p.giveUpAfter) }

func (p *retryPolicy) inFastWindow(now time.Time) bool { return now.Before(p.fastUntil) }

// next is the delay before the next attempt after one failed at now; ok is false when
// it is time to give up. The last delay is clipped so that one attempt happens right at
// the deadline.
func (p *retryPolicy) next(now time.Time) (delay time.Duration, ok bool) {
	deadline := p.deadline()
	if !now.Before(deadline) {
		return 0, false
	}
	if p.inFastWindow(now) {
		jitter := 1 - fastJitter + 2*fastJitter*rand.Float64()
		delay = time.Duration(float64(fastInterval) * jitter)
	} else {
		delay = backoffStart
		for i := 0; i < p.backoffAttempts && delay < p.cap; i++ {
			delay *= backoffFactor
		}
		delay = min(delay, p.cap)
		if delay < p.cap {
			p.backoffAttempts++
		}
	}
	return min(delay, deadline.Sub(now)), true
}
