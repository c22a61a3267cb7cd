// Package jobvisor is the Go worker library of jobvisor: a program the supervisor
// starts for one job uses it to receive the job's data, report progress and logs, and
// report an outcome that survives supervisor restarts (docs/worker-go.md).
//
//	func main() {
//		jobvisor.Run(func(ctx context.Context, job *jobvisor.Job) (any, error) {
//			var in struct{ Images []string `json:"images"` }
//			if err := job.Decode(&in); err != nil {
//				return nil, err
//			}
//			for i := range in.Images {
//				if err := ctx.Err(); err != nil {
//					return nil, err // cancelled by the supervisor
//				}
//				_ = job.Progress(float64(100*(i+1))/float64(len(in.Images)), in.Images[i])
//			}
//			return map[string]int{"done": len(in.Images)}, nil
//		})
//	}
//
// Connect reads JOBVISOR_SOCKET, JOBVISOR_JOB_ID, JOBVISOR_TOKEN and
// JOBVISOR_HEARTBEAT_INTERVAL, connects (a Unix socket, or loopback TCP) and runs the
// version 2 handshake, in which the supervisor proves that it knows the job's token
// first and the token itself never crosses the wire. One goroutine per job then owns
// the connection: it sends what the job queued, heartbeats when nothing else went out,
// and on a lost connection reconnects on the supervisor's schedule and replays the
// latest progress, the buffered logs and the unacked outcome. Complete and Fail return
// only once the supervisor has committed the outcome. A cancel from the supervisor
// cancels Job.Context. When the supervisor refuses the job, or stays unreachable for
// its give-up window, the library stops the whole job: exit 77 or 75.
//
// The wire protocol itself, without I/O, is the protocol subpackage.
package jobvisor
