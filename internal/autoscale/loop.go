package autoscale

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/inferbox/inferbox/internal/catalog"
	"github.com/inferbox/inferbox/internal/pool"
)

// Clock is the loop's time. Production passes SystemClock(); tests pass a
// clock they advance by hand.
type Clock interface {
	Now() time.Time
	NewTicker(d time.Duration) Ticker
}

// Ticker delivers ticks like time.Ticker: a tick is dropped if the last one
// was not taken yet.
type Ticker interface {
	C() <-chan time.Time
	Stop()
}

// SystemClock returns the wall clock.
func SystemClock() Clock { return systemClock{} }

type systemClock struct{}

func (systemClock) Now() time.Time                   { return time.Now() }
func (systemClock) NewTicker(d time.Duration) Ticker { return systemTicker{time.NewTicker(d)} }

type systemTicker struct{ t *time.Ticker }

func (t systemTicker) C() <-chan time.Time { return t.t.C }
func (t systemTicker) Stop()               { t.t.Stop() }

// Source reports a variant's pool snapshot and its desired instance count.
// ok is false when the variant does not exist or cannot scale now (for
// example while its endpoint is Updating); the loop then skips it and forgets
// its samples. The loop stamps each sample with its own clock, so Stats.At is
// ignored. A mode service implements it.
type Source interface {
	Stats(resourceID string) (s pool.Stats, desired int, ok bool)
}

// Scaler sets a variant's desired instance count, as
// UpdateEndpointWeightsAndCapacities does. A mode service implements it.
type Scaler interface {
	SetDesiredCount(ctx context.Context, resourceID string, n int, reason string) error
}

// Activity is an Application Auto Scaling ScalingActivity, in its wire
// shape; the catalog keeps it.
type Activity = catalog.ScalingActivity

// Activity status codes used here (AWS's enum also has Pending, InProgress,
// Overridden and Unfulfilled).
const (
	StatusSuccessful = "Successful"
	StatusFailed     = "Failed"
)

// Lookup errors, for the API layer's ObjectNotFoundException.
var (
	ErrNoTarget = errors.New("no scalable target registered")
	ErrNoPolicy = errors.New("no scaling policy")
)

// maxActivities is how many activities the loop (and the journal) keeps
// per target.
const maxActivities = 100

// Journal is where the loop writes what it must not forget across a
// restart: each activity, and a target's cooldown state after each
// change. *catalog.Store implements it (after InitScalingState); Restore
// reads it back.
type Journal interface {
	AddScalingActivity(ctx context.Context, a *catalog.ScalingActivity, keep int) error
	PutScalingCooldown(ctx context.Context, c *catalog.ScalingCooldown) error
}

var _ Journal = (*catalog.Store)(nil)

// Loop samples every registered target each tick, decides, applies changes
// through the Scaler and records activities. Its methods are safe for
// concurrent use; Run must be called once.
type Loop struct {
	src    Source
	scaler Scaler
	clock  Clock
	timing Timing
	log    *slog.Logger
	// journal is set before Run (SetJournal) and read-only after; nil
	// keeps everything in memory.
	journal Journal

	mu      sync.Mutex
	targets map[string]*targetState // by ResourceId
}

// SetJournal makes the loop record activities and cooldowns in j. Call it
// before Run.
func (l *Loop) SetJournal(j Journal) { l.journal = j }

// Restore gives a registered target back what a previous process
// recorded: its activities (oldest first) and its cooldown state (nil if
// it never scaled), so cooldowns still hold after a restart.
func (l *Loop) Restore(resourceID string, activities []Activity, cd *catalog.ScalingCooldown) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	ts, ok := l.targets[resourceID]
	if !ok {
		return fmt.Errorf("%w: %s", ErrNoTarget, resourceID)
	}
	ts.activities = slices.Clone(activities)
	if over := len(ts.activities) - maxActivities; over > 0 {
		ts.activities = slices.Delete(ts.activities, 0, over)
	}
	if cd != nil {
		ts.last.LastScaleOut, ts.last.ScaleOutTo, ts.last.ScaleOutCooldownEnds = cd.LastScaleOut, cd.ScaleOutTo, cd.ScaleOutCooldownEnds
		ts.last.LastScaleIn, ts.last.ScaleInCooldownEnds = cd.LastScaleIn, cd.ScaleInCooldownEnds
	}
	return nil
}

// targetState is everything the loop holds for one target.
type targetState struct {
	target     catalog.ScalableTarget
	policies   map[string]catalog.ScalingPolicy
	history    []pool.Stats // oldest first, within timing.HistoryWindow
	last       Decision
	retryAt    time.Time  // after a failed change, no new one before this
	activities []Activity // oldest first
}

// NewLoop builds a loop; it does nothing until Run. timing is validated here.
func NewLoop(src Source, scaler Scaler, clock Clock, timing Timing, logger *slog.Logger) (*Loop, error) {
	if err := timing.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Loop{
		src: src, scaler: scaler, clock: clock, timing: timing.WithDefaults(),
		log:     logger.With("component", "autoscale"),
		targets: make(map[string]*targetState),
	}, nil
}

// SetTarget registers a scalable target or updates its capacity bounds and
// suspended state (RegisterScalableTarget). New bounds apply at the next tick.
func (l *Loop) SetTarget(t catalog.ScalableTarget) error {
	if err := ValidateTarget(t); err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if ts, ok := l.targets[t.ResourceId]; ok {
		ts.target = t
		return nil
	}
	l.targets[t.ResourceId] = &targetState{target: t, policies: make(map[string]catalog.ScalingPolicy)}
	return nil
}

// RemoveTarget deregisters a target and deletes its policies
// (DeregisterScalableTarget).
func (l *Loop) RemoveTarget(ns, resourceID, dim string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, err := l.lookup(ns, resourceID, dim); err != nil {
		return err
	}
	delete(l.targets, resourceID)
	return nil
}

// SetPolicy creates or replaces a policy on a registered target
// (PutScalingPolicy).
func (l *Loop) SetPolicy(p catalog.ScalingPolicy) error {
	if err := ValidatePolicy(p); err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	ts, err := l.lookup(p.ServiceNamespace, p.ResourceId, p.ScalableDimension)
	if err != nil {
		return err
	}
	ts.policies[p.PolicyName] = p
	return nil
}

// RemovePolicy deletes a policy (DeleteScalingPolicy).
func (l *Loop) RemovePolicy(ns, resourceID, dim, name string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	ts, err := l.lookup(ns, resourceID, dim)
	if err != nil {
		return err
	}
	if _, ok := ts.policies[name]; !ok {
		return fmt.Errorf("%w named %q for %s", ErrNoPolicy, name, resourceID)
	}
	delete(ts.policies, name)
	return nil
}

func (l *Loop) lookup(ns, resourceID, dim string) (*targetState, error) {
	ts, ok := l.targets[resourceID]
	if !ok || ns != ServiceNamespace || dim != ScalableDimension {
		return nil, fmt.Errorf("%w for service namespace %s, resource ID %s, scalable dimension %s", ErrNoTarget, ns, resourceID, dim)
	}
	return ts, nil
}

// Activities returns a target's recent scaling activities, newest first.
func (l *Loop) Activities(resourceID string) []Activity {
	l.mu.Lock()
	defer l.mu.Unlock()
	ts, ok := l.targets[resourceID]
	if !ok {
		return nil
	}
	out := slices.Clone(ts.activities)
	slices.Reverse(out)
	return out
}

// LastDecision returns the latest decision for a target, for status pages
// and logs.
func (l *Loop) LastDecision(resourceID string) (Decision, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	ts, ok := l.targets[resourceID]
	if !ok {
		return Decision{}, false
	}
	return ts.last, true
}

// Run ticks until ctx ends. Each tick samples every target, decides, and
// applies changes one target at a time.
func (l *Loop) Run(ctx context.Context) {
	t := l.clock.NewTicker(l.timing.Tick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C():
			l.tick(ctx, now)
		}
	}
}

// tick is one round over the targets at time now.
func (l *Loop) tick(ctx context.Context, now time.Time) {
	l.mu.Lock()
	ids := make([]string, 0, len(l.targets))
	for id := range l.targets {
		ids = append(ids, id)
	}
	l.mu.Unlock()
	slices.Sort(ids)
	for _, id := range ids {
		if ctx.Err() != nil {
			return
		}
		l.tickTarget(ctx, id, now)
	}
}

func (l *Loop) tickTarget(ctx context.Context, id string, now time.Time) {
	st, current, ok := l.src.Stats(id) // outside the lock: the source has its own

	l.mu.Lock()
	ts := l.targets[id]
	if ts == nil {
		l.mu.Unlock()
		return
	}
	if !ok {
		ts.history = nil
		l.mu.Unlock()
		return
	}
	st.At = now
	if n := len(ts.history); n == 0 || now.After(ts.history[n-1].At) {
		ts.history = append(ts.history, st)
	}
	ts.history = prune(ts.history, now.Add(-l.timing.HistoryWindow()))
	if now.Before(ts.retryAt) {
		l.mu.Unlock()
		return
	}
	policies := make([]catalog.ScalingPolicy, 0, len(ts.policies))
	for _, p := range ts.policies {
		policies = append(policies, p)
	}
	d := Decide(ts.history, current, ts.target, policies, ts.last, l.timing, now)
	if !d.Changed() {
		ts.last = d
		l.mu.Unlock()
		l.log.Debug("no scaling", "resource", id, "current", current, "reason", d.Reason)
		return
	}
	target := ts.target
	l.mu.Unlock()

	err := l.scaler.SetDesiredCount(ctx, id, d.Desired, d.Reason)
	if err != nil && ctx.Err() != nil {
		return // shutting down: not a scaling failure
	}
	act := newActivity(target, d, now, l.clock.Now(), err)

	l.mu.Lock()
	if l.targets[id] != ts {
		l.mu.Unlock()
		return // deregistered meanwhile
	}
	if err != nil {
		ts.retryAt = now.Add(l.timing.Period)
		l.log.Warn("scaling failed", "resource", id, "action", string(d.Action), "from", d.Current, "to", d.Desired, "reason", d.Reason, "err", err)
	} else {
		ts.last = d
		l.log.Info("scaled", "resource", id, "action", string(d.Action), "from", d.Current, "to", d.Desired, "policy", d.Policy, "reason", d.Reason)
	}
	ts.activities = append(ts.activities, act)
	if over := len(ts.activities) - maxActivities; over > 0 {
		ts.activities = slices.Delete(ts.activities, 0, over)
	}
	l.mu.Unlock()
	l.record(ctx, target, act, d, err == nil)
}

// record writes an activity, and after a successful change the cooldown
// state, to the journal. A failed write is logged: the loop goes on with
// what it holds in memory.
func (l *Loop) record(ctx context.Context, t catalog.ScalableTarget, act Activity, d Decision, changed bool) {
	if l.journal == nil {
		return
	}
	ctx = context.WithoutCancel(ctx) // the change was made: record it even at shutdown
	if err := l.journal.AddScalingActivity(ctx, &act, maxActivities); err != nil {
		l.log.Warn("record scaling activity", "resource", t.ResourceId, "err", err)
	}
	if !changed {
		return
	}
	cd := &catalog.ScalingCooldown{
		ServiceNamespace: t.ServiceNamespace, ResourceId: t.ResourceId, ScalableDimension: t.ScalableDimension,
		LastScaleOut: d.LastScaleOut, ScaleOutTo: d.ScaleOutTo, ScaleOutCooldownEnds: d.ScaleOutCooldownEnds,
		LastScaleIn: d.LastScaleIn, ScaleInCooldownEnds: d.ScaleInCooldownEnds,
	}
	if err := l.journal.PutScalingCooldown(ctx, cd); err != nil {
		l.log.Warn("record scaling cooldown", "resource", t.ResourceId, "err", err)
	}
}

// prune drops samples before cutoff but keeps the newest one at or before
// it, the baseline of the oldest period's counters.
func prune(h []pool.Stats, cutoff time.Time) []pool.Stats {
	k := 0
	for k+1 < len(h) && !h[k+1].At.After(cutoff) {
		k++
	}
	if k == 0 {
		return h
	}
	return slices.Delete(h, 0, k)
}

// newActivity describes an applied (or failed) decision as AWS words it.
func newActivity(t catalog.ScalableTarget, d Decision, start, end time.Time, err error) Activity {
	a := Activity{
		ActivityId:        newActivityID(),
		ServiceNamespace:  t.ServiceNamespace,
		ResourceId:        t.ResourceId,
		ScalableDimension: t.ScalableDimension,
		Description:       fmt.Sprintf("Setting desired instance count to %d.", d.Desired),
		StartTime:         catalog.Time{Time: start.UTC().Truncate(time.Millisecond)},
		EndTime:           catalog.Time{Time: end.UTC().Truncate(time.Millisecond)},
		StatusCode:        StatusSuccessful,
		StatusMessage:     fmt.Sprintf("Successfully set desired instance count to %d. Change successfully fulfilled by sagemaker.", d.Desired),
		Details:           d.Reason,
	}
	switch {
	case d.Action == ActionBounds && d.Desired > d.Current:
		a.Cause = fmt.Sprintf("minimum capacity was set to %d", t.MinCapacity)
	case d.Action == ActionBounds:
		a.Cause = fmt.Sprintf("maximum capacity was set to %d", t.MaxCapacity)
	default:
		a.Cause = fmt.Sprintf("monitor alarm TargetTracking-%s-%s in state ALARM triggered policy %s", t.ResourceId, d.Alarm, d.Policy)
	}
	if err != nil {
		a.StatusCode = StatusFailed
		a.StatusMessage = fmt.Sprintf("Failed to set desired instance count to %d. Reason: %v", d.Desired, err)
	}
	return a
}

// newActivityID returns a random (version 4) UUID.
func newActivityID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
