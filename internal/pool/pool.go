// Package pool runs the instances of one model variant: it starts and stops
// them, routes each invocation to one (least outstanding requests, or
// random), bounds how many run at once on an instance, and holds the rest in
// a bounded, priority-ordered wait queue with a timeout. An instance whose
// model says it is not ready (Ready() false: a model server being replaced
// after it crashed or failed its health checks) stays in the pool but gets
// no new invocations while another instance is ready.
//
// Every inference mode is a policy over pools: real-time endpoints keep a
// fixed or autoscaled count, serverless pools scale from zero, async and
// batch feed them from a queue. A pool knows nothing of modes or wire
// formats; it imports only runtime.
package pool

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/inferbox/inferbox/internal/runtime"
)

// Routing is how a pool picks an instance.
type Routing int

const (
	// LeastOutstanding picks the instance with the fewest invocations in flight.
	LeastOutstanding Routing = iota
	// Random picks uniformly among instances with a free slot.
	Random
)

// Priority orders the wait queue: higher goes first.
type Priority int

const (
	// Low is for work nobody waits on (LLM batch inference).
	Low Priority = -1
	// Normal is for interactive requests.
	Normal Priority = 0
)

// Errors the pool returns; callers map them to the wire.
var (
	// ErrQueueFull means the wait queue is at its limit.
	ErrQueueFull = errors.New("pool: too many requests waiting for an instance")
	// ErrQueueTimeout means no instance became free within the queue timeout.
	ErrQueueTimeout = errors.New("pool: timed out waiting for an instance")
	// ErrClosed means the pool is shut down.
	ErrClosed = errors.New("pool: closed")
	// ErrThrottled means MaxInFlight invocations are already in flight or
	// waiting: the invocation is refused at once, never queued.
	ErrThrottled = errors.New("pool: concurrency limit reached")
)

// StartFunc loads one instance. It returns the model and a function that
// releases whatever starting it took (capacity, ledger records); the pool
// calls release after closing the model.
type StartFunc func(ctx context.Context, instanceID string) (m runtime.Model, release func(), err error)

// Config configures a pool. Zero values take the defaults noted.
type Config struct {
	Name         string        // for logs and instance ids
	Start        StartFunc     // required
	Concurrency  int           // per-instance invocations in flight; default 1
	QueueLimit   int           // waiting invocations; default 1024
	QueueTimeout time.Duration // how long an invocation may wait; default 60 s
	Routing      Routing
	Logger       *slog.Logger
	// OnChange, if set, is called after an instance joins or leaves routing.
	OnChange func()

	// Elastic pools start instances on demand (serverless): when an
	// invocation has to wait and fewer instances are ready or starting
	// than the demand needs (ceil(demand / Concurrency), at most
	// MaxInstances), the pool starts more in the background; invocations
	// that arrive meanwhile share those starts. If a start fails and
	// nothing else can serve the waiting invocations, they fail with the
	// start's error; the next invocation tries again.
	Elastic      bool
	MaxInstances int
	// MaxInFlight, if positive, refuses an invocation with ErrThrottled
	// when this many are already in flight or waiting.
	MaxInFlight int
	// OnStart, if set, is called with each instance's load time.
	OnStart func(load time.Duration)
}

// Pool is a set of instances of one model. Its methods are safe for
// concurrent use. Close must be called to stop its instances.
type Pool struct {
	cfg Config
	log *slog.Logger

	mu        sync.Mutex
	instances []*instance // ready, in routing
	starting  int
	waiters   waitQueue
	closed    bool
	seq       int
	resizeMu  sync.Mutex // serialises Resize
	stats     Stats
	wg        sync.WaitGroup // stopping instances
	noticeCh  chan struct{}  // closed and replaced whenever instances change
	lastStart error
	inflight  int             // invocations holding a slot
	bgCtx     context.Context // background starts; cancelled by Close
	bgCancel  context.CancelFunc
}

type instance struct {
	id          string
	model       runtime.Model
	release     func()
	outstanding int
	draining    bool
	idle        chan struct{} // closed when draining and outstanding reaches 0
	readyAt     time.Time
	load        time.Duration // how long the start took
	lastUsed    time.Time     // when an invocation last finished (or readyAt)
}

// New returns an empty pool; call Resize to start instances.
func New(cfg Config) *Pool {
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 1
	}
	if cfg.QueueLimit <= 0 {
		cfg.QueueLimit = 1024
	}
	if cfg.QueueTimeout <= 0 {
		cfg.QueueTimeout = 60 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	bg, cancel := context.WithCancel(context.Background())
	return &Pool{cfg: cfg, log: cfg.Logger.With("pool", cfg.Name), noticeCh: make(chan struct{}), bgCtx: bg, bgCancel: cancel}
}

// Size returns the number of ready instances.
func (p *Pool) Size() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.instances)
}

// Snapshot returns the pool's counters and gauges.
func (p *Pool) Snapshot() Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.stats
	s.At = time.Now()
	s.Instances = len(p.instances)
	s.Starting = p.starting
	s.Queued = p.waiters.len()
	s.InFlight = p.inflight
	return s
}

// Resize starts or stops instances until n are ready, and returns when they
// are: new instances load in parallel and join routing as each becomes
// ready; surplus instances leave routing at once and are closed after their
// in-flight invocations finish. If an instance fails to start, Resize stops
// the instances it started and returns the error.
func (p *Pool) Resize(ctx context.Context, n int) error {
	p.resizeMu.Lock()
	defer p.resizeMu.Unlock()
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return ErrClosed
	}
	have := len(p.instances)
	if n < have {
		victims := p.pickVictimsLocked(have - n)
		p.mu.Unlock()
		for _, in := range victims {
			p.stop(in)
		}
		return nil
	}
	add := n - have
	p.starting += add
	p.mu.Unlock()
	if add == 0 {
		return nil
	}
	type result struct {
		in  *instance
		err error
	}
	results := make(chan result, add)
	for range add {
		go func() {
			in, err := p.startOne(ctx)
			results <- result{in, err}
		}()
	}
	var firstErr error
	var started []*instance
	for range add {
		r := <-results
		p.mu.Lock()
		p.starting--
		if r.err == nil && !p.closed && firstErr == nil {
			p.instances = append(p.instances, r.in)
			started = append(started, r.in)
			p.handOffLocked()
			p.noticeLocked()
			p.mu.Unlock()
			p.changed()
			continue
		}
		p.mu.Unlock()
		if r.err != nil && firstErr == nil {
			firstErr = r.err
		}
		if r.in != nil {
			p.closeInstance(r.in)
		}
	}
	if firstErr == nil && p.isClosed() {
		firstErr = ErrClosed
	}
	if firstErr != nil {
		p.mu.Lock()
		p.lastStart = firstErr
		for _, in := range started {
			p.removeLocked(in)
		}
		p.mu.Unlock()
		for _, in := range started {
			p.stop(in)
		}
		return firstErr
	}
	return nil
}

func (p *Pool) isClosed() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.closed
}

func (p *Pool) startOne(ctx context.Context) (*instance, error) {
	p.mu.Lock()
	p.seq++
	id := fmt.Sprintf("%s-%d", p.cfg.Name, p.seq)
	p.mu.Unlock()
	t0 := time.Now()
	m, release, err := p.cfg.Start(ctx, id)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	load := now.Sub(t0)
	p.log.Info("instance ready", "instance", id, "load", load.Round(time.Microsecond))
	if p.cfg.OnStart != nil {
		p.cfg.OnStart(load)
	}
	return &instance{id: id, model: m, release: release, readyAt: now, load: load, lastUsed: now}, nil
}

// pickVictimsLocked removes k instances from routing, preferring the least busy.
func (p *Pool) pickVictimsLocked(k int) []*instance {
	var out []*instance
	for range k {
		best := -1
		for i, in := range p.instances {
			if best < 0 || in.outstanding < p.instances[best].outstanding {
				best = i
			}
		}
		if best < 0 {
			break
		}
		in := p.instances[best]
		p.removeLocked(in)
		out = append(out, in)
	}
	p.noticeLocked()
	return out
}

func (p *Pool) removeLocked(victim *instance) {
	for i, in := range p.instances {
		if in == victim {
			p.instances = append(p.instances[:i], p.instances[i+1:]...)
			break
		}
	}
	victim.draining = true
	victim.idle = make(chan struct{})
	if victim.outstanding == 0 {
		close(victim.idle)
	}
}

// stop waits for a drained instance's in-flight invocations, then closes it.
func (p *Pool) stop(in *instance) {
	p.changed()
	p.wg.Add(1)
	defer p.wg.Done()
	<-in.idle
	p.closeInstance(in)
}

func (p *Pool) closeInstance(in *instance) {
	if err := in.model.Close(); err != nil {
		p.log.Warn("instance close", "instance", in.id, "err", err)
	}
	if in.release != nil {
		in.release()
	}
	p.log.Info("instance stopped", "instance", in.id)
}

func (p *Pool) changed() {
	if p.cfg.OnChange != nil {
		p.cfg.OnChange()
	}
}

func (p *Pool) noticeLocked() {
	close(p.noticeCh)
	p.noticeCh = make(chan struct{})
}

// Changed returns a channel closed at the next change of the instance set.
func (p *Pool) Changed() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.noticeCh
}

// Close stops routing, fails waiting invocations with ErrClosed, waits for
// in-flight invocations to finish (or ctx to end) and closes every instance.
// It is idempotent.
func (p *Pool) Close(ctx context.Context) error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		p.wg.Wait()
		return nil
	}
	p.closed = true
	p.bgCancel()
	p.waiters.failAll(ErrClosed)
	victims := append([]*instance(nil), p.instances...)
	for _, in := range victims {
		p.removeLocked(in)
	}
	p.noticeLocked()
	p.mu.Unlock()
	done := make(chan struct{})
	go func() {
		var wg sync.WaitGroup
		for _, in := range victims {
			wg.Add(1)
			go func() { defer wg.Done(); p.stop(in) }()
		}
		wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		p.wg.Wait()
		return nil
	case <-ctx.Done():
		return fmt.Errorf("pool %s: close: %w", p.cfg.Name, ctx.Err())
	}
}

// Result is an invocation's response plus where and how long it ran.
type Result struct {
	*runtime.Response
	Instance  string
	QueueWait time.Duration
	// ColdStart is the load time of the instance this invocation waited
	// for, when it waited for an instance that started after it arrived;
	// zero otherwise.
	ColdStart time.Duration
	body      *trackedBody
}

// ModelLatency is the time from handing the request to the instance until
// its response body was closed; valid after Body.Close.
func (r *Result) ModelLatency() time.Duration { return r.body.latency() }

// Invoke runs req on one instance, waiting in the queue (by priority, then
// arrival) if every instance is busy. The instance's slot is held until the
// returned Body is closed, so streamed responses count as in flight.
func (p *Pool) Invoke(ctx context.Context, req *runtime.Request, prio Priority) (*Result, error) {
	t0 := time.Now()
	in, err := p.acquire(ctx, prio)
	if err != nil {
		return nil, err
	}
	wait := time.Since(t0)
	var cold time.Duration
	if in.readyAt.After(t0) {
		cold = in.load
	}
	start := time.Now()
	resp, err := in.model.Invoke(ctx, req)
	if err != nil {
		p.finish(in, start, err)
		return nil, err
	}
	tb := &trackedBody{ReadCloser: resp.Body, start: start}
	tb.onClose = func() { p.finish(in, start, nil); tb.end = time.Now() }
	resp.Body = tb
	return &Result{Response: resp, Instance: in.id, QueueWait: wait, ColdStart: cold, body: tb}, nil
}

func (p *Pool) finish(in *instance, start time.Time, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	in.outstanding--
	p.inflight--
	now := time.Now()
	in.lastUsed = now
	p.stats.Invocations++
	p.stats.ModelLatencySum += now.Sub(start)
	p.stats.LastInvocation = now
	if err != nil {
		var me *runtime.ModelError
		if errors.As(err, &me) && me.StatusCode >= 400 && me.StatusCode < 500 {
			p.stats.Errors4xx++
		} else {
			p.stats.Errors5xx++
		}
	}
	if in.draining {
		if in.outstanding == 0 {
			close(in.idle)
		}
		return
	}
	p.handOffLocked()
}

// acquire returns an instance with a free slot, its outstanding count
// already incremented.
func (p *Pool) acquire(ctx context.Context, prio Priority) (*instance, error) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, ErrClosed
	}
	if p.cfg.MaxInFlight > 0 && p.inflight+p.waiters.len() >= p.cfg.MaxInFlight {
		p.mu.Unlock()
		return nil, ErrThrottled
	}
	if p.waiters.len() == 0 {
		if in := p.pickLocked(); in != nil {
			in.outstanding++
			p.inflight++
			p.mu.Unlock()
			return in, nil
		}
	}
	if p.waiters.len() >= p.cfg.QueueLimit {
		p.mu.Unlock()
		return nil, ErrQueueFull
	}
	w := p.waiters.push(prio)
	if p.cfg.Elastic {
		p.growLocked()
	}
	p.mu.Unlock()

	timer := time.NewTimer(p.cfg.QueueTimeout)
	defer timer.Stop()
	select {
	case r := <-w.ch:
		return r.in, r.err
	case <-timer.C:
		err := ErrQueueTimeout
		return p.abandon(w, err)
	case <-ctx.Done():
		return p.abandon(w, ctx.Err())
	}
}

// abandon removes a waiter; if it was handed an instance meanwhile, the
// slot is given back.
func (p *Pool) abandon(w *waiter, err error) (*instance, error) {
	p.mu.Lock()
	removed := p.waiters.remove(w)
	p.mu.Unlock()
	if !removed {
		r := <-w.ch
		if r.in != nil {
			p.mu.Lock()
			r.in.outstanding--
			p.inflight--
			if r.in.draining && r.in.outstanding == 0 {
				close(r.in.idle)
			} else if !r.in.draining {
				p.handOffLocked()
			}
			p.mu.Unlock()
		}
	}
	return nil, err
}

// readiness is implemented by models that can be out of service for a
// while without leaving the pool: a model server being restarted or
// replaced after failing its health checks. Their Invoke waits for them.
type readiness interface {
	Ready() bool
}

func ready(in *instance) bool {
	r, ok := in.model.(readiness)
	return !ok || r.Ready()
}

// pickLocked chooses an instance with a free slot, or nil. While any
// instance is ready, instances that are not are skipped (an invocation
// rather waits for a slot on a ready one than for a server to come back);
// when none is ready, all are candidates and the invocation waits inside
// the model, bounded by its context.
func (p *Pool) pickLocked() *instance {
	limit := p.cfg.Concurrency
	// Read each instance's readiness once: it can change meanwhile.
	var buf [16]bool
	isReady := buf[:0]
	someReady := false
	for _, in := range p.instances {
		r := ready(in)
		isReady = append(isReady, r)
		someReady = someReady || r
	}
	eligible := func(i int) bool {
		return p.instances[i].outstanding < limit && (!someReady || isReady[i])
	}
	switch p.cfg.Routing {
	case Random:
		free := 0
		for i := range p.instances {
			if eligible(i) {
				free++
			}
		}
		if free == 0 {
			return nil
		}
		k := rand.IntN(free)
		for i, in := range p.instances {
			if eligible(i) {
				if k == 0 {
					return in
				}
				k--
			}
		}
		return nil
	default:
		var best *instance
		for i, in := range p.instances {
			if eligible(i) && (best == nil || in.outstanding < best.outstanding) {
				best = in
			}
		}
		return best
	}
}

// handOffLocked gives free slots to waiters in queue order.
func (p *Pool) handOffLocked() {
	for p.waiters.len() > 0 {
		in := p.pickLocked()
		if in == nil {
			return
		}
		in.outstanding++
		p.inflight++
		w := p.waiters.pop()
		w.ch <- grant{in: in}
	}
}

type trackedBody struct {
	io.ReadCloser
	start   time.Time
	end     time.Time // closed
	eof     time.Time // output ended
	once    sync.Once
	onClose func()
}

// Read notes when the model's output ends: what follows (writing to a
// slow client) is not the model's time.
func (b *trackedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF && b.eof.IsZero() {
		b.eof = time.Now()
	}
	return n, err
}

func (b *trackedBody) Close() error {
	err := b.ReadCloser.Close()
	b.once.Do(b.onClose)
	return err
}

func (b *trackedBody) latency() time.Duration {
	switch {
	case !b.eof.IsZero():
		return b.eof.Sub(b.start)
	case !b.end.IsZero():
		return b.end.Sub(b.start)
	}
	return time.Since(b.start)
}
