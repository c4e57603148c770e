package cost_test

import (
	"context"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/inferbox/inferbox/internal/catalog"
	"github.com/inferbox/inferbox/internal/cost"
	"github.com/inferbox/inferbox/internal/meter"
)

// Provisioned throughput costs model-unit-hours at its term's price; its
// invocations are counted but cost nothing more.
func TestProvisionedThroughputPricing(t *testing.T) {
	ctx := context.Background()
	s, err := catalog.Open(ctx, filepath.Join(t.TempDir(), "catalog.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	l, err := meter.NewLedger(ctx, s.DB(), slog.New(slog.DiscardHandler), meter.WithClock(func() time.Time { return at(30, 0) }))
	if err != nil {
		t.Fatal(err)
	}
	const llama = "meta.llama3-8b-instruct-v1:0" // $21.18 per unit-hour for 1 month, $23.50 with no commitment
	// Two units for two hours on a 1-month term, one unit for one hour with none.
	for _, id := range []string{"mu-1", "mu-2"} {
		l.InstanceStarted(meter.InstanceUsage{InstanceID: id, Mode: cost.ModeProvisionedThroughput, Resource: llama, Variant: "1month", InstanceType: "ml.m5.large", Start: at(1, 0)})
		l.InstanceStopped(id, at(3, 0))
	}
	l.InstanceStarted(meter.InstanceUsage{InstanceID: "mu-3", Mode: cost.ModeProvisionedThroughput, Resource: llama, Variant: "none", InstanceType: "ml.m5.large", Start: at(5, 0)})
	l.InstanceStopped("mu-3", at(6, 0))
	l.RecordInvocation(meter.Invocation{Time: at(2, 0), Mode: cost.ModeProvisionedThroughput, Resource: llama, Caller: "erin", InputTokens: 1000, OutputTokens: 1000, Status: 200})
	if err := l.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	r, err := cost.Compute(ctx, l, book(t), cost.Options{From: at(0, 0), To: at(24, 0)})
	if err != nil {
		t.Fatal(err)
	}
	// 4 × 21.18 + 23.50 = $108.22
	if r.Nanodollars != 108_220_000_000 || !r.Check.Reconciled {
		t.Fatalf("total %d nano-dollars (check %+v), want 108,220,000,000", r.Nanodollars, r.Check)
	}
}
