// Package meter is inferbox's durable usage ledger: instance lifetimes (by
// instance type) and every invocation (latencies, bytes, tokens), recorded
// for cost reports and the advisor, which price them later from a price
// book.
//
// The ledger writes to the catalog's SQLite database (it is handed the
// *sql.DB and creates its own meter_* tables) so that one file holds a
// deployment's state. It imports only the standard library: never the
// catalog package, a mode service, an adapter or the pool. Those call it.
//
// # Cost of recording
//
// RecordInvocation is on every request's path, so it does no I/O: it
// appends to an in-memory buffer under a mutex. Run writes the buffer every
// flush interval (one second by default) in one transaction with one
// prepared statement. The buffer is bounded: when it reaches the maximum the
// caller that filled it writes it synchronously (backpressure) rather than
// dropping rows; a row accepted by RecordInvocation is never discarded, and
// a failed write puts its rows back to be retried.
//
// # Durability
//
// On kill -9 or power loss, at most the rows of the last flush interval
// are lost (those still in memory). A graceful Close writes everything.
// Instance lifetimes survive a crash: every flush stamps last_seen on the
// instances still running, and NewLedger closes instances a previous
// process left open at their last_seen, so a crash never bills an instance
// forever. Only one process may write a given ledger (database file) at a
// time, since NewLedger treats every open instance as orphaned.
package meter

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// Defaults for the options.
const (
	DefaultFlushInterval = time.Second
	DefaultMaxBuffer     = 1 << 16 // invocations held in memory before a caller must write
)

// finalFlushTimeout bounds the flush Run does after its context ends.
const finalFlushTimeout = 10 * time.Second

// InstanceUsage is one instance's start: an instance of InstanceType serving
// Resource (an endpoint or job name) in a mode.
type InstanceUsage struct {
	InstanceID   string
	Mode         string // realtime, serverless, async, transform, genai...
	Resource     string // endpoint or job name
	Variant      string
	InstanceType string
	Start        time.Time
}

// InstanceRecord is a recorded instance lifetime.
type InstanceRecord struct {
	InstanceUsage
	End       time.Time // zero while the instance runs
	LastSeen  time.Time // the last flush that saw it running
	Recovered bool      // closed at LastSeen after its process died
}

// Invocation is one request's usage.
type Invocation struct {
	Time                      time.Time
	Mode                      string
	Resource                  string
	Variant                   string
	InstanceType              string
	Caller                    string
	ModelLatency              time.Duration
	TotalLatency              time.Duration
	Status                    int
	BytesIn, BytesOut         int64
	InputTokens, OutputTokens int
	// MemoryMB is the memory size a serverless invocation ran with: its
	// compute is ModelLatency × MemoryMB. Zero for instance-based modes.
	MemoryMB int
}

// instanceEvent is a buffered start (usage set) or stop.
type instanceEvent struct {
	start *InstanceUsage
	id    string
	end   time.Time
}

// Option configures a Ledger.
type Option func(*Ledger)

// WithFlushInterval sets how often Run writes the buffer.
func WithFlushInterval(d time.Duration) Option { return func(l *Ledger) { l.interval = d } }

// WithMaxBuffer sets how many invocations may wait in memory before the
// caller that reaches the limit writes them itself.
func WithMaxBuffer(n int) Option { return func(l *Ledger) { l.maxBuffer = n } }

// WithClock sets the clock that stamps last_seen.
func WithClock(now func() time.Time) Option { return func(l *Ledger) { l.now = now } }

// Ledger is the usage ledger. Its methods are safe for concurrent use.
//
// Lock order: flushMu, then mu. flushMu is held across a whole flush (take
// the buffer, write it, commit) so batches commit in the order they were
// taken, and an instance's stop never lands before its start.
type Ledger struct {
	db        *sql.DB
	logger    *slog.Logger
	now       func() time.Time
	interval  time.Duration
	maxBuffer int
	kick      chan struct{} // asks Run to flush early; capacity 1

	flushMu sync.Mutex

	mu     sync.Mutex
	invs   []Invocation
	spare  []Invocation // the last written batch, emptied, for reuse
	events []instanceEvent
}

// NewLedger creates the ledger's tables in db if needed and closes the
// instances a previous process left open, at their last heartbeat.
func NewLedger(ctx context.Context, db *sql.DB, logger *slog.Logger, opts ...Option) (*Ledger, error) {
	l := &Ledger{
		db:        db,
		logger:    logger.With("component", "meter"),
		now:       time.Now,
		interval:  DefaultFlushInterval,
		maxBuffer: DefaultMaxBuffer,
		kick:      make(chan struct{}, 1),
	}
	for _, o := range opts {
		o(l)
	}
	if l.interval <= 0 {
		return nil, fmt.Errorf("meter: flush interval %v must be positive", l.interval)
	}
	if l.maxBuffer < 1 {
		return nil, fmt.Errorf("meter: max buffer %d must be at least 1", l.maxBuffer)
	}
	if err := migrate(ctx, db); err != nil {
		return nil, fmt.Errorf("meter: %w", err)
	}
	res, err := db.ExecContext(ctx,
		`UPDATE meter_instances SET end_us = last_seen_us, recovered = 1 WHERE end_us IS NULL`)
	if err != nil {
		return nil, fmt.Errorf("meter: close orphaned instances: %w", err)
	}
	if n, err := res.RowsAffected(); err == nil && n > 0 {
		l.logger.Warn("closed instances left open by a previous process at their last heartbeat", "instances", n)
	}
	return l, nil
}

// InstanceStarted records an instance's start. It does no I/O: the start
// is written with the next flush.
func (l *Ledger) InstanceStarted(u InstanceUsage) {
	if u.Start.IsZero() {
		u.Start = l.now()
	}
	l.mu.Lock()
	l.events = append(l.events, instanceEvent{start: &u})
	l.mu.Unlock()
}

// InstanceStopped records the end of the running instance instanceID. It
// does no I/O: the end is written with the next flush.
func (l *Ledger) InstanceStopped(instanceID string, end time.Time) {
	if end.IsZero() {
		end = l.now()
	}
	l.mu.Lock()
	l.events = append(l.events, instanceEvent{id: instanceID, end: end})
	l.mu.Unlock()
}

// RecordInvocation buffers one invocation. It does no I/O unless the
// buffer is full, in which case it writes the buffer before returning.
func (l *Ledger) RecordInvocation(inv Invocation) {
	l.mu.Lock()
	if l.invs == nil && l.spare != nil {
		l.invs, l.spare = l.spare, nil
	}
	l.invs = append(l.invs, inv)
	n := len(l.invs)
	l.mu.Unlock()
	switch {
	case n >= l.maxBuffer:
		// No caller context on the hot path: this write is bounded by the
		// database's busy timeout, not by a request's deadline.
		if err := l.flush(context.Background(), l.maxBuffer); err != nil {
			l.logger.Error("synchronous flush of a full usage buffer failed; rows kept for retry", "err", err)
		}
	case n == l.maxBuffer/2:
		select {
		case l.kick <- struct{}{}:
		default:
		}
	}
}

// Flush writes every buffered row in one transaction. On failure the rows
// stay buffered for the next flush.
func (l *Ledger) Flush(ctx context.Context) error { return l.flush(ctx, 0) }

// flush writes the buffer if it holds at least min invocations (or any
// instance events); min 0 always writes, to stamp last_seen.
func (l *Ledger) flush(ctx context.Context, min int) error {
	l.flushMu.Lock()
	defer l.flushMu.Unlock()
	l.mu.Lock()
	if min > 0 && len(l.invs) < min {
		l.mu.Unlock()
		return nil // someone else wrote it while we waited
	}
	invs, events := l.invs, l.events
	l.invs, l.events = l.spare, nil
	l.spare = nil
	l.mu.Unlock()

	if err := l.write(ctx, invs, events); err != nil {
		l.mu.Lock()
		l.invs = append(invs, l.invs...)
		l.events = append(events, l.events...)
		l.mu.Unlock()
		return fmt.Errorf("meter: flush %d invocations, %d instance events: %w", len(invs), len(events), err)
	}
	// Keep the written batch's array for the next one, unless an overflow
	// made it unusually large.
	if cap(invs) <= 2*l.maxBuffer {
		clear(invs)
		l.mu.Lock()
		if l.spare == nil {
			l.spare = invs[:0]
		}
		l.mu.Unlock()
	}
	return nil
}

// write commits one batch: starts and stops in their order, the
// invocations, and a last_seen stamp on every instance still running.
func (l *Ledger) write(ctx context.Context, invs []Invocation, events []instanceEvent) error {
	tx, err := l.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	now := l.now().UnixMicro()
	for _, e := range events {
		if u := e.start; u != nil {
			_, err = tx.ExecContext(ctx,
				`INSERT INTO meter_instances (instance_id, mode, resource, variant, instance_type, start_us, last_seen_us)
				 VALUES (?, ?, ?, ?, ?, ?, ?)`,
				u.InstanceID, u.Mode, u.Resource, u.Variant, u.InstanceType, u.Start.UnixMicro(), max(now, u.Start.UnixMicro()))
		} else {
			_, err = tx.ExecContext(ctx,
				`UPDATE meter_instances SET end_us = ?, last_seen_us = max(last_seen_us, ?)
				 WHERE instance_id = ? AND end_us IS NULL`,
				e.end.UnixMicro(), e.end.UnixMicro(), e.id)
		}
		if err != nil {
			return fmt.Errorf("instance event: %w", err)
		}
	}
	if len(invs) > 0 {
		data, lo, hi := encodeBatch(invs)
		if _, err := tx.ExecContext(ctx,
			`INSERT INTO meter_invocation_batches (min_time_us, max_time_us, count, data) VALUES (?, ?, ?, ?)`,
			lo, hi, len(invs), data); err != nil {
			return fmt.Errorf("invocations: %w", err)
		}
	}
	if _, err := tx.ExecContext(ctx,
		`UPDATE meter_instances SET last_seen_us = max(last_seen_us, ?) WHERE end_us IS NULL`, now); err != nil {
		return fmt.Errorf("heartbeat: %w", err)
	}
	return tx.Commit()
}

// Run flushes every interval, and early when the buffer is half full,
// until ctx ends; then it flushes a last time (bounded by a timeout) and
// returns. The caller owns the goroutine running it.
func (l *Ledger) Run(ctx context.Context) {
	t := time.NewTicker(l.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), finalFlushTimeout)
			defer cancel()
			if err := l.Flush(fctx); err != nil {
				l.logger.Error("final usage flush failed", "err", err)
			}
			return
		case <-t.C:
		case <-l.kick:
		}
		if err := l.Flush(ctx); err != nil && !errors.Is(err, context.Canceled) {
			l.logger.Error("usage flush failed; rows kept for retry", "err", err)
		}
	}
}

// Close writes everything buffered. It is idempotent, and does not close
// the database, which belongs to the catalog. Rows recorded after Close are
// buffered for a later Flush or Close: close the ledger after the servers
// that record into it have stopped.
func (l *Ledger) Close(ctx context.Context) error { return l.Flush(ctx) }
