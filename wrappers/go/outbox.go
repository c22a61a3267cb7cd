package jobvisor

// outbox is what the worker keeps for its supervisor while it cannot (or has not yet)
// sent it, bounded because a supervisor may be away for a minute while the job runs on:
//
//   - progress: only the latest, sent again after every reconnect (a restarted
//     supervisor batches progress writes and may have lost the last one);
//   - logs: at most maxLogs unsent, oldest dropped first and counted, so that one warn
//     log can say so; a log handed to a connection is gone from here (at most once);
//   - the outcome (completed/failed): kept until acked, sent again after every reconnect.
//
// Everything is held as encoded frames: a value that cannot be encoded fails the call
// that passed it, and a replay costs nothing. Not safe for concurrent use: Job's mutex
// guards it.
type outbox struct {
	maxLogs         int
	progress        []byte
	progressPending bool
	logs            [][]byte
	dropped         int
	outcome         []byte
	outcomeKind     string // "completed", "failed" or "" while the job runs
	outcomePending  bool
	acked           bool
}

func (o *outbox) pending() bool {
	return o.progressPending || len(o.logs) > 0 || o.outcomePending
}

func (o *outbox) putProgress(frame []byte) {
	o.progress, o.progressPending = frame, true
}

func (o *outbox) putLog(frame []byte) {
	if len(o.logs) >= o.maxLogs {
		o.logs = o.logs[1:]
		o.dropped++
	}
	o.logs = append(o.logs, frame)
}

func (o *outbox) putOutcome(kind string, frame []byte) {
	o.outcomeKind, o.outcome, o.outcomePending = kind, frame, true
}

// ack records an ack; false when it is not for our outcome (a stale duplicate).
func (o *outbox) ack(kind string) bool {
	if o.outcome == nil || kind != o.outcomeKind {
		return false
	}
	o.acked, o.outcomePending = true, false
	return true
}

// rewind prepares a new connection: the latest progress and an unacked outcome go again.
func (o *outbox) rewind() {
	o.progressPending = o.progress != nil
	o.outcomePending = o.outcome != nil && !o.acked
}

// take appends every pending frame: progress, logs oldest first, the outcome.
func (o *outbox) take(out [][]byte) [][]byte {
	if o.progressPending {
		out = append(out, o.progress)
		o.progressPending = false
	}
	out = append(out, o.logs...)
	o.logs = nil
	if o.outcomePending {
		out = append(out, o.outcome)
		o.outcomePending = false
	}
	return out
}

func (o *outbox) takeDropped() int {
	n := o.dropped
	o.dropped = 0
	return n
}
