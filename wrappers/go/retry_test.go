package jobvisor

import (
	"testing"
	"time"
)

func TestRetryPolicyIsFastThenBacksOffToItsCapThenGivesUp(t *testing.T) {
	p := retryPolicy{cap: 400 * time.Millisecond, giveUpAfter: 10 * time.Second, fastWindow: time.Second}
	start := time.Unix(1000, 0)
	p.start(start)
	if d, ok := p.next(start); !ok || d < 10*time.Millisecond || d > 30*time.Millisecond {
		t.Fatalf("in the fast window: %v %v, want ~20 ms", d, ok)
	}
	later := start.Add(2 * time.Second)
	var delays []time.Duration
	for range 5 {
		d, _ := p.next(later)
		delays = append(delays, d)
	}
	want := []time.Duration{50, 100, 200, 400, 400}
	for i := range want {
		if delays[i] != want[i]*time.Millisecond {
			t.Fatalf("back-off %v, want %v ms", delays, want)
		}
	}
	if d, ok := p.next(start.Add(9900 * time.Millisecond)); !ok || d != 100*time.Millisecond {
		t.Fatalf("the last delay is clipped to the deadline: %v %v", d, ok)
	}
	if _, ok := p.next(start.Add(10 * time.Second)); ok {
		t.Fatal("did not give up at the deadline")
	}
}

func TestRetryPolicyResumeMovesOnlyTheGiveUpDeadline(t *testing.T) {
	p := retryPolicy{cap: time.Second, giveUpAfter: 5 * time.Second, fastWindow: time.Second}
	start := time.Unix(1000, 0)
	p.start(start)
	p.resume(start.Add(3 * time.Second)) // welcomed, then dropped at once
	if d, ok := p.next(start.Add(3 * time.Second)); !ok || d != 50*time.Millisecond {
		t.Fatalf("after resume: %v %v, want the back-off, not the fast window", d, ok)
	}
	if _, ok := p.next(start.Add(7 * time.Second)); !ok {
		t.Fatal("gave up before the moved deadline")
	}
	p.adopt(2*time.Second, time.Second)
	if _, ok := p.next(start.Add(4 * time.Second)); ok {
		t.Fatal("a welcome's shorter give_up_after was not adopted")
	}
}
