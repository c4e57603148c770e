package cost_test

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/inferbox/inferbox/internal/catalog"
	"github.com/inferbox/inferbox/internal/cost"
	"github.com/inferbox/inferbox/internal/instancetype"
	"github.com/inferbox/inferbox/internal/meter"
	"github.com/inferbox/inferbox/internal/pricebook"
)

var day0 = time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)

func at(h, m int) time.Time {
	return day0.Add(time.Duration(h)*time.Hour + time.Duration(m)*time.Minute)
}

func book(t *testing.T) *pricebook.Book {
	t.Helper()
	types, err := instancetype.Default()
	if err != nil {
		t.Fatal(err)
	}
	b, err := pricebook.Default(types)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// scriptedDay fills a real ledger (SQLite through catalog.Open) with a day
// of usage across every mode, and returns it.
func scriptedDay(t *testing.T, extra ...meter.InstanceUsage) *meter.Ledger {
	t.Helper()
	ctx := context.Background()
	s, err := catalog.Open(ctx, filepath.Join(t.TempDir(), "catalog.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	clock := at(30, 0)
	l, err := meter.NewLedger(ctx, s.DB(), slog.New(slog.DiscardHandler), meter.WithClock(func() time.Time { return clock }))
	if err != nil {
		t.Fatal(err)
	}
	inst := func(id, mode, res, typ string, start, end time.Time) {
		l.InstanceStarted(meter.InstanceUsage{InstanceID: id, Mode: mode, Resource: res, Variant: "v1", InstanceType: typ, Start: start})
		l.InstanceStopped(id, end)
	}
	// realtime "fraud", ml.m5.large ($0.115/h): one instance all day and
	// into the next, one that started the day before.
	inst("fraud-1", "realtime", "fraud", "ml.m5.large", at(0, 0), at(30, 0))
	inst("fraud-0", "realtime", "fraud", "ml.m5.large", at(-1, 0), at(1, 0))
	// serverless "recs", 2048 MB: its instance is billed per invocation.
	inst("recs-1", "serverless", "recs", "serverless-2048MB", at(1, 0), at(2, 0))
	// one unit of provisioned concurrency, 12 h.
	inst("recs-p1", "serverless-provisioned", "recs", "serverless-2048MB", at(8, 0), at(20, 0))
	// async "genomics", ml.c5.xlarge ($0.204/h), 2 h.
	inst("gen-1", "async", "genomics", "ml.c5.xlarge", at(10, 0), at(12, 0))
	// batch job "churn", two ml.m5.xlarge ($0.23/h), 1.5 h each.
	inst("churn-1", "batch", "churn", "ml.m5.xlarge", at(2, 0), at(3, 30))
	inst("churn-2", "batch", "churn", "ml.m5.xlarge", at(2, 0), at(3, 30))
	for i, u := range extra {
		inst(u.InstanceID, u.Mode, u.Resource, u.InstanceType, at(5, i), at(6, i))
	}
	rec := func(n int, v meter.Invocation, start time.Time) {
		for i := range n {
			v.Time = start.Add(time.Duration(i) * time.Second)
			v.TotalLatency = v.ModelLatency
			v.Status = 200
			l.RecordInvocation(v)
		}
	}
	rec(3600, meter.Invocation{Mode: "realtime", Resource: "fraud", Variant: "v1", InstanceType: "ml.m5.large", Caller: "alice", ModelLatency: 100 * time.Millisecond}, at(9, 0))
	rec(1800, meter.Invocation{Mode: "realtime", Resource: "fraud", Variant: "v1", InstanceType: "ml.m5.large", Caller: "bob", ModelLatency: 100 * time.Millisecond}, at(14, 0))
	rec(1000, meter.Invocation{Mode: "serverless", Resource: "recs", Variant: "v1", Caller: "carol", ModelLatency: 4 * time.Millisecond, MemoryMB: 2048}, at(1, 0))
	rec(1, meter.Invocation{Mode: "serverless", Resource: "recs", Variant: "v1", Caller: "carol", ModelLatency: 4200 * time.Microsecond, MemoryMB: 2048}, at(1, 30))
	rec(10, meter.Invocation{Mode: "async", Resource: "genomics", Variant: "v1", InstanceType: "ml.c5.xlarge", Caller: "dave", ModelLatency: time.Minute}, at(10, 5))
	rec(100, meter.Invocation{Mode: "batch", Resource: "churn", Variant: "v1", InstanceType: "ml.m5.xlarge", ModelLatency: 50 * time.Millisecond}, at(2, 1))
	// outside the period
	rec(5, meter.Invocation{Mode: "realtime", Resource: "fraud", Variant: "v1", InstanceType: "ml.m5.large", Caller: "alice", ModelLatency: time.Second}, at(-2, 0))
	if err := l.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	return l
}

func lines(r *cost.Report) map[string]cost.Line {
	m := map[string]cost.Line{}
	for _, l := range r.Lines {
		m[l.Label()] = l
	}
	return m
}

func TestScriptedDayByMode(t *testing.T) {
	l := scriptedDay(t)
	r, err := cost.Compute(context.Background(), l, book(t), cost.Options{From: at(0, 0), To: at(24, 0), By: cost.ByMode})
	if err != nil {
		t.Fatal(err)
	}
	// Worked out by hand from the list prices:
	// realtime: 25 instance-hours × $0.115 = $2.875; busy 540 s of 90,000 s.
	want := map[string]cost.Nanos{
		"realtime":                         17_250_000,
		"realtime idle (paid for, unused)": 2_857_750_000,
		"serverless":                       1000*160 + 200, // 4 ms × 2 GB × $0.00002; 4.2 ms bills 5 ms
		"serverless-provisioned":           414_720_000,    // 43,200 s × 2 GB × $0.0000048
		"async":                            408_000_000,    // 2 h × $0.204
		"batch":                            690_000_000,    // 3 h × $0.23
	}
	got := lines(r)
	if len(got) != len(want) {
		t.Errorf("lines %v, want %d", r.Lines, len(want))
	}
	var sum cost.Nanos
	for k, n := range want {
		sum += n
		if got[k].Nanodollars != n {
			t.Errorf("%s: %d nano-dollars, want %d", k, got[k].Nanodollars, n)
		}
	}
	if r.Nanodollars != sum || sum != 4_387_880_200 {
		t.Errorf("total %d, want %d", r.Nanodollars, sum)
	}
	c := r.Check
	if !c.Reconciled || c.LinesNanodollars != r.Nanodollars || c.ReportInvocations != 6511 || c.LedgerInvocations != 6511 {
		t.Errorf("check %+v", c)
	}
	// 25 h realtime + 1 h serverless + 12 h provisioned + 2 h async + 3 h batch
	if wantUs := int64(43 * time.Hour / time.Microsecond); c.LedgerInstanceMicros != wantUs || c.ReportInstanceMicros != wantUs {
		t.Errorf("instance µs ledger %d report %d, want %d", c.LedgerInstanceMicros, c.ReportInstanceMicros, wantUs)
	}
	if got["realtime"].Invocations != 5400 || got["realtime idle (paid for, unused)"].InstanceSeconds != 90000-540 {
		t.Errorf("realtime lines %+v %+v", got["realtime"], got["realtime idle (paid for, unused)"])
	}
}

func TestEveryGroupingReconciles(t *testing.T) {
	l := scriptedDay(t)
	b := book(t)
	for _, by := range cost.Groupings {
		for _, to := range []time.Time{at(24, 0), at(36, 0)} {
			r, err := cost.Compute(context.Background(), l, b, cost.Options{From: at(0, 0), To: to, By: by})
			if err != nil {
				t.Fatal(err)
			}
			var sum cost.Nanos
			for _, ln := range r.Lines {
				sum += ln.Nanodollars
			}
			if !r.Check.Reconciled || sum != r.Nanodollars {
				t.Errorf("by %s to %s: lines sum %d, total %d, check %+v", by, to, sum, r.Nanodollars, r.Check)
			}
		}
	}
	r, _ := cost.Compute(context.Background(), l, b, cost.Options{From: at(0, 0), To: at(36, 0), By: cost.ByCaller})
	got := lines(r)
	// alice had twice bob's busy time.
	if got["alice"].Nanodollars != 11_500_000 || got["bob"].Nanodollars != 5_750_000 {
		t.Errorf("callers %+v", r.Lines)
	}
	r, _ = cost.Compute(context.Background(), l, b, cost.Options{From: at(0, 0), To: at(36, 0), By: cost.ByDay})
	got = lines(r)
	// fraud-1 ran 6 h into the next day: all idle.
	if n := got["2026-03-03 idle (paid for, unused)"].Nanodollars; n != 690_000_000 {
		t.Errorf("day 2 idle %d; lines %+v", n, r.Lines)
	}
}

func TestMissingPrice(t *testing.T) {
	l := scriptedDay(t, meter.InstanceUsage{InstanceID: "x-1", Mode: "realtime", Resource: "exotic", InstanceType: "ml.x9.huge"})
	opts := cost.Options{From: at(0, 0), To: at(24, 0)}
	_, err := cost.Compute(context.Background(), l, book(t), opts)
	if !errors.Is(err, pricebook.ErrMissingPrice) || !strings.Contains(err.Error(), "ml.x9.huge") {
		t.Fatalf("err = %v, want a missing price naming ml.x9.huge", err)
	}
	opts.AllowUnpriced = true
	r, err := cost.Compute(context.Background(), l, book(t), opts)
	if err != nil {
		t.Fatal(err)
	}
	u, ok := lines(r)["realtime UNPRICED: instance type ml.x9.huge"]
	if !ok || u.Kind != cost.KindUnpriced || u.InstanceSeconds != 3600 || !r.Check.Reconciled {
		t.Errorf("unpriced line %+v (found %v), check %+v", u, ok, r.Check)
	}
	if r.Nanodollars != 4_387_880_200 {
		t.Errorf("total %d changed by the unpriced instance", r.Nanodollars)
	}
}

func TestBadOptions(t *testing.T) {
	l := scriptedDay(t)
	for _, o := range []cost.Options{
		{From: at(0, 0), To: at(24, 0), By: "colour"},
		{From: at(24, 0), To: at(0, 0)},
		{To: at(0, 0)},
	} {
		if _, err := cost.Compute(context.Background(), l, book(t), o); err == nil {
			t.Errorf("%+v: no error", o)
		}
	}
}

func TestNanosString(t *testing.T) {
	for n, want := range map[cost.Nanos]string{0: "$0.000000", 160: "$0.000000", 500: "$0.000001", 4_387_880_200: "$4.387880", -2_500_000_000: "-$2.500000"} {
		if got := n.String(); got != want {
			t.Errorf("%d: %q, want %q", n, got, want)
		}
	}
}

// Foundation-model traffic is priced per token (batch at the discount); its
// shared pool's instance time is shown but not billed; a model without
// token prices is an error naming it, or an UNPRICED line.
func TestTokenPricing(t *testing.T) {
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
	const llama = "meta.llama3-8b-instruct-v1:0" // $0.0003 in, $0.0006 out per 1K
	l.InstanceStarted(meter.InstanceUsage{InstanceID: "pool-1", Mode: cost.ModeTokens, Resource: llama, Variant: "shared", InstanceType: "ml.g5.xlarge", Start: at(1, 0)})
	l.InstanceStopped("pool-1", at(2, 0))
	for i := range 10 {
		l.RecordInvocation(meter.Invocation{Time: at(1, i), Mode: cost.ModeTokens, Resource: llama, Caller: "erin", InputTokens: 1000, OutputTokens: 500, Status: 200})
	}
	l.RecordInvocation(meter.Invocation{Time: at(3, 0), Mode: cost.ModeTokensBatch, Resource: llama, Caller: "erin", InputTokens: 10000, OutputTokens: 10000, Status: 200})
	if err := l.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	r, err := cost.Compute(ctx, l, book(t), cost.Options{From: at(0, 0), To: at(24, 0)})
	if err != nil {
		t.Fatal(err)
	}
	// on demand: 10 × (1 × 0.0003 + 0.5 × 0.0006) = $0.006; batch: (10 × 0.0003 + 10 × 0.0006) × 0.5 = $0.0045.
	if r.Nanodollars != 6_000_000+4_500_000 || !r.Check.Reconciled {
		t.Fatalf("total %d nano-dollars (check %+v), want 10,500,000", r.Nanodollars, r.Check)
	}
	l.RecordInvocation(meter.Invocation{Time: at(4, 0), Mode: cost.ModeTokens, Resource: "acme.unpriced-model", InputTokens: 5, Status: 200})
	if err := l.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := cost.Compute(ctx, l, book(t), cost.Options{From: at(0, 0), To: at(24, 0)}); !errors.Is(err, pricebook.ErrMissingPrice) || !strings.Contains(err.Error(), "acme.unpriced-model") {
		t.Fatalf("err = %v, want a missing price naming the model", err)
	}
}
