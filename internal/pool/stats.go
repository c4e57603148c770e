package pool

import "time"

// Stats is a point-in-time snapshot of a pool: what the autoscaler and the
// metrics read. Counters are cumulative since the pool was created, so a
// reader computes rates from the difference of two snapshots.
type Stats struct {
	At          time.Time // when the snapshot was taken
	Instances   int       // instances ready to serve
	Starting    int       // instances loading
	InFlight    int       // invocations executing on an instance
	Queued      int       // invocations waiting for a free instance
	Invocations uint64    // invocations finished (any outcome), cumulative
	Errors4xx   uint64    // invocations that ended in a 4xx (incl. ModelError 4xx), cumulative
	Errors5xx   uint64    // invocations that ended in a 5xx, cumulative
	// ModelLatencySum is the sum of model latencies of finished invocations, cumulative.
	ModelLatencySum time.Duration
	// LastInvocation is when the last invocation finished; zero if none yet.
	LastInvocation time.Time
}
