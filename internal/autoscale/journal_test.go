package autoscale

import (
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/inferbox/inferbox/internal/catalog"
)

// process is one run of the autoscaler over a catalog file: the store,
// the loop and the registry the composition root builds, and the loop
// running until stop.
type process struct {
	t     *testing.T
	store *catalog.Store
	loop  *Loop
	reg   *Registry
	clock *fakeClock
	stop  func()
}

func startProcess(t *testing.T, path string, now time.Time, variant *fakeVariant) *process {
	t.Helper()
	ctx := context.Background()
	store, err := catalog.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	clock := &fakeClock{now: now}
	loop, err := NewLoop(variant, variant, clock, minuteTiming, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	reg := NewRegistry(store, loop, func(context.Context, string) error { return nil }, "us-east-1", "123456789012")
	if err := reg.Restore(ctx); err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		loop.Run(rctx)
	}()
	p := &process{t: t, store: store, loop: loop, reg: reg, clock: clock}
	stopped := false
	p.stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		<-done
		store.Close()
	}
	t.Cleanup(p.stop)
	waitFor(t, "the loop's ticker", func() bool { return clock.activeTickers() == 1 })
	return p
}

// step runs one minute of traffic and waits for the loop's decision.
func (p *process) step(variant *fakeVariant, perMin uint64) Decision {
	p.t.Helper()
	variant.addInvocations(perMin)
	p.clock.Advance(time.Minute)
	at := p.clock.Now()
	var d Decision
	waitFor(p.t, "decision at "+at.String(), func() bool {
		var ok bool
		d, ok = p.loop.LastDecision(testResource)
		return ok && d.At.Equal(at)
	})
	return d
}

// After a restart (a new store, loop and registry on the same catalog
// file) DescribeScalingActivities still lists the activities of the
// previous run, and a scale-out cooldown that has not ended still blocks
// scale-in.
func TestActivitiesAndCooldownSurviveRestart(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "catalog.db")
	variant := &fakeVariant{desired: 2}

	p1 := startProcess(t, path, t0, variant)
	if _, err := p1.reg.RegisterScalableTarget(ctx, target(1, 10), true, true); err != nil {
		t.Fatal(err)
	}
	pol := invocationsPolicy("invocations", 70)
	pol.TargetTrackingScalingPolicyConfiguration.ScaleOutCooldown = seconds(3600)
	if _, err := p1.reg.PutScalingPolicy(ctx, pol); err != nil {
		t.Fatal(err)
	}
	// As in TestLoopAppliesDecisionsAndRecordsActivities: a scale-out to 4
	// at minute 8, whose cooldown lasts an hour.
	for range 5 {
		p1.step(variant, 100)
	}
	for range 3 {
		p1.step(variant, 280)
	}
	if got := variant.count(); got != 4 {
		t.Fatalf("desired count after the load step = %d, want 4", got)
	}
	before, err := p1.reg.DescribeScalingActivities(ctx, ServiceNamespace, testResource)
	if err != nil || len(before) != 1 {
		t.Fatalf("activities before the restart: %+v, %v", before, err)
	}
	restartAt := p1.clock.Now()
	p1.stop()

	p2 := startProcess(t, path, restartAt, variant)
	after, err := p2.reg.DescribeScalingActivities(ctx, ServiceNamespace, testResource)
	if err != nil || len(after) != 1 || after[0].ActivityId != before[0].ActivityId ||
		after[0].Description != "Setting desired instance count to 4." || !after[0].StartTime.Equal(before[0].StartTime.Time) {
		t.Fatalf("activities after the restart: %+v, %v; want %+v", after, err, before)
	}
	all, err := p2.reg.DescribeScalingActivities(ctx, ServiceNamespace, "")
	if err != nil || len(all) != 1 {
		t.Fatalf("all activities after the restart: %+v, %v", all, err)
	}
	// Traffic drops to almost nothing for longer than the scale-in
	// datapoints: the restored scale-out cooldown holds the count at 4.
	for range 20 {
		d := p2.step(variant, 10)
		if d.Changed() {
			t.Fatalf("scaled %s to %d during the scale-out cooldown: %s", d.Action, d.Desired, d.Reason)
		}
	}
	if d, _ := p2.loop.LastDecision(testResource); !strings.Contains(d.Reason, "scale-out cooldown") {
		t.Errorf("last decision %q; want it held by the scale-out cooldown", d.Reason)
	}
	if got := variant.count(); got != 4 {
		t.Fatalf("desired count after the quiet spell = %d, want 4", got)
	}
	// A change made after the restart is recorded after the old one.
	p2.stop()
	p3 := startProcess(t, path, p2.clock.Now().Add(time.Hour), variant)
	if _, err := p3.reg.RegisterScalableTarget(ctx, target(5, 10), true, true); err != nil {
		t.Fatal(err)
	}
	p3.step(variant, 10)
	acts, err := p3.reg.DescribeScalingActivities(ctx, ServiceNamespace, testResource)
	if err != nil || len(acts) != 2 || acts[0].Cause != "minimum capacity was set to 5" || acts[1].ActivityId != before[0].ActivityId {
		t.Fatalf("activities, newest first: %+v, %v", acts, err)
	}
}
